"""The sandbox issuer's two roots on disk: ``auth-root.pem``/``sign-root.pem`` (public, 0644),
their keys ``*.key.pem`` (0600, unencrypted: sandbox only) and the ``roots.pem`` bundle that
``TrustStore.with_sandbox`` reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from mynakit.atomic_files import PRIVATE_FILE, PUBLIC_FILE, write_atomic
from mynakit.emulator.certificate_profile import Root, make_root
from mynakit.errors import DataError
from mynakit.jpki.certificates import CertificateKind
from mynakit.jpki.trust import SANDBOX_ROOTS_FILE

ROOT_FILES = {CertificateKind.AUTH: "auth-root", CertificateKind.SIGN: "sign-root"}


def create_roots(
    directory: Path, start: dt.datetime, validity_days: int
) -> dict[CertificateKind, Root]:
    """Make both roots and write them (keys, certificates, bundle) into ``directory``."""
    roots: dict[CertificateKind, Root] = {}
    for kind, base_name in ROOT_FILES.items():
        root = make_root(kind, start, validity_days)
        roots[kind] = root
        key = root.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_atomic(directory / f"{base_name}.key.pem", key, mode=PRIVATE_FILE)
        certificate = root.certificate.public_bytes(serialization.Encoding.PEM)
        write_atomic(directory / f"{base_name}.pem", certificate, mode=PUBLIC_FILE)
    bundle = b"".join(
        root.certificate.public_bytes(serialization.Encoding.PEM) for root in roots.values()
    )
    write_atomic(directory / SANDBOX_ROOTS_FILE, bundle, mode=PUBLIC_FILE)
    return roots


def load_roots(directory: Path) -> dict[CertificateKind, Root]:
    """Both roots of ``directory``, each key checked against its certificate."""
    return {kind: _load_root(directory, base_name) for kind, base_name in ROOT_FILES.items()}


def _load_root(directory: Path, base_name: str) -> Root:
    try:
        certificate = x509.load_pem_x509_certificate((directory / f"{base_name}.pem").read_bytes())
        # Written (0600) by create_roots; the full RSA check costs ~65 ms a key on every open,
        # and the key is checked against its certificate below.
        key = serialization.load_pem_private_key(
            (directory / f"{base_name}.key.pem").read_bytes(),
            password=None,
            unsafe_skip_rsa_key_validation=True,
        )
    except (OSError, ValueError, TypeError) as error:
        raise DataError(f"cannot load sandbox root {base_name} from {directory}: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DataError(f"sandbox root key {base_name} is not an RSA key")
    if _public_key_info(key.public_key()) != _public_key_info(certificate.public_key()):
        raise DataError(f"sandbox root key {base_name} does not match its certificate")
    return Root(certificate=certificate, key=key)


def _public_key_info(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
