"""The text AP (券面事項入力補助AP): the My Number, basic-4 information, and their integrity.

Access (docs/card.md §3.2): EF 0001 (My Number) opens with the text PIN or check code A;
EF 0002 (basic-4 information) with the text PIN or check code B; EF 0003 (integrity record)
with any of the three; EF 0004 (CV certificate) and EF 0005 (AP basic info) are free.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from mynakit.card.base import ApplicationSession
from mynakit.card.cv_certificate import CardCaKeys, CvCertificate
from mynakit.card.errors import PinRequiredError
from mynakit.card.field_values import parse_card_date, parse_card_sex
from mynakit.card.file_objects import located_by_offset_table, objects_with_raw, outer_object
from mynakit.errors import DataError, UsageError
from mynakit.iso7816 import tlv
from mynakit.personal import BasicInfo, is_valid_my_number

TAG_MY_NUMBER = 0xFF10
TAG_BASIC_INFO = 0xFF20
TAG_OFFSET_TABLE = 0xDF21
TAG_NAME = 0xDF22
TAG_ADDRESS = 0xDF23
TAG_BIRTH_DATE = 0xDF24
TAG_SEX = 0xDF25
TAG_INTEGRITY_RECORD = 0xFF30
TAG_MY_NUMBER_DIGEST = 0xDF31
TAG_BASIC_INFO_DIGEST = 0xDF32
TAG_INTEGRITY_SIGNATURE = 0xDF33
TAG_AP_BASIC_INFO = 0xFF40
TAG_AP_INFO = 0xDF41
TAG_AP_KEY_ID = 0xDF42
TAG_AP_EXTRA = 0xDF43

MY_NUMBER_LENGTH = 12
# Which secret a caller means, told apart by length: 4 digits the text PIN, 12 check code A
# (the My Number), 14 check code B (docs/card.md §4).
_KEYS_BY_LENGTH = {4: "text_pin", 12: "check_code_a", 14: "check_code_b"}


def parse_my_number(data: bytes) -> str:
    """EF 0001: ``FF 10 0C`` + 12 ASCII digits, then ``FF FF`` filler (docs/card.md §6.3).

    A number whose check digit is wrong is a ``DataError``; the message never holds the digits.
    """
    item = tlv.parse_single(data, TAG_MY_NUMBER)
    if len(item.value) != MY_NUMBER_LENGTH or not (item.value.isascii() and item.value.isdigit()):
        raise DataError("the My Number file does not hold 12 ASCII digits")
    number = item.value.decode("ascii")
    if not is_valid_my_number(number):
        raise DataError("the My Number read from the card has a wrong check digit")
    return number


def parse_basic_info(data: bytes) -> BasicInfo:
    """EF 0002: ``FF20 {DF21 offsets, DF22 name, DF23 address, DF24 birth, DF25 sex}``
    (docs/card.md §6.2)."""
    objects = located_by_offset_table(
        data, TAG_BASIC_INFO, TAG_OFFSET_TABLE, (TAG_NAME, TAG_ADDRESS, TAG_BIRTH_DATE, TAG_SEX)
    )
    return BasicInfo(
        name=_utf8(objects[TAG_NAME].item.value, "name"),
        address=_utf8(objects[TAG_ADDRESS].item.value, "address"),
        birth_date=parse_card_date(objects[TAG_BIRTH_DATE].item.value, "birth date"),
        sex=parse_card_sex(objects[TAG_SEX].item.value),
    )


def basic_info_digest_input(data: bytes) -> bytes:
    """What DF32 hashes: EF 0002's outer value without the DF21 offset table (docs/card.md §6.4)."""
    start, end = outer_object(data, TAG_BASIC_INFO)
    objects = objects_with_raw(data, start, end)
    if not objects or objects[0].item.tag != TAG_OFFSET_TABLE:
        raise DataError("the basic-4 information file does not open with its offset table")
    return data[objects[0].start + len(objects[0].raw) : end]


def _utf8(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"the {what} on the card is not UTF-8") from error


@dataclass(frozen=True)
class IntegrityRecord:
    """EF 0003: ``FF30 {DF31 SHA-256 of EF0001, DF32 SHA-256 of EF0002 minus DF21, DF33
    signature}`` (docs/card.md §6.4). ``signed_data`` is the DF31‖DF32 TLVs as written, which DF33
    signs."""

    my_number_digest: bytes
    basic_info_digest: bytes
    signature: bytes = field(repr=False)
    signed_data: bytes = field(repr=False)

    @classmethod
    def parse(cls, data: bytes) -> IntegrityRecord:
        start, end = outer_object(data, TAG_INTEGRITY_RECORD)
        objects = {entry.item.tag: entry for entry in objects_with_raw(data, start, end)}
        missing = [
            f"{tag:X}"
            for tag in (TAG_MY_NUMBER_DIGEST, TAG_BASIC_INFO_DIGEST, TAG_INTEGRITY_SIGNATURE)
            if tag not in objects
        ]
        if missing:
            raise DataError(f"the integrity record lacks {', '.join(missing)}")
        for tag in (TAG_MY_NUMBER_DIGEST, TAG_BASIC_INFO_DIGEST):
            if len(objects[tag].item.value) != hashlib.sha256().digest_size:
                raise DataError(f"integrity record digest {tag:X} is not 32 bytes (SHA-256)")
        return cls(
            my_number_digest=objects[TAG_MY_NUMBER_DIGEST].item.value,
            basic_info_digest=objects[TAG_BASIC_INFO_DIGEST].item.value,
            signature=objects[TAG_INTEGRITY_SIGNATURE].item.value,
            signed_data=objects[TAG_MY_NUMBER_DIGEST].raw + objects[TAG_BASIC_INFO_DIGEST].raw,
        )


@dataclass(frozen=True)
class IntegrityCheck:
    """The outcome of :meth:`TextAp.verify_integrity`. A digest is ``None`` when the file it
    covers could not be read with the credential given (check code A does not open EF 0002)."""

    my_number_digest_matches: bool | None
    basic_info_digest_matches: bool | None
    signature_valid: bool
    chain_verified: bool
    signer_key_id: bytes
    note: str

    @property
    def ok(self) -> bool:
        """The record is signed by the AP's certified key and every checked digest matches.
        ``chain_verified`` is reported separately: real card-CA keys are not bundled."""
        return (
            self.signature_valid
            and self.my_number_digest_matches is not False
            and self.basic_info_digest_matches is not False
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "signature_valid": self.signature_valid,
            "my_number_digest_matches": self.my_number_digest_matches,
            "basic_info_digest_matches": self.basic_info_digest_matches,
            "chain_verified": self.chain_verified,
            "signer_key_id": self.signer_key_id.hex().upper(),
            "note": self.note,
        }


@dataclass(frozen=True)
class TextApBasicInfo:
    """EF 0005: ``FF40 {DF41 4 bytes, DF42 key id, DF43 ...}`` (docs/card.md §6.6)."""

    spec_version: int
    extended_length: int  # the "ExtAPDU" byte; observed 03
    vendor_id: int
    vendor_byte: int
    key_id: bytes
    extra: bytes = field(repr=False)

    @classmethod
    def parse(cls, data: bytes) -> TextApBasicInfo:
        outer = tlv.parse_single(data, TAG_AP_BASIC_INFO)
        objects = {item.tag: item.value for item in outer.children()}
        info = objects.get(TAG_AP_INFO)
        key_id = objects.get(TAG_AP_KEY_ID)
        if info is None or len(info) != 4:
            raise DataError("text AP basic info: DF41 is not 4 bytes")
        if key_id is None or len(key_id) != 16:
            raise DataError("text AP basic info: DF42 is not a 16-byte key id")
        return cls(info[0], info[1], info[2], info[3], key_id, objects.get(TAG_AP_EXTRA, b""))

    def to_dict(self) -> dict[str, object]:
        return {
            "spec_version": self.spec_version,
            "extended_length": self.extended_length,
            "vendor_id": self.vendor_id,
            "vendor_byte": self.vendor_byte,
            "key_id": self.key_id.hex().upper(),
        }


class TextAp(ApplicationSession):
    """The text AP (券面事項入力補助AP)."""

    application_name = "text"
    pin_keys = ("text_pin", "check_code_a", "check_code_b")
    changeable_pins = ("text_pin",)
    unlock_keys_by_length = _KEYS_BY_LENGTH

    def my_number(self, secret: str | None = None, *, force: bool = False) -> str:
        """The My Number. Give the text PIN or check code A, or verify one before."""
        self._open_file("my_number", secret, force)
        return parse_my_number(self.read_file("my_number"))

    def basic_info(self, secret: str | None = None, *, force: bool = False) -> BasicInfo:
        """Basic-4 information. Give the text PIN or check code B, or verify one before."""
        self._open_file("basic_info", secret, force)
        return parse_basic_info(self.read_file("basic_info"))

    def integrity_record(
        self, secret: str | None = None, *, force: bool = False
    ) -> IntegrityRecord:
        self._open_file("integrity_record", secret, force)
        return IntegrityRecord.parse(self.read_file("integrity_record"))

    def ap_certificate(self) -> CvCertificate:
        return CvCertificate.parse(self.read_file("ap_certificate"))

    def ap_basic_info(self) -> TextApBasicInfo:
        return TextApBasicInfo.parse(self.read_file("ap_basic_info"))

    def verify_integrity(
        self,
        secret: str | None = None,
        *,
        trusted_card_ca: CardCaKeys | None = None,
        force: bool = False,
    ) -> IntegrityCheck:
        """Check EF 0003 (docs/card.md §6.4): DF31 against EF 0001's 17 physical bytes, DF32 against
        EF 0002 without its offset table, DF33 under the key of this AP's CV certificate, and that
        certificate under a trusted card-CA key when one is given (docs/card.md §6.5).

        Reads only what the verified credential opens: a file it does not open is reported as
        not checked (``None``), never guessed.
        """
        record = self.integrity_record(secret, force=force)
        certificate = self.ap_certificate()
        try:
            certificate.public_key.verify(
                record.signature, record.signed_data, padding.PKCS1v15(), hashes.SHA256()
            )
            signature_valid = True
        except InvalidSignature:
            signature_valid = False
        my_number_matches: bool | None = None
        if self._can_read("my_number"):
            my_number_file = self.read_file("my_number")
            my_number_matches = hashlib.sha256(my_number_file).digest() == record.my_number_digest
        basic_info_matches: bool | None = None
        if self._can_read("basic_info"):
            basic_info_file = self.read_file("basic_info")
            basic_info_matches = (
                hashlib.sha256(basic_info_digest_input(basic_info_file)).digest()
                == record.basic_info_digest
            )
        chain = certificate.chain_check(trusted_card_ca)
        return IntegrityCheck(
            my_number_digest_matches=my_number_matches,
            basic_info_digest_matches=basic_info_matches,
            signature_valid=signature_valid,
            chain_verified=chain.verified,
            signer_key_id=certificate.subject_key_id,
            note=chain.note,
        )

    def _can_read(self, file_name: str) -> bool:
        file = self.application.file(file_name)
        return not file.read_keys or any(key_id in self._verified for key_id in file.read_keys)

    def _open_file(self, file_name: str, secret: str | None, force: bool) -> None:
        file = self.application.file(file_name)
        allowed = [self.application.keys[key_id].name for key_id in file.read_keys]
        if secret is not None:
            key_name = _KEYS_BY_LENGTH.get(len(secret))
            if key_name is not None and key_name not in allowed:
                labels = " or ".join(self.application.key(name).label for name in allowed)
                raise UsageError(f"the {file_name.replace('_', ' ')} opens with the {labels}")
            self.unlock(secret, force=force)
        elif not self._can_read(file_name):
            labels = " or the ".join(self.application.key(name).label for name in allowed)
            raise PinRequiredError(
                f"reading the {file_name.replace('_', ' ')} needs the {labels}; verify it first"
            )
