"""Results the card sessions return, and the structures the text and visual APs share: RSA public
keys written as ``90 <e> 91 <n>`` and card-verifiable (CV) certificates (protocol reference
§6.5, §6.7).

Everything here is pure: bytes in, values out. Malformed input is always a ``DataError`` (a
``TlvError`` is one), never another exception.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.errors import DataError
from mynakit.iso7816 import tlv
from mynakit.personal import Sex

KEY_ID_LENGTH = 16  # §6.5: "5000033" 08 05 "001" 00 00 00 00
TAG_PUBLIC_EXPONENT = 0x90
TAG_MODULUS = 0x91
TAG_CV_CERTIFICATE = 0x7F21
TAG_CV_BODY = 0x5F4E
TAG_CV_SIGNATURE = 0x5F37

#: Card-CA public keys a caller trusts for CV certificates, by 16-byte key id (§6.5). The real
#: J-LIS card-CA keys are not bundled; the sandbox's come from the virtual card's issuer.
#: Trusted card-CA public keys by 16-byte key id. Several keys may share an id (every sandbox
#: card certifies itself under the same sandbox id), so each id maps to its candidates.
CardCaKeys = Mapping[bytes, Sequence[rsa.RSAPublicKey]]


@dataclass(frozen=True)
class PinStatus:
    """Tries left on one key, learned without spending a try (§7.5)."""

    application: str
    key_name: str
    key_id: int
    label: str
    tries_left: int | None  # None: the card did not report a count (§11.5)
    max_tries: int

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0

    def as_dict(self) -> dict[str, object]:
        return {
            "application": self.application,
            "key": self.key_name,
            "key_id": f"{self.key_id:04X}",
            "label": self.label,
            "tries_left": self.tries_left,
            "max_tries": self.max_tries,
            "blocked": self.blocked,
        }


def parse_card_date(value: bytes, what: str) -> dt.date:
    """An 8-digit ASCII ``YYYYMMDD`` Gregorian date, as the 券面 APs write dates (§6.2, §6.8)."""
    if len(value) != 8 or not value.isdigit():
        raise DataError(f"the {what} is not 8 ASCII digits (YYYYMMDD)")
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError as error:
        raise DataError(f"the {what} is not a calendar date") from error


def parse_card_sex(value: bytes) -> Sex:
    """One ASCII digit (§6.2): 1 male, 2 female, 9 not applicable, 0 unknown."""
    try:
        code = value.decode("ascii")
    except UnicodeDecodeError as error:
        raise DataError("the sex code is not ASCII") from error
    return Sex.from_card_code(code)


def parse_rsa_public_key(data: bytes) -> rsa.RSAPublicKey:
    """``90 <exponent> 91 <modulus>``: how the 券面 APs write RSA public keys (§6.7)."""
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
    """A card-verifiable certificate ``7F21 {5F4E body, 5F37 signature}`` (§6.5).

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


@dataclass(frozen=True)
class RawObject:
    """One TLV object and the exact bytes it occupies in its file (signatures cover those)."""

    item: tlv.Tlv
    start: int
    raw: bytes


def objects_with_raw(data: bytes, start: int, end: int) -> list[RawObject]:
    """The objects between ``start`` and ``end`` of ``data`` with their raw bytes and offsets."""
    objects: list[RawObject] = []
    offset = start
    while offset < end:
        item, after = tlv.parse_one(data[:end], offset)
        objects.append(RawObject(item, offset, data[offset:after]))
        offset = after
    return objects


def outer_object(data: bytes, tag: int) -> tuple[int, int]:
    """Start and end offsets of the value of the object ``tag`` that opens ``data``."""
    header = tlv.read_header(data)
    if header.tag != tag:
        raise tlv.TlvError(f"expected tag {tag:X}, found {header.tag:X}")
    end = header.header_length + header.length
    if end > len(data):
        raise tlv.TlvError(
            f"truncated TLV: tag {tag:X} declares {header.length} bytes, "
            f"{len(data) - header.header_length} present"
        )
    return header.header_length, end


def located_by_offset_table(
    data: bytes, outer_tag: int, table_tag: int, expected_tags: tuple[int, ...]
) -> dict[int, RawObject]:
    """Objects of a file with an offset table (text EF 0002 §6.2, visual EF 0002 §6.8).

    The table holds one big-endian u16 per following object, counted from the start of the
    file. Each offset must land on the object that follows in sequence: a table that disagrees
    with the objects means the file is damaged, and is a ``DataError``.
    """
    start, end = outer_object(data, outer_tag)
    objects = objects_with_raw(data, start, end)
    if not objects or objects[0].item.tag != table_tag:
        raise DataError(f"tag {outer_tag:X} does not open with its offset table {table_tag:X}")
    table = objects[0].item.value
    if len(table) % 2:
        raise DataError(f"offset table {table_tag:X} has an odd length ({len(table)} bytes)")
    offsets = [int.from_bytes(table[i : i + 2], "big") for i in range(0, len(table), 2)]
    following = objects[1:]
    if len(offsets) != len(following):
        raise DataError(
            f"offset table lists {len(offsets)} objects, the file holds {len(following)}"
        )
    by_tag: dict[int, RawObject] = {}
    for offset, entry in zip(offsets, following, strict=True):
        if offset != entry.start:
            raise DataError(
                f"offset table puts tag {entry.item.tag:X} at {offset}, it is at {entry.start}"
            )
        by_tag.setdefault(entry.item.tag, entry)
    missing = [f"{tag:X}" for tag in expected_tags if tag not in by_tag]
    if missing:
        raise DataError(f"tag {outer_tag:X} lacks {', '.join(missing)}")
    return by_tag
