"""Values written as ASCII on the card face APs and the common AP: ``YYYYMMDD`` dates and the
one-digit sex code (docs/card.md §6.2, §6.8, §6.11).

Pure: bytes in, values out; malformed input is always a ``DataError``.
"""

from __future__ import annotations

import datetime as dt

from mynakit.errors import DataError
from mynakit.personal import Sex


def parse_card_date(value: bytes, what: str) -> dt.date:
    """An 8-digit ASCII ``YYYYMMDD`` Gregorian date, as the 券面 APs write dates
    (docs/card.md §6.2, §6.8)."""
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise DataError(f"the {what} is not 8 ASCII digits (YYYYMMDD)")
    try:
        return dt.date(int(value[:4]), int(value[4:6]), int(value[6:8]))
    except ValueError as error:
        raise DataError(f"the {what} is not a calendar date") from error


def parse_card_sex(value: bytes) -> Sex:
    """One ASCII digit (docs/card.md §6.2): 1 male, 2 female, 9 not applicable, 0 unknown."""
    try:
        code = value.decode("ascii")
    except UnicodeDecodeError as error:
        raise DataError("the sex code is not ASCII") from error
    return Sex.from_card_code(code)
