"""Raw PKCS#1 v1.5 signatures as the card makes them (``80 2A``, docs/card.md §5.1), checked
against a certificate's public key: no CMS, no path validation.

The RSA public operation recovers the signed block (RFC 8017 §8.2.2); for a hashed signature
that block must be the DigestInfo of the content's hash (RFC 8017 §9.2), for a raw one the
content itself. What :func:`verify_raw_signature` answers is only "this key signed these
bytes": whether the certificate is trusted is :func:`mynakit.jpki.validation.validate_path`'s
question.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.card.jpki import DIGEST_INFO_PREFIXES, digest_info
from mynakit.errors import DataError
from mynakit.jpki.certificates import JpkiCertificate, parse_certificate


@dataclass(frozen=True)
class RawSignatureCheck:
    """The outcome of :func:`verify_raw_signature`."""

    valid: bool
    digest_algorithm: str | None  # the hash named by the recovered DigestInfo; None when raw

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, "digest": self.digest_algorithm}


def verify_raw_signature(
    certificate: JpkiCertificate | bytes,
    content: bytes,
    signature: bytes,
    *,
    raw: bool = False,
) -> RawSignatureCheck:
    """Check a PKCS#1 v1.5 ``signature`` of ``content`` under ``certificate``'s RSA key.

    Hashed (default): the recovered DigestInfo names the hash (SHA-1/256/384/512, the
    prefixes of docs/card.md §5.1) and must hold the hash of ``content``. ``raw``: the
    recovered block must be ``content`` itself (what ``pkey sign --raw`` signs). A signature
    that does not verify is ``valid=False``, never an exception; a certificate without an RSA
    key is a ``DataError``.
    """
    parsed = (
        certificate if isinstance(certificate, JpkiCertificate) else parse_certificate(certificate)
    )
    public_key = parsed.certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DataError("the certificate does not hold an RSA key (JPKI keys are RSA)")
    try:
        recovered = public_key.recover_data_from_signature(signature, padding.PKCS1v15(), None)
    except (InvalidSignature, ValueError):
        return RawSignatureCheck(valid=False, digest_algorithm=None)
    if raw:
        return RawSignatureCheck(valid=recovered == content, digest_algorithm=None)
    algorithm = next(
        (name for name, prefix in DIGEST_INFO_PREFIXES.items() if recovered.startswith(prefix)),
        None,
    )
    if algorithm is None:
        return RawSignatureCheck(valid=False, digest_algorithm=None)
    expected = digest_info(algorithm, hashlib.new(algorithm, content).digest())
    return RawSignatureCheck(valid=recovered == expected, digest_algorithm=algorithm)
