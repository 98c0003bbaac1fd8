"""Reader limits from PC/SC part 10 and SCARD_ATTR_MAXINPUT, and the PIN_VERIFY_STRUCTURE
(docs/readers.md §2)."""

from __future__ import annotations

import pytest

from mynakit.errors import UsageError
from mynakit.transport.limits import ReaderLimits
from mynakit.transport.pinpad import HEADER_LENGTH, PinVerifyRequest

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("limits", "max_response", "extended"),
    [
        (ReaderLimits(), None, None),
        (ReaderLimits(max_apdu_data=0), 256, False),
        (ReaderLimits(max_apdu_data=0x10000), 65536, True),
        (ReaderLimits(max_exchange=512), 510, True),  # RC-S300: 522 - 10
        (ReaderLimits(max_apdu_data=0x10000, max_exchange=512), 510, True),
        (ReaderLimits(max_exchange=261), 256, False),  # ACR122U: 271 - 10, short APDUs
        (ReaderLimits(max_apdu_data=0, max_exchange=0x10002), 256, False),
    ],
)
def test_response_cap_and_extended_length(
    limits: ReaderLimits, max_response: int | None, extended: bool | None
) -> None:
    assert limits.max_response_data == max_response
    assert limits.extended_length is extended


def test_pin_verify_structure_for_the_sign_password_lengths() -> None:
    structure = PinVerifyRequest(0x00, 0x20, 0x00, 0x9B, 6, 16, timeout_seconds=15).structure()
    assert len(structure) == HEADER_LENGTH + 5
    assert structure[:5] == bytes((15, 0, 0x82, 0, 0))
    assert structure[5:7] == bytes((16, 6))  # wPINMaxExtraDigit little-endian: max, min
    assert structure[-5:] == bytes.fromhex("0020009B00")


def test_pin_verify_structure_rejects_impossible_lengths() -> None:
    with pytest.raises(UsageError):
        PinVerifyRequest(0x00, 0x20, 0x00, 0x98, 5, 4).structure()
