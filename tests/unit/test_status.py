from __future__ import annotations

import pytest

from mynakit.iso7816.status import ApduError, StatusWord, describe, status_name, tries_left

pytestmark = pytest.mark.unit


def test_known_status_words_name_and_describe() -> None:
    assert StatusWord(0x6984) is StatusWord.REFERENCE_DATA_BLOCKED
    assert "blocked" in describe(0x6984)
    assert status_name(0x6B00) == "OFFSET_OUTSIDE_FILE"


@pytest.mark.parametrize(
    ("sw", "text"),
    [
        (0x63C2, "2 tries left"),
        (0x63C0, "0 tries left"),
        (0x6110, "16 more bytes"),
        (0x6100, "256 more bytes"),
        (0x6C20, "has 32 bytes"),
        (0x6F42, "unknown status word"),
    ],
)
def test_families_and_unknowns_print_usefully(sw: int, text: str) -> None:
    assert text in describe(sw)


def test_apdu_error_carries_the_status_word() -> None:
    error = ApduError(0x63C1, command="00 20 00 98")
    assert error.sw == 0x63C1
    assert error.tries_left == 1
    assert error.status is None
    assert str(error) == "card answered 63C1 to 00 20 00 98: verification failed, 1 tries left"
    unknown = ApduError(0x6F42)
    assert "6F42" in str(unknown) and unknown.status is None
    assert ApduError(0x6982).status is StatusWord.SECURITY_STATUS_NOT_SATISFIED
    assert tries_left(0x9000) is None
