"""Card-verifiable (CV) certificates of the text and visual APs, and the RSA public keys they
and the card-face records carry as ``90 <e> 91 <n>`` (docs/card.md §6.5, §6.7).

Pure: bytes in, values out. Malformed input is always a ``DataError`` (a ``TlvError`` is one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.errors import DataError
from mynakit.iso7816 import tlv

KEY_ID_LENGTH = 16  # docs/card.md §6.5: "5000033" 08 05 "001" 00 00 00 00
TAG_PUBLIC_EXPONENT = 0x90
TAG_MODULUS = 0x91
TAG_CV_CERTIFICATE = 0x7F21
TAG_CV_BODY = 0x5F4E
TAG_CV_SIGNATURE = 0x5F37

#: Card-CA public keys a caller trusts for CV certificates, by 16-byte key id (docs/card.md
#: §6.5). The real J-LIS card-CA keys are not bundled; the sandbox's come from the virtual
#: card's issuer. Several keys may share an id (every sandbox card certifies itself under the
#: same sandbox id), so each id maps to its candidates.
CardCaKeys = Mapping[bytes, Sequence[rsa.RSAPublicKey]]


def parse_rsa_public_key(data: bytes) -> rsa.RSAPublicKey:
    """``90 <exponent> 91 <modulus>``: how the 券面 APs write RSA public keys
    (docs/card.md §6.7)."""
    objects = {item.tag: item.value for item in tlv.parse_all(data)}
    exponent = objects.get(TAG_PUBLIC_EXPONENT)
    modulus = objects.get(TAG_MODULUS)
    if not exponent or not modulus:
        raise DataError("an RSA public key needs tags 90 (exponent) and 91 (modulus)")
    try:
        return rsa.RSAPublicNumbers(
            int.from_bytes(exponent, "big"), int.from_bytes(modulus, "big")
        ).public_key()
    except ValueError as error:
        raise DataError(f"not a usable RSA public key: {error}") from error


def key_id_text(key_id: bytes) -> str:
    """A key id as people compare them: the ASCII head (e.g. ``5000033``) and the hex."""
    head = key_id[:7]
    readable = head.decode("ascii") if head.isascii() and head.isdigit() else ""
    return f"{readable} ({key_id.hex().upper()})" if readable else key_id.hex().upper()


@dataclass(frozen=True)
class CvCertificate:
    """A card-verifiable certificate ``7F21 {5F4E body, 5F37 signature}`` (docs/card.md §6.5).

    The body is issuer key id (16) ‖ subject key id (16) ‖ the subject's public key
    (``90 03 010001 91 82 0100 <modulus>``); the signature is PKCS#1 v1.5 SHA-256 over the body.
    """

    issuer_key_id: bytes
    subject_key_id: bytes
    public_key: rsa.RSAPublicKey = field(compare=False)
    body: bytes = field(repr=False)
    signature: bytes = field(repr=False)

    @classmethod
    def parse(cls, data: bytes) -> CvCertificate:
        outer = tlv.parse_single(data, TAG_CV_CERTIFICATE)
        body = _required(outer, TAG_CV_BODY, "CV certificate")
        signature = _required(outer, TAG_CV_SIGNATURE, "CV certificate")
        if len(body) <= 2 * KEY_ID_LENGTH:
            raise DataError(f"CV certificate body of {len(body)} bytes holds no public key")
        return cls(
            issuer_key_id=body[:KEY_ID_LENGTH],
            subject_key_id=body[KEY_ID_LENGTH : 2 * KEY_ID_LENGTH],
            public_key=parse_rsa_public_key(body[2 * KEY_ID_LENGTH :]),
            body=body,
            signature=signature,
        )

    def is_signed_by(self, issuer_key: rsa.RSAPublicKey) -> bool:
        try:
            issuer_key.verify(self.signature, self.body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True

    def chain_check(self, trusted: CardCaKeys | None) -> ChainCheck:
        """Check this certificate against a trusted card-CA key, saying honestly when none is
        known (the real J-LIS card-CA keys are not bundled)."""
        issuer = key_id_text(self.issuer_key_id)
        candidates = (trusted or {}).get(self.issuer_key_id, ())
        if not candidates:
            return ChainCheck(False, f"chain not verified: card-CA key {issuer} is not trusted")
        if not any(self.is_signed_by(key) for key in candidates):
            return ChainCheck(False, f"CV certificate signature does not verify under {issuer}")
        return ChainCheck(True, f"CV certificate signed by trusted card-CA key {issuer}")


@dataclass(frozen=True)
class ChainCheck:
    verified: bool
    note: str


def _required(outer: tlv.Tlv, tag: int, what: str) -> bytes:
    for item in outer.children():
        if item.tag == tag:
            return item.value
    raise DataError(f"{what} lacks tag {tag:X}")
