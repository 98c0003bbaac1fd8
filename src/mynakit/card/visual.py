"""The visual AP (券面事項確認AP): the card face as images, and the age-verification record.

Access (docs/card.md §3.3): EF 0002 (card face) opens with check code A (the My Number)
or check code B; EF 0001 (age record) with the birth-date code (era ``YYMMDD``); EF 0003 (AP
basic info) and EF 0004 (CV certificate) are free.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from mynakit.card.base import ApplicationSession
from mynakit.card.cv_certificate import (
    CardCaKeys,
    ChainCheck,
    CvCertificate,
    parse_rsa_public_key,
)
from mynakit.card.errors import PinRequiredError
from mynakit.card.field_values import parse_card_date, parse_card_sex
from mynakit.card.file_objects import located_by_offset_table, objects_with_raw, outer_object
from mynakit.card.jpki import DIGEST_INFO_PREFIXES
from mynakit.errors import DataError
from mynakit.iso7816 import tlv
from mynakit.personal import Sex

TAG_CARD_FACE = 0xFF20
TAG_OFFSET_TABLE = 0xDF21
TAG_BIRTH_DATE = 0xDF22
TAG_SEX = 0xDF23
TAG_PUBLIC_KEY = 0xDF24
TAG_NAME_IMAGE = 0xDF25
TAG_ADDRESS_IMAGE = 0xDF26
TAG_PHOTO = 0xDF27
TAG_SIGNATURE = 0xDF28
TAG_EXPIRY = 0xDF29
TAG_SECURITY_CODE_IMAGE = 0xDF2A
_CARD_FACE_TAGS = (
    TAG_BIRTH_DATE,
    TAG_SEX,
    TAG_PUBLIC_KEY,
    TAG_NAME_IMAGE,
    TAG_ADDRESS_IMAGE,
    TAG_PHOTO,
    TAG_SIGNATURE,
    TAG_EXPIRY,
    TAG_SECURITY_CODE_IMAGE,
)
# docs/card.md §6.8: the signature covers three groups, each hashed on its own.
_SIGNED_GROUPS = (
    (TAG_BIRTH_DATE, TAG_SEX, TAG_PUBLIC_KEY),
    (TAG_NAME_IMAGE, TAG_ADDRESS_IMAGE),
    (TAG_PHOTO,),
)

TAG_AGE_RECORD = 0xFF10
TAG_AGE_BIRTH_DATE = 0xDF11
TAG_AGE_PUBLIC_KEY = 0xDF12
TAG_AGE_SIGNATURE = 0xDF13

TAG_AP_BASIC_INFO = 0xFF30
TAG_AP_ID = 0xDF31
TAG_AP_KEY_ID = 0xDF32
TAG_AP_VERSION = 0xDF33
TAG_AP_MUNICIPALITY = 0xDF34
TAG_AP_EXTRA = 0xDF35

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG 2000 in its JP2 container starts with the 12-byte signature box (ISO 15444-1 I.5.1);
# docs/card.md §6.8: "bytes 4..8 == 'jP  '".
JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"

_KEYS_BY_LENGTH = {12: "check_code_a", 14: "check_code_b"}


def image_format(data: bytes) -> str:
    """``png``, ``jp2`` or ``unknown``, from the image's signature bytes."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JP2_SIGNATURE):
        return "jp2"
    return "unknown"


@dataclass(frozen=True)
class CardFace:
    """The card face (EF 0002, docs/card.md §6.8). Personal data throughout: ``repr`` shows none of
    it."""

    birth_date: dt.date
    sex: Sex
    public_key: rsa.RSAPublicKey
    name_image: bytes
    address_image: bytes
    photo: bytes  # JPEG 2000 in a JP2 container
    signature: bytes
    expiry_date: dt.date  # after the signature: not covered by it (docs/card.md §6.8)
    security_code_image: bytes  # not covered either
    signed_groups: tuple[bytes, bytes, bytes] = field(repr=False)

    def __repr__(self) -> str:
        return "CardFace(<redacted>)"

    def signed_digest_info(self) -> bytes:
        """The DigestInfo-like block DF28 signs (docs/card.md §6.8): the SHA-256 AlgorithmIdentifier
        with a 96-byte OCTET STRING holding SHA-256 of each group, in order.

        Ambiguity, as documented: the reference writes "SHA-256[DF22..DF24]"; we hash each
        group's TLVs exactly as written in the file (tag, length and value), like myna-card's
        ``signed_segments``, not the bare values.
        """
        digests = b"".join(hashlib.sha256(group).digest() for group in self.signed_groups)
        algorithm = DIGEST_INFO_PREFIXES["sha256"][2:17]  # 30 0D 06 09 <sha256 OID> 05 00
        octet_string = b"\x04" + tlv.encode_length(len(digests)) + digests
        inner = algorithm + octet_string
        return b"\x30" + tlv.encode_length(len(inner)) + inner


def parse_card_face(data: bytes) -> CardFace:
    objects = located_by_offset_table(data, TAG_CARD_FACE, TAG_OFFSET_TABLE, _CARD_FACE_TAGS)
    photo = objects[TAG_PHOTO].item.value
    if not photo.startswith(JP2_SIGNATURE):
        raise DataError("the face photo is not JPEG 2000 (no JP2 signature box)")
    groups = tuple(b"".join(objects[tag].raw for tag in group) for group in _SIGNED_GROUPS)
    return CardFace(
        birth_date=parse_card_date(objects[TAG_BIRTH_DATE].item.value, "birth date"),
        sex=parse_card_sex(objects[TAG_SEX].item.value),
        public_key=parse_rsa_public_key(objects[TAG_PUBLIC_KEY].item.value),
        name_image=objects[TAG_NAME_IMAGE].item.value,
        address_image=objects[TAG_ADDRESS_IMAGE].item.value,
        photo=photo,
        signature=objects[TAG_SIGNATURE].item.value,
        expiry_date=parse_card_date(objects[TAG_EXPIRY].item.value, "expiry date"),
        security_code_image=objects[TAG_SECURITY_CODE_IMAGE].item.value,
        signed_groups=(groups[0], groups[1], groups[2]),
    )


@dataclass(frozen=True)
class AgeRecord:
    """EF 0001: ``FF10 {DF11 birth YYYYMMDD, DF12 card public key, DF13 signature}``
    (docs/card.md §6.9). DF13 signs (PKCS#1 v1.5, SHA-256) every object before it, as written."""

    birth_date: dt.date
    public_key: rsa.RSAPublicKey
    signature: bytes
    signed_data: bytes = field(repr=False)

    def __repr__(self) -> str:
        return "AgeRecord(<redacted>)"

    @classmethod
    def parse(cls, data: bytes) -> AgeRecord:
        start, end = outer_object(data, TAG_AGE_RECORD)
        objects = objects_with_raw(data, start, end)
        by_tag = {entry.item.tag: entry for entry in objects}
        for tag in (TAG_AGE_BIRTH_DATE, TAG_AGE_PUBLIC_KEY, TAG_AGE_SIGNATURE):
            if tag not in by_tag:
                raise DataError(f"the age record lacks tag {tag:X}")
        signature = by_tag[TAG_AGE_SIGNATURE]
        return cls(
            birth_date=parse_card_date(by_tag[TAG_AGE_BIRTH_DATE].item.value, "birth date"),
            public_key=parse_rsa_public_key(by_tag[TAG_AGE_PUBLIC_KEY].item.value),
            signature=signature.item.value,
            signed_data=data[start : signature.start],
        )


@dataclass(frozen=True)
class VisualApBasicInfo:
    """EF 0003: ``FF30 {DF31 AP id, DF32 key id, DF33 version, DF34 municipality, DF35 ...}``
    (docs/card.md §6.9)."""

    ap_id: bytes
    key_id: bytes
    version: int
    municipality_code: str
    extra: bytes = field(repr=False)

    @classmethod
    def parse(cls, data: bytes) -> VisualApBasicInfo:
        outer = tlv.parse_single(data, TAG_AP_BASIC_INFO)
        objects = {item.tag: item.value for item in outer.children()}
        for tag in (TAG_AP_ID, TAG_AP_KEY_ID, TAG_AP_VERSION, TAG_AP_MUNICIPALITY):
            if not objects.get(tag):
                raise DataError(f"visual AP basic info lacks tag {tag:X}")
        municipality = objects[TAG_AP_MUNICIPALITY]
        if len(municipality) != 5 or not (municipality.isascii() and municipality.isdigit()):
            raise DataError("visual AP basic info: the municipality code is not 5 ASCII digits")
        return cls(
            ap_id=objects[TAG_AP_ID],
            key_id=objects[TAG_AP_KEY_ID],
            version=objects[TAG_AP_VERSION][0],
            municipality_code=municipality.decode("ascii"),
            extra=objects.get(TAG_AP_EXTRA, b""),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "ap_id": self.ap_id.hex().upper(),
            "key_id": self.key_id.hex().upper(),
            "version": self.version,
            "municipality_code": self.municipality_code,
        }


@dataclass(frozen=True)
class SignatureCheck:
    """A record's signature under the AP's CV-certified key, and that key's chain."""

    signature_valid: bool
    chain_verified: bool
    note: str

    def to_dict(self) -> dict[str, object]:
        return {
            "signature_valid": self.signature_valid,
            "chain_verified": self.chain_verified,
            "note": self.note,
        }


class VisualAp(ApplicationSession):
    """The visual AP (券面事項確認AP)."""

    application_name = "visual"
    pin_keys = ("check_code_a", "check_code_b")
    unlock_keys_by_length = _KEYS_BY_LENGTH

    def entries(self, secret: str | None = None, *, force: bool = False) -> CardFace:
        """The card face. Give check code A or B, or verify one before."""
        if secret is not None:
            self.unlock(secret, force=force)
        elif not (self.is_verified("check_code_a") or self.is_verified("check_code_b")):
            raise PinRequiredError(
                "reading the card face needs check code A or B; verify one first"
            )
        return parse_card_face(self.read_file("card_face"))

    def age_record(self, birth_date_code: str, *, force: bool = False) -> AgeRecord:
        """The age-verification record, opened by the birth date as era ``YYMMDD``
        (docs/card.md §3.3)."""
        self.verify("birth_date_code", birth_date_code, force=force)
        return AgeRecord.parse(self.read_file("age_record"))

    def ap_certificate(self) -> CvCertificate:
        return CvCertificate.parse(self.read_file("ap_certificate"))

    def ap_basic_info(self) -> VisualApBasicInfo:
        return VisualApBasicInfo.parse(self.read_file("ap_basic_info"))

    def verify_face_signature(
        self, face: CardFace, *, trusted_card_ca: CardCaKeys | None = None
    ) -> SignatureCheck:
        """Check DF28 under the key certified in EF 0004 (docs/card.md §6.8). The expiry date and
        security code image follow the signature and are not covered by it."""
        certificate = self.ap_certificate()
        try:
            recovered = certificate.public_key.recover_data_from_signature(
                face.signature, padding.PKCS1v15(), None
            )
        except InvalidSignature:
            recovered = b""
        return _signature_check(
            recovered == face.signed_digest_info(), certificate, trusted_card_ca
        )

    def verify_age_record(
        self, record: AgeRecord, *, trusted_card_ca: CardCaKeys | None = None
    ) -> SignatureCheck:
        """Check DF13 (PKCS#1 v1.5, SHA-256 over DF11‖DF12) under the EF 0004 key."""
        certificate = self.ap_certificate()
        try:
            certificate.public_key.verify(
                record.signature, record.signed_data, padding.PKCS1v15(), hashes.SHA256()
            )
            valid = True
        except InvalidSignature:
            valid = False
        return _signature_check(valid, certificate, trusted_card_ca)


def _signature_check(
    valid: bool, certificate: CvCertificate, trusted: CardCaKeys | None
) -> SignatureCheck:
    chain: ChainCheck = certificate.chain_check(trusted)
    return SignatureCheck(valid, chain.verified, chain.note)
