"""The common AP (共通カードAP): card serial, municipality code and expiry, free to read.

Record 1 of the record EF 0001 (SFI 1) holds JICSAP simple TLV ``01 1C`` + 28 ASCII digits:
serial (15) ‖ municipality code (5) ‖ expiry ``YYYYMMDD`` (docs/card.md §6.11, §7.14).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from mynakit.card.base import ApplicationSession
from mynakit.card.field_values import parse_card_date
from mynakit.errors import DataError
from mynakit.iso7816 import tlv

TAG_CARD_INFO = 0x01
CARD_INFO_LENGTH = 28
SERIAL_LENGTH = 15
MUNICIPALITY_LENGTH = 5


@dataclass(frozen=True)
class CardInfo:
    serial: str
    municipality_code: str
    expiry_date: dt.date

    @property
    def manufacture_number(self) -> str:
        """jpki/myna's "manufacture number" (謎の製造番号): characters 2..15 of the record
        value, i.e. the serial without its first two characters (docs/card.md §7.14)."""
        return self.serial[2:SERIAL_LENGTH]

    def to_dict(self) -> dict[str, object]:
        return {
            "serial": self.serial,
            "municipality_code": self.municipality_code,
            "expiry_date": self.expiry_date.isoformat(),
            "manufacture_number": self.manufacture_number,
        }


def parse_card_info(record: bytes) -> CardInfo:
    items = dict(tlv.parse_simple(record))
    value = items.get(TAG_CARD_INFO)
    if value is None:
        raise DataError("the common AP record lacks simple-TLV tag 01")
    if len(value) != CARD_INFO_LENGTH or not (value.isascii() and value.isdigit()):
        raise DataError(f"the common AP record is not {CARD_INFO_LENGTH} ASCII digits")
    text = value.decode("ascii")
    expiry_start = SERIAL_LENGTH + MUNICIPALITY_LENGTH
    return CardInfo(
        serial=text[:SERIAL_LENGTH],
        municipality_code=text[SERIAL_LENGTH:expiry_start],
        expiry_date=parse_card_date(value[expiry_start:], "expiry date"),
    )


class CommonAp(ApplicationSession):
    """The common AP (共通カードAP)."""

    application_name = "common"
    pin_keys = ("card_pin",)
    changeable_pins = ("card_pin",)  # JICSAP CHANGE KEY 80 32 00 80 (docs/card.md §7.12)

    def card_info(self) -> CardInfo:
        """READ RECORD 1 of SFI 1 (``00 B2 01 0C``), no credential (docs/card.md §7.14)."""
        file = self.application.file("card_info")
        return parse_card_info(self.read_record(file.file_id, 1))
