"""Scripted readers with the documented limits of the readers used in Japan (docs/readers.md §2).

Each one puts a real virtual card behind the reader-level behaviour of a CCID reader: what it
answers to PC/SC part 10 GET_FEATURE_REQUEST / GET_TLV_PROPERTIES and to SCARD_ATTR_MAXINPUT,
and how it fails an APDU it cannot carry (the exchange fails, as libccid reports
SCARD_E_NOT_TRANSACTED; the card never sees the command). The PIN-pad reader implements
FEATURE_VERIFY_PIN_DIRECT: it checks every byte of the PIN_VERIFY_STRUCTURE, "types" the PIN the
test gave it, and sends the VERIFY to the card itself.

The connection side (learning the limits, the PIN pad) is mynakit's own code, the same that
``PcscConnection`` runs against a real reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mynakit.emulator.card_os import VirtualCard
from mynakit.errors import TransportError
from mynakit.iso7816.apdu import SHORT_MAX_RESPONSE
from mynakit.transport.limits import (
    CCID_HEADER_LENGTH,
    CM_IOCTL_GET_FEATURE_REQUEST,
    FEATURE_GET_TLV_PROPERTIES,
    FEATURE_VERIFY_PIN_DIRECT,
    PROPERTY_MAX_APDU_DATA_SIZE,
    PROPERTY_MAX_PIN_SIZE,
    PROPERTY_MIN_PIN_SIZE,
    SCARD_ATTR_MAXINPUT,
    ReaderFeatures,
    ReaderLimits,
    learn_reader_features,
)
from mynakit.transport.pinpad import HEADER_LENGTH, PinPad

# Control codes as libccid numbers them: SCARD_CTL_CODE(3500 + feature tag).
_GET_TLV_PROPERTIES_CODE = 0x42000000 + 3500 + FEATURE_GET_TLV_PROPERTIES
_VERIFY_PIN_DIRECT_CODE = 0x42000000 + 3500 + FEATURE_VERIFY_PIN_DIRECT
# the reader refuses a malformed PIN structure (CCID docs/card.md §6.2.6)
SW_INVALID_PARAMETER = b"\x6b\x80"


@dataclass(frozen=True)
class ReaderModel:
    """One reader's CCID descriptor facts and what its driver answers (docs/readers.md §2)."""

    name: str
    #: "short" (Short APDU level: no extended APDU) or "extended" (Short and Extended APDU level,
    #: or TPDU level, where the host's T=1 framing carries extended APDUs).
    exchange_level: str
    max_ccid_message: int
    #: dwMaxAPDUDataSize the driver reports (None: no GET_TLV_PROPERTIES feature).
    max_apdu_data: int | None
    #: Whether the driver answers SCARD_ATTR_MAXINPUT (dwMaxCCIDMessageLength - 10).
    reports_max_input: bool = True
    pin_pad: bool = False
    min_pin_size: int = 4
    max_pin_size: int = 16

    @property
    def max_exchange(self) -> int:
        return self.max_ccid_message - CCID_HEADER_LENGTH


# docs/readers.md §2: RC-S300 "Short and Extended APDU level", dwMaxCCIDMessageLength 522.
SONY_RC_S300 = ReaderModel("Sony RC-S300/P", "extended", 522, 0x10000)
# ACR122U: "Short APDU level", 271 bytes: no extended APDUs.
ACS_ACR122U = ReaderModel("ACS ACR122U PICC Interface", "short", 271, 0)
# ACR1251 contact slot: "Short APDU level" only, 288 bytes (bPINSupport 0x03 treated as none).
ACS_ACR1251_CONTACT = ReaderModel("ACS ACR1251 Dual Reader ICC", "short", 288, 0)
# The same slot with a driver that says nothing: the limits are learnt from the first failure.
ACS_ACR1251_CONTACT_SILENT = ReaderModel(
    "ACS ACR1251 Dual Reader ICC (no part 10)", "short", 288, None, reports_max_input=False
)
# A TPDU-level contact reader with a keypad (PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT).
PIN_PAD_READER = ReaderModel(
    "Generic CCID PIN pad", "extended", 0x10000 + CCID_HEADER_LENGTH + 2, 0x10000, pin_pad=True
)

MODELS = (SONY_RC_S300, ACS_ACR122U, ACS_ACR1251_CONTACT, PIN_PAD_READER)


@dataclass
class ScriptedReader:
    """A ``Connection`` and ``ReaderPort`` for ``card`` behind a reader of ``model``."""

    model: ReaderModel
    card: VirtualCard
    #: The digits the holder types on the keypad (PIN-pad model only).
    typed_pin: str | None = None
    exchanges: list[bytes] = field(default_factory=list)
    failed_exchanges: list[bytes] = field(default_factory=list)
    pin_structures: list[bytes] = field(default_factory=list)
    structure_errors: list[str] = field(default_factory=list)
    _features: ReaderFeatures | None = None
    _closed: bool = False

    def __post_init__(self) -> None:
        self.card.reset()
        self._features = learn_reader_features(self)

    # -- Connection -------------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return self.card.atr

    @property
    def reader_name(self) -> str:
        return self.model.name

    @property
    def features(self) -> ReaderFeatures:
        assert self._features is not None
        return self._features

    @property
    def limits(self) -> ReaderLimits:
        return self.features.limits

    @property
    def extended_length(self) -> bool | None:
        return self.limits.extended_length

    @property
    def pin_pad(self) -> PinPad | None:
        if self.features.verify_pin_direct is None:
            return None
        return PinPad(self, self.features)

    def transmit(self, command: bytes) -> bytes:
        if self._closed:
            raise TransportError("closed")
        extended = _is_extended_form(command)
        too_long = len(command) > self.model.max_exchange
        if (extended and self.model.exchange_level == "short") or too_long:
            self.failed_exchanges.append(command)
            raise TransportError(
                f"{self.model.name!r} failed the exchange [PC/SC transmit: 0x80100016]"
            )
        response = self.card.execute(command)
        if len(response) > self.model.max_exchange:
            # The answer does not fit one CCID message: the reader reports an error instead.
            self.failed_exchanges.append(command)
            raise TransportError(
                f"{self.model.name!r} failed the exchange [PC/SC transmit: 0x80100016]"
            )
        self.exchanges.append(command)
        return response

    def reset(self, *, cold: bool = False) -> bytes:
        self.card.reset()
        return self.card.atr

    def close(self) -> None:
        self._closed = True

    # -- ReaderPort -------------------------------------------------------------------------

    def control(self, control_code: int, data: bytes = b"") -> bytes | None:
        if control_code == CM_IOCTL_GET_FEATURE_REQUEST:
            answer = b""
            if self.model.max_apdu_data is not None:
                answer += bytes((FEATURE_GET_TLV_PROPERTIES, 4))
                answer += _GET_TLV_PROPERTIES_CODE.to_bytes(4, "big")
            if self.model.pin_pad:
                answer += bytes((FEATURE_VERIFY_PIN_DIRECT, 4))
                answer += _VERIFY_PIN_DIRECT_CODE.to_bytes(4, "big")
            return answer or None
        if control_code == _GET_TLV_PROPERTIES_CODE and self.model.max_apdu_data is not None:
            answer = bytes((PROPERTY_MAX_APDU_DATA_SIZE, 4))
            answer += self.model.max_apdu_data.to_bytes(4, "little")
            if self.model.pin_pad:
                answer += bytes((PROPERTY_MIN_PIN_SIZE, 1, self.model.min_pin_size))
                answer += bytes((PROPERTY_MAX_PIN_SIZE, 1, self.model.max_pin_size))
            return answer
        if control_code == _VERIFY_PIN_DIRECT_CODE and self.model.pin_pad:
            return self._verify_pin_direct(data)
        return None

    def attribute(self, attribute_id: int) -> bytes | None:
        if attribute_id == SCARD_ATTR_MAXINPUT and self.model.reports_max_input:
            return self.model.max_exchange.to_bytes(4, "little")
        return None

    # -- the keypad -------------------------------------------------------------------------

    def _verify_pin_direct(self, structure: bytes) -> bytes:
        """Check the PIN_VERIFY_STRUCTURE byte by byte (PC/SC part 10 §2.5.2), then send the
        VERIFY with the typed digits to the card and return its SW1 SW2."""
        self.pin_structures.append(structure)
        errors = []
        if len(structure) != HEADER_LENGTH + 5:
            errors.append(f"length {len(structure)}")
            self.structure_errors.extend(errors)
            return SW_INVALID_PARAMETER
        expected_fixed = {
            2: 0x82,  # bmFormatString: bytes, position 0, ASCII
            3: 0x00,  # bmPINBlockString: the entered length
            4: 0x00,  # bmPINLengthFormat: no length field
            7: 0x02,  # bEntryValidationCondition: OK key
            8: 0x01,  # bNumberMessage
            9: 0x11,  # wLangId 0x0411 little-endian
            10: 0x04,
            11: 0x00,  # bMsgIndex
            12: 0x00,  # bTeoPrologue
            13: 0x00,
            14: 0x00,
        }
        for offset, value in expected_fixed.items():
            if structure[offset] != value:
                errors.append(f"byte {offset} is {structure[offset]:02X}, not {value:02X}")
        maximum, minimum = structure[5], structure[6]
        data_length = int.from_bytes(structure[15:19], "little")
        template = structure[19:]
        if data_length != 5 or template[4] != 0x00 or template[:2] != b"\x00\x20":
            errors.append(f"APDU template {template.hex()} (ulDataLength {data_length})")
        pin = self.typed_pin or ""
        if not minimum <= len(pin) <= maximum:
            errors.append(f"typed {len(pin)} digits outside {minimum}-{maximum}")
        if errors:
            self.structure_errors.extend(errors)
            return SW_INVALID_PARAMETER
        command = template[:4] + bytes((len(pin),)) + pin.encode("ascii")
        return self.card.execute(command)[-2:]


def _is_extended_form(command: bytes) -> bool:
    """ISO 7816-4 §5.1: after the header, 00 followed by two length bytes (body of 3+)."""
    return len(command) >= 7 and command[4] == 0x00


def fewest_reads(size: int, limits: ReaderLimits) -> int:
    """The fewest READ BINARY commands that fetch ``size`` bytes through a reader with
    ``limits`` (each carries at most its response cap; a short APDU at most 256)."""
    cap = limits.max_response_data if limits.extended_length else SHORT_MAX_RESPONSE
    assert cap is not None
    return -(-size // cap)
