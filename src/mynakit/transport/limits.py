"""What a reader can carry, learnt before the first large read (docs/readers.md §2).

Two sources, both asked once when a connection opens:

* PC/SC part 10 §2.2: ``CM_IOCTL_GET_FEATURE_REQUEST`` lists the reader's features with their
  control codes; ``FEATURE_GET_TLV_PROPERTIES`` answers TLVs, of which ``dwMaxAPDUDataSize``
  (tag 0x0A) is the largest APDU data the reader carries (0: short APDUs only).
* ``SCARD_ATTR_MAXINPUT`` (PC/SC part 3, class 7 attribute 0xA007): the largest message the
  reader passes to the card, which for a CCID reader is ``dwMaxCCIDMessageLength`` less the
  10-byte CCID header (USB CCID docs/card.md §6.1.4). The Sony RC-S300 declares 522 bytes, so an
  exchange carries at most 512 bytes of APDU (docs/readers.md §2, RC-S300 row).

The ISO 7816 layer cannot import this module (it sits below the transport), so the limits reach
``ApduProtocol`` as plain numbers through ``protocol_for``.
"""

from __future__ import annotations

from mynakit.iso7816.apdu import EXTENDED_MAX_RESPONSE, SHORT_MAX_RESPONSE
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Final, Protocol

    from mynakit.iso7816.protocol import ApduProtocol, Transmitter

# PC/SC part 10 §2.2 and §2.3: feature tags and their TLV properties.
CM_IOCTL_GET_FEATURE_REQUEST: Final = 0x42000000 + 3400  # SCARD_CTL_CODE(3400) on pcsc-lite
FEATURE_VERIFY_PIN_DIRECT: Final = 0x06
FEATURE_GET_TLV_PROPERTIES: Final = 0x12
PROPERTY_MIN_PIN_SIZE: Final = 0x06
PROPERTY_MAX_PIN_SIZE: Final = 0x07
PROPERTY_MAX_APDU_DATA_SIZE: Final = 0x0A
# PC/SC part 3 §3.1.1: SCARD_ATTR_VALUE(SCARD_CLASS_COMMUNICATIONS, 0x0007) = 0x7A007.
SCARD_ATTR_MAXINPUT: Final = 0x0007A007
# USB CCID docs/card.md §6.1: every bulk-out message starts with a 10-byte header.
CCID_HEADER_LENGTH: Final = 10
STATUS_WORD_LENGTH: Final = 2
#: The longest short command APDU: header, Lc, 255 data bytes, Le (ISO 7816-4 §5.1).
LONGEST_SHORT_COMMAND: Final = 4 + 1 + 255 + 1
#: An extended READ BINARY (ISO 7816-4 §5.1: header, 00, Le1 Le2) is 7 bytes; a short one 5.
EXTENDED_READ_COMMAND_LENGTH: Final = 7


if TYPE_CHECKING:
    # A protocol for the type checker only: nothing checks it at run time.

    class ReaderPort(Protocol):
        """The reader-level calls a connection offers beyond APDUs: ``SCardControl`` and
        ``SCardGetAttrib``. Each returns ``None`` when the reader does not support the
        request."""

        def control(self, control_code: int, data: bytes = b"") -> bytes | None: ...

        def attribute(self, attribute_id: int) -> bytes | None: ...


def parse_feature_request(response: bytes) -> dict[int, int]:
    """Feature tag -> control code from a GET_FEATURE_REQUEST answer (tag, 04, code big-endian)."""
    features: dict[int, int] = {}
    offset = 0
    while offset + 2 <= len(response):
        tag, length = response[offset], response[offset + 1]
        value = response[offset + 2 : offset + 2 + length]
        if length == 4 and len(value) == 4:
            features[tag] = int.from_bytes(value, "big")
        offset += 2 + length
    return features


def parse_tlv_properties(response: bytes) -> dict[int, int | bytes]:
    """Property tag -> value from a GET_TLV_PROPERTIES answer; integers are little-endian."""
    properties: dict[int, int | bytes] = {}
    offset = 0
    while offset + 2 <= len(response):
        tag, length = response[offset], response[offset + 1]
        value = response[offset + 2 : offset + 2 + length]
        if len(value) < length:
            break  # truncated: keep what parsed
        properties[tag] = int.from_bytes(value, "little") if length in (1, 2, 4) else value
        offset += 2 + length
    return properties


def max_apdu_data_size(tlv_properties: bytes) -> int | None:
    value = parse_tlv_properties(tlv_properties).get(PROPERTY_MAX_APDU_DATA_SIZE)
    return value if isinstance(value, int) else None


class ReaderLimits(ValueObject):
    """The reader's limits as far as it told us; ``None`` fields are unknown.

    ``max_apdu_data``: dwMaxAPDUDataSize (PC/SC part 10). ``max_exchange``: the largest APDU
    (command or response, with SW1 SW2) one exchange carries (SCARD_ATTR_MAXINPUT).
    """

    __slots__ = ("max_apdu_data", "max_exchange", "source")

    def __init__(
        self,
        max_apdu_data: int | None = None,
        max_exchange: int | None = None,
        source: str = "unknown",
    ) -> None:
        self.max_apdu_data: Final = max_apdu_data
        self.max_exchange: Final = max_exchange
        self.source: Final = source

    @property
    def max_response_data(self) -> int | None:
        """The most response data one command can ask for, ``None`` if the reader did not say."""
        caps = []
        if self.max_apdu_data is not None:
            caps.append(self.max_apdu_data if self.max_apdu_data > 0 else SHORT_MAX_RESPONSE)
        if self.max_exchange is not None:
            if self.max_exchange <= LONGEST_SHORT_COMMAND:
                # Sized for short APDUs and no more (CCID "Short APDU level", 271-byte
                # messages such as the ACR122U's): never an extended APDU.
                caps.append(SHORT_MAX_RESPONSE)
            else:
                caps.append(self.max_exchange - STATUS_WORD_LENGTH)
        if not caps:
            return None
        return max(1, min(min(caps), EXTENDED_MAX_RESPONSE))

    @property
    def extended_length(self) -> bool | None:
        """Whether an extended APDU (Le above 256) fits through this reader."""
        cap = self.max_response_data
        if cap is None:
            return None
        if self.max_exchange is not None and self.max_exchange < EXTENDED_READ_COMMAND_LENGTH:
            return False
        return cap > SHORT_MAX_RESPONSE

    def to_dict(self) -> dict[str, object]:
        return {
            "max_apdu_data": self.max_apdu_data,
            "max_exchange": self.max_exchange,
            "max_response_data": self.max_response_data,
            "extended_length": self.extended_length,
            "source": self.source,
        }


class ReaderFeatures(ValueObject):
    """What a reader told us at connect: its limits and its PIN-pad control code."""

    __slots__ = ("limits", "max_pin_size", "min_pin_size", "verify_pin_direct")

    def __init__(
        self,
        limits: ReaderLimits,
        verify_pin_direct: int | None = None,  # FEATURE_VERIFY_PIN_DIRECT control code
        min_pin_size: int | None = None,
        max_pin_size: int | None = None,
    ) -> None:
        self.limits: Final = limits
        self.verify_pin_direct: Final = verify_pin_direct
        self.min_pin_size: Final = min_pin_size
        self.max_pin_size: Final = max_pin_size


def learn_reader_features(port: ReaderPort) -> ReaderFeatures:
    """Ask the reader (GET_FEATURE_REQUEST, GET_TLV_PROPERTIES, SCARD_ATTR_MAXINPUT) once."""
    features: dict[int, int] = {}
    answer = port.control(CM_IOCTL_GET_FEATURE_REQUEST)
    if answer:
        features = parse_feature_request(answer)
    properties: dict[int, int | bytes] = {}
    properties_code = features.get(FEATURE_GET_TLV_PROPERTIES)
    if properties_code is not None:
        tlv_answer = port.control(properties_code)
        if tlv_answer:
            properties = parse_tlv_properties(tlv_answer)
    max_data = properties.get(PROPERTY_MAX_APDU_DATA_SIZE)
    max_input_answer = port.attribute(SCARD_ATTR_MAXINPUT)
    max_exchange = (
        int.from_bytes(max_input_answer[:4], "little")
        if max_input_answer and len(max_input_answer) >= 1
        else None
    )
    if max_exchange == 0:
        max_exchange = None  # "no limit reported", not "nothing fits"
    sources = []
    if isinstance(max_data, int):
        sources.append("dwMaxAPDUDataSize")
    if max_exchange is not None:
        sources.append("SCARD_ATTR_MAXINPUT")
    limits = ReaderLimits(
        max_apdu_data=max_data if isinstance(max_data, int) else None,
        max_exchange=max_exchange,
        source=" + ".join(sources) or "unknown",
    )
    min_pin = properties.get(PROPERTY_MIN_PIN_SIZE)
    max_pin = properties.get(PROPERTY_MAX_PIN_SIZE)
    return ReaderFeatures(
        limits=limits,
        verify_pin_direct=features.get(FEATURE_VERIFY_PIN_DIRECT),
        min_pin_size=min_pin if isinstance(min_pin, int) else None,
        max_pin_size=max_pin if isinstance(max_pin, int) else None,
    )


def limits_of(connection: object) -> ReaderLimits:
    """The limits a connection learnt, or what its ``extended_length`` alone says."""
    limits = getattr(connection, "limits", None)
    if isinstance(limits, ReaderLimits):
        return limits
    extended = getattr(connection, "extended_length", None)
    if extended is True:
        return ReaderLimits(max_apdu_data=EXTENDED_MAX_RESPONSE, source="connection")
    if extended is False:
        return ReaderLimits(max_apdu_data=0, source="connection")
    return ReaderLimits()


def protocol_for(connection: Transmitter) -> ApduProtocol:
    """The ``ApduProtocol`` for ``connection``, told the reader's limits before any read."""
    from mynakit.iso7816.protocol import ApduProtocol

    limits = limits_of(connection)
    return ApduProtocol(
        connection,
        extended_length=limits.extended_length,
        max_response_data=limits.max_response_data,
    )
