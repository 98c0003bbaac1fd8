"""Personal data value types shared by every layer: basic-4 information, sex, Japanese era dates,
and the My Number check digit.

These are plain values with no I/O, so the card sessions, the relying side and the virtual card
all use the same types (docs/architecture.md §9: "basic-4 information", "Japanese era date").
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from mynakit.errors import DataError, UsageError


class Sex(enum.Enum):
    """Sex as the card encodes it.

    The text and visual APs use ISO 5218-like digits (docs/card.md §6.2): "1" male, "2"
    female, "9" not applicable, "0" unknown. The signature certificate uses "1", "2", "3"
    (docs/card.md §9.2, UNCONFIRMED), so conversion goes through the two ``from_*`` constructors.
    """

    MALE = "male"
    FEMALE = "female"
    NOT_APPLICABLE = "not_applicable"
    UNKNOWN = "unknown"

    @classmethod
    def from_card_code(cls, code: str) -> Sex:
        try:
            return _CARD_SEX_CODES[code]
        except KeyError:
            raise DataError("the sex code on the card is not one of 0, 1, 2, 9") from None

    @property
    def card_code(self) -> str:
        return _CARD_SEX_CODES_REVERSE[self]

    @classmethod
    def from_certificate_code(cls, code: str) -> Sex:
        try:
            return _CERTIFICATE_SEX_CODES[code]
        except KeyError:
            raise DataError("the sex code in the certificate is not one of 1, 2, 3") from None

    @property
    def certificate_code(self) -> str:
        return _CERTIFICATE_SEX_CODES_REVERSE.get(self, "3")


_CARD_SEX_CODES = {
    "1": Sex.MALE,
    "2": Sex.FEMALE,
    "9": Sex.NOT_APPLICABLE,
    "0": Sex.UNKNOWN,
}
_CARD_SEX_CODES_REVERSE = {value: key for key, value in _CARD_SEX_CODES.items()}
_CERTIFICATE_SEX_CODES = {"1": Sex.MALE, "2": Sex.FEMALE, "3": Sex.UNKNOWN}
_CERTIFICATE_SEX_CODES_REVERSE = {value: key for key, value in _CERTIFICATE_SEX_CODES.items()}


class Era(enum.IntEnum):
    """Japanese eras with the one-digit codes of docs/architecture.md §9 (明治1 大正2 昭和3 平成4
    令和5)."""

    MEIJI = 1
    TAISHO = 2
    SHOWA = 3
    HEISEI = 4
    REIWA = 5

    @property
    def kanji(self) -> str:
        return _ERA_KANJI[self]

    @property
    def first_day(self) -> dt.date:
        return _ERA_START[self]


_ERA_KANJI = {
    Era.MEIJI: "明治",
    Era.TAISHO: "大正",
    Era.SHOWA: "昭和",
    Era.HEISEI: "平成",
    Era.REIWA: "令和",
}
_ERA_START = {
    Era.MEIJI: dt.date(1868, 10, 23),
    Era.TAISHO: dt.date(1912, 7, 30),
    Era.SHOWA: dt.date(1926, 12, 25),
    Era.HEISEI: dt.date(1989, 1, 8),
    Era.REIWA: dt.date(2019, 5, 1),
}


@dataclass(frozen=True)
class EraDate:
    """A date written in the Japanese era calendar (和暦)."""

    era: Era
    year: int  # 1 = 元年
    month: int
    day: int

    @classmethod
    def from_date(cls, date: dt.date) -> EraDate:
        for era in sorted(Era, reverse=True):
            if date >= era.first_day:
                return cls(era, date.year - era.first_day.year + 1, date.month, date.day)
        raise UsageError(f"{date.isoformat()} is before the Meiji era")

    def to_date(self) -> dt.date:
        return dt.date(self.era.first_day.year + self.year - 1, self.month, self.day)

    @property
    def yymmdd(self) -> str:
        """Era year, month, day as six digits: the form of check code B (docs/card.md §4)."""
        return f"{self.year:02d}{self.month:02d}{self.day:02d}"

    @classmethod
    def from_certificate_value(cls, value: str) -> EraDate:
        """Parse the signature certificate's ``EYYYYMMDD`` birth date (docs/card.md §9.2).

        The four year digits hold the Gregorian year; the leading digit names the era.
        """
        if len(value) != 9 or not (value.isascii() and value.isdigit()):
            # The value is personal data: keep it out of the message (privacy rules).
            raise DataError("the birth date is not of the form EYYYYMMDD")
        era_code = int(value[0])
        try:
            date = dt.date(int(value[1:5]), int(value[5:7]), int(value[7:9]))
        except ValueError as error:
            raise DataError("the birth date is not a calendar date") from error
        derived = cls.from_date(date)
        if era_code != 0 and era_code != derived.era:
            raise DataError("the birth date's era code does not match its year")
        return derived

    def certificate_value(self) -> str:
        date = self.to_date()
        return f"{self.era.value}{date.year:04d}{date.month:02d}{date.day:02d}"

    def __str__(self) -> str:
        year = "元" if self.year == 1 else str(self.year)
        return f"{self.era.kanji}{year}年{self.month}月{self.day}日"


@dataclass(frozen=True)
class BasicInfo:
    """Basic-4 information (基本4情報). Never logged (docs/architecture.md §6)."""

    name: str
    address: str
    birth_date: dt.date
    sex: Sex

    def __repr__(self) -> str:
        # Keep personal data out of tracebacks and logs that format objects with repr().
        return "BasicInfo(<redacted>)"


def my_number_check_digit(first_eleven: str) -> int:
    """Check digit of a My Number (docs/card.md Appendix A)."""
    if len(first_eleven) != 11 or not (first_eleven.isascii() and first_eleven.isdigit()):
        raise UsageError("a My Number check digit needs exactly 11 digits")
    digits = [int(character) for character in reversed(first_eleven)]  # P1 is the rightmost
    total = sum(
        digit * (position + 1 if position <= 6 else position - 5)
        for position, digit in enumerate(digits, start=1)
    )
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_valid_my_number(value: str) -> bool:
    return (
        len(value) == 12
        and value.isascii()
        and value.isdigit()
        and my_number_check_digit(value[:11]) == int(value[11])
    )


def check_code_b(birth_date: dt.date, expiry_year: int, security_code: str) -> str:
    """Check code B (照合番号B): era ``YYMMDD`` of birth, expiry year, security code
    (docs/card.md §4)."""
    if len(security_code) != 4 or not (security_code.isascii() and security_code.isdigit()):
        raise UsageError("the security code printed on the card has 4 digits")
    if not 1000 <= expiry_year <= 9999:
        raise UsageError("the expiry year has 4 digits")
    return EraDate.from_date(birth_date).yymmdd + f"{expiry_year:04d}" + security_code
