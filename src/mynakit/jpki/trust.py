"""Trust anchors for JPKI: the public J-LIS roots and, for tests and demos, sandbox roots.

Each anchor records its purpose (authentication or signature) and whether it is a production
root, so a relying party in production mode can refuse sandbox roots
(``validate_path(..., require_production=True)`` or :meth:`TrustStore.production_only`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from mynakit.errors import DataError, UsageError
from mynakit.jpki.certificates import CertificateKind, JpkiCertificate, parse_certificate
from mynakit.jpki.inputs import InputKind, check_input_size, decode_pem, read_bounded

#: File in a sandbox issuer directory holding its root certificates as a PEM bundle. The
#: sandbox issuer (mynakit.emulator.issuer) writes it; the relying side only reads it, so the
#: jpki package never imports the emulator.
SANDBOX_ROOTS_FILE = "roots.pem"

# The public J-LIS roots shipped with mynakit (docs/card.md §9.3; src/mynakit/jpki/roots).
_BUNDLED_ROOTS = ("auth_ca_2015.pem", "auth_ca_2023.pem", "sign_ca_2015.pem", "sign_ca_2023.pem")


@runtime_checkable
class HasRoots(Protocol):
    """Anything that exposes root certificates, such as a ``SandboxIssuer``."""

    @property
    def roots(self) -> Sequence[x509.Certificate]: ...


@dataclass(frozen=True)
class TrustAnchor:
    """A root certificate trusted for one purpose."""

    certificate: JpkiCertificate
    purpose: CertificateKind  # AUTH or SIGN: what the root's certificates may be used for
    production: bool

    @property
    def subject(self) -> x509.Name:
        return self.certificate.subject_name

    @property
    def x509_certificate(self) -> x509.Certificate:
        return self.certificate.certificate

    @cached_property
    def subject_text(self) -> str:
        """The root's subject DN as an RFC 4514 string (computed once per anchor)."""
        return self.certificate.subject_name.rfc4514_string()

    def __repr__(self) -> str:
        where = "production" if self.production else "sandbox"
        return (
            f"TrustAnchor({self.purpose.value}, {where}, "
            f"serial={self.certificate.serial_number}, "
            f"valid until {self.certificate.not_after.date().isoformat()})"
        )


class TrustStore:
    """An immutable set of trust anchors; ``add`` and ``with_sandbox`` return new stores."""

    def __init__(self, anchors: Iterable[TrustAnchor] = ()) -> None:
        unique: dict[bytes, TrustAnchor] = {}
        for anchor in anchors:
            unique.setdefault(anchor.certificate.der, anchor)
        self._anchors = tuple(unique.values())

    @classmethod
    def jlis(cls) -> TrustStore:
        """The public J-LIS production roots bundled with mynakit (generations 1 and 3)."""
        folder = resources.files("mynakit.jpki") / "roots"
        anchors: list[TrustAnchor] = []
        for file_name in _BUNDLED_ROOTS:
            pem = (folder / file_name).read_bytes()
            for certificate in _load_pem_bundle(pem, file_name):
                anchors.append(_anchor(certificate, production=True))
        return cls(anchors)

    @property
    def anchors(self) -> tuple[TrustAnchor, ...]:
        return self._anchors

    def __iter__(self) -> Iterator[TrustAnchor]:
        return iter(self._anchors)

    def __len__(self) -> int:
        return len(self._anchors)

    def __repr__(self) -> str:
        return f"TrustStore({list(self._anchors)!r})"

    def add(
        self,
        certificate: x509.Certificate | JpkiCertificate | bytes,
        *,
        production: bool = False,
    ) -> TrustStore:
        """A new store with ``certificate`` (a JPKI root, DER or PEM) as an extra anchor.

        Anchors added here count as sandbox roots unless ``production=True``: a root must be
        declared production to be used by a relying party in production mode.
        """
        return TrustStore([*self._anchors, _anchor(_as_jpki(certificate), production)])

    def with_sandbox(
        self, source: str | os.PathLike[str] | HasRoots | Iterable[object]
    ) -> TrustStore:
        """A new store that also trusts sandbox roots (never marked production).

        ``source`` is a sandbox issuer directory (its ``roots.pem``), an object with a ``roots``
        attribute (a ``SandboxIssuer``), or an iterable of certificates.
        """
        certificates: list[JpkiCertificate]
        if isinstance(source, str | os.PathLike):
            path = Path(source) / SANDBOX_ROOTS_FILE
            pem = read_bounded(path, InputKind.CERTIFICATE, f"the sandbox roots file {path}")
            certificates = list(_load_pem_bundle(pem, str(path)))
        elif isinstance(source, HasRoots):
            certificates = [_as_jpki(root) for root in source.roots]
        else:
            certificates = [_as_jpki(item) for item in source]
        if not certificates:
            raise UsageError("no sandbox roots given")
        return TrustStore(
            [*self._anchors, *(_anchor(certificate, False) for certificate in certificates)]
        )

    def production_only(self) -> TrustStore:
        """A new store without the sandbox anchors."""
        return TrustStore(anchor for anchor in self._anchors if anchor.production)

    def anchors_for(
        self, issuer_name: x509.Name, purpose: CertificateKind | None = None
    ) -> list[TrustAnchor]:
        """Anchors whose subject is ``issuer_name`` (several, across root generations)."""
        return [
            anchor
            for anchor in self._anchors
            if anchor.subject == issuer_name and (purpose is None or anchor.purpose is purpose)
        ]


def _anchor(certificate: JpkiCertificate, production: bool) -> TrustAnchor:
    if not certificate.kind.is_ca:
        raise UsageError(
            f"a trust anchor must be a JPKI CA certificate, not a {certificate.kind.value} one"
        )
    return TrustAnchor(
        certificate=certificate,
        purpose=certificate.kind.end_entity_kind,
        production=production,
    )


def _as_jpki(certificate: object) -> JpkiCertificate:
    if isinstance(certificate, JpkiCertificate):
        return certificate
    if isinstance(certificate, x509.Certificate):
        return parse_certificate(certificate.public_bytes(Encoding.DER))
    if isinstance(certificate, bytes):
        if certificate.lstrip().startswith(b"-----BEGIN"):
            bundle = list(_load_pem_bundle(certificate, "PEM data"))
            if len(bundle) != 1:
                raise UsageError(f"expected one PEM certificate, got {len(bundle)}")
            return bundle[0]
        return parse_certificate(certificate)
    raise UsageError(f"not a certificate: {type(certificate).__name__}")


def _load_pem_bundle(pem: bytes, origin: str) -> Iterator[JpkiCertificate]:
    check_input_size(pem, InputKind.CERTIFICATE, origin)
    for block in decode_pem(pem, origin):
        if block.label != "CERTIFICATE":
            raise DataError(f"{origin}: PEM block is {block.label!r}, not CERTIFICATE")
        yield parse_certificate(block.der)
