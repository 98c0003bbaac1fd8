"""PIN entry on the reader's own keypad: PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT.

The host sends ``SCardControl(code, PIN_VERIFY_STRUCTURE)`` holding a VERIFY template with no
PIN in it; the reader asks the holder for the PIN, puts it into the APDU, sends it to the card
and hands back the card's SW1 SW2. The PIN never passes through the host. Every descriptor of
docs/readers.md §2 reports no PIN pad (bPINSupport 0x00, the ACR1251 contact slot's 0x03 aside,
which is treated as none), so this is used when a reader offers it and never assumed.

The My Number card takes its PINs as ASCII digits of the PIN's own length, no padding and no
length byte (docs/card.md §7.6): bmFormatString 0x82 (units of bytes, PIN at offset 0 of the
data, ASCII), bmPINBlockString 0x00 (block size = number of digits entered; the reader sets
Lc), bmPINLengthFormat 0x00 (no length field).
"""

from __future__ import annotations

from mynakit.errors import TransportError, UsageError
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

    from mynakit.transport.limits import ReaderFeatures, ReaderPort

# PC/SC part 10 §2.5.2 / USB CCID docs/card.md §6.1.11: PIN_VERIFY_STRUCTURE field values.
FORMAT_BYTES_ASCII_AT_ZERO: Final = 0x82  # bit 7 units bytes, bits 6-3 position 0, bits 1-0 ASCII
PIN_BLOCK_SIZE_AS_ENTERED: Final = 0x00
NO_PIN_LENGTH_FIELD: Final = 0x00
VALIDATION_KEY_PRESSED: Final = 0x02  # bEntryValidationCondition: the holder presses OK
ONE_MESSAGE: Final = 0x01  # bNumberMessage: "Enter PIN"
LANGUAGE_JAPANESE: Final = 0x0411  # wLangId (Windows LANGID ja-JP)
DEFAULT_TIMEOUT_SECONDS: Final = 30
HEADER_LENGTH: Final = 19  # every field before abData
# Reader answers instead of a card SW (PC/SC part 10 §2.5.2, CCID docs/card.md §6.2.6 bError
# mapping).
SW_PIN_PAD_TIMEOUT: Final = 0x6400
SW_PIN_PAD_CANCELLED: Final = 0x6401


class PinPadCancelledError(TransportError):
    """The holder cancelled PIN entry on the reader, or did not finish it in time."""


class PinVerifyRequest(ValueObject):
    """One VERIFY to run on the keypad: the APDU header and the PIN's allowed lengths."""

    __slots__ = ("cla", "ins", "max_length", "min_length", "p1", "p2", "timeout_seconds")

    def __init__(
        self,
        cla: int,
        ins: int,
        p1: int,
        p2: int,
        min_length: int,
        max_length: int,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.cla: Final = cla
        self.ins: Final = ins
        self.p1: Final = p1
        self.p2: Final = p2
        self.min_length: Final = min_length
        self.max_length: Final = max_length
        self.timeout_seconds: Final = timeout_seconds

    def structure(self) -> bytes:
        """The PIN_VERIFY_STRUCTURE bytes (multi-byte fields little-endian, PC/SC part 10)."""
        if not 1 <= self.min_length <= self.max_length <= 0xFF:
            raise UsageError(f"PIN lengths {self.min_length}-{self.max_length} do not fit a keypad")
        # abData: the VERIFY header and Lc 00; the reader inserts the digits and sets Lc.
        template = bytes((self.cla, self.ins, self.p1, self.p2, 0x00))
        return (
            bytes(
                (
                    self.timeout_seconds & 0xFF,  # bTimerOut
                    0x00,  # bTimerOut2: same as bTimerOut
                    FORMAT_BYTES_ASCII_AT_ZERO,
                    PIN_BLOCK_SIZE_AS_ENTERED,
                    NO_PIN_LENGTH_FIELD,
                )
            )
            # wPINMaxExtraDigit: XXYY with XX the minimum and YY the maximum digits.
            + ((self.min_length << 8) | self.max_length).to_bytes(2, "little")
            + bytes((VALIDATION_KEY_PRESSED, ONE_MESSAGE))
            + LANGUAGE_JAPANESE.to_bytes(2, "little")
            + bytes((0x00,))  # bMsgIndex
            + bytes(3)  # bTeoPrologue: T=1 prologue filled by the reader
            + len(template).to_bytes(4, "little")  # ulDataLength
            + template
        )


class PinPad:
    """A reader keypad reached by ``SCardControl`` through a ``ReaderPort``."""

    def __init__(self, port: ReaderPort, features: ReaderFeatures) -> None:
        if features.verify_pin_direct is None:
            raise UsageError("this reader offers no FEATURE_VERIFY_PIN_DIRECT")
        self._port = port
        self._control_code = features.verify_pin_direct
        self.min_pin_size = features.min_pin_size
        self.max_pin_size = features.max_pin_size
        #: Told each keypad VERIFY and its SW (a trace line): never the PIN, which it never has.
        self.observer: Callable[[str], None] | None = None

    def accepts(self, min_length: int, max_length: int) -> bool:
        """Whether the keypad can take a PIN of these lengths (GET_TLV_PROPERTIES bounds)."""
        if self.min_pin_size is not None and max_length < self.min_pin_size:
            return False
        return not (self.max_pin_size is not None and min_length > self.max_pin_size)

    def verify(self, request: PinVerifyRequest) -> int:
        """Run the VERIFY on the keypad; return the card's status word.

        Sent exactly once: a failed entry is never repeated here (the caller decides).
        """
        header = bytes((request.cla, request.ins, request.p1, request.p2)).hex(" ").upper()
        if self.observer is not None:
            self.observer(f"> {header} (PIN typed on the reader's keypad)")
        answer = self._port.control(self._control_code, request.structure())
        if self.observer is not None:
            self.observer(f"< {answer.hex().upper() if answer else 'no answer'}")
        if answer is None or len(answer) < 2:
            raise TransportError(
                "the reader's PIN pad did not answer: retry, or enter the PIN here"
            )
        status = int.from_bytes(answer[-2:], "big")
        if status == SW_PIN_PAD_TIMEOUT:
            raise PinPadCancelledError("no PIN was entered on the reader in time; nothing was sent")
        if status == SW_PIN_PAD_CANCELLED:
            raise PinPadCancelledError("PIN entry was cancelled on the reader; nothing was sent")
        return status
