"""Command and response APDUs (ISO/IEC 7816-4 §5.1), short and extended length.

A command's ``le`` is the number of bytes expected: ``None`` for no Le field, 1..256 for a
short Le (256 is encoded ``00``), up to 65536 for an extended Le (65536 is encoded ``00 00``).
"""

from __future__ import annotations

from mynakit.errors import DataError, UsageError
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Final

SHORT_MAX_DATA = 255
SHORT_MAX_RESPONSE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_RESPONSE = 65536


class ApduParseError(DataError):
    """Bytes that are not a well-formed command or response APDU."""


class CommandApdu(ValueObject):
    __slots__ = ("cla", "data", "ins", "le", "p1", "p2")

    def __init__(
        self, cla: int, ins: int, p1: int, p2: int, data: bytes = b"", le: int | None = None
    ) -> None:
        for name, value in (("cla", cla), ("ins", ins), ("p1", p1), ("p2", p2)):
            if not 0 <= value <= 0xFF:
                raise UsageError(f"APDU {name.upper()} must be one byte, not {value:#x}")
        if len(data) > EXTENDED_MAX_DATA:
            raise UsageError(
                f"APDU data of {len(data)} bytes does not fit even an extended Lc "
                f"(at most {EXTENDED_MAX_DATA})"
            )
        if le is not None and not 1 <= le <= EXTENDED_MAX_RESPONSE:
            raise UsageError(f"APDU Le must be 1..{EXTENDED_MAX_RESPONSE} or absent, not {le}")
        self.cla: Final = cla
        self.ins: Final = ins
        self.p1: Final = p1
        self.p2: Final = p2
        self.data: Final = data
        self.le: Final = le

    @property
    def case(self) -> int:
        """ISO 7816-3 case: 1 no data no Le, 2 Le only, 3 data only, 4 both."""
        if self.data:
            return 4 if self.le is not None else 3
        return 2 if self.le is not None else 1

    @property
    def needs_extended(self) -> bool:
        return len(self.data) > SHORT_MAX_DATA or (self.le or 0) > SHORT_MAX_RESPONSE

    @property
    def channel(self) -> int:
        """Logical channel from CLA (first interindustry values only, ISO 7816-4 §5.4.1)."""
        if self.cla & 0x80:
            return 0  # proprietary class such as 80 2A: no channel bits
        if self.cla & 0x40:
            return 4 + (self.cla & 0x0F)
        return self.cla & 0x03

    def with_le(self, le: int | None) -> CommandApdu:
        return CommandApdu(self.cla, self.ins, self.p1, self.p2, self.data, le)

    def encode(self, *, extended: bool | None = None) -> bytes:
        """Encode; ``extended=None`` picks extended only when the fields need it."""
        use_extended = self.needs_extended if extended is None else extended
        if not use_extended and self.needs_extended:
            raise UsageError("this APDU needs extended length (Lc > 255 or Le > 256)")
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not use_extended:
            body = b""
            if self.data:
                body += bytes((len(self.data),)) + self.data
            if self.le is not None:
                body += bytes((self.le % 256,))
            return header + body
        # Extended form (ISO 7816-4 §5.1): a 00 marker, then 2-byte Lc and/or 2-byte Le; the
        # marker appears once, before Lc when there is data, else before Le.
        if self.case == 1:
            return header
        body = b"\x00"
        if self.data:
            body += len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            body += (self.le % 65536).to_bytes(2, "big")
        return header + body

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse a command APDU in any of the seven encodings; ``ApduParseError`` otherwise."""
        if len(raw) < 4:
            raise ApduParseError(f"a command APDU has at least 4 bytes, got {len(raw)}")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0:
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, body[1 : 1 + lc], body[1 + lc] or 256)
            raise ApduParseError(f"short Lc {lc} does not match the {len(body) - 1} bytes after it")
        # body[0] == 0 and more bytes: extended.
        if len(body) == 3:
            return cls(cla, ins, p1, p2, le=int.from_bytes(body[1:3], "big") or 65536)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduParseError("extended Lc of zero")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:])
        if len(body) == 5 + lc:
            le = int.from_bytes(body[3 + lc :], "big") or 65536
            return cls(cla, ins, p1, p2, body[3 : 3 + lc], le)
        raise ApduParseError(f"extended Lc {lc} does not match the {len(body) - 3} bytes after it")

    def __str__(self) -> str:
        return self.encode(extended=self.needs_extended).hex(" ").upper()


class ResponseApdu(ValueObject):
    __slots__ = ("data", "sw")

    def __init__(self, data: bytes, sw: int) -> None:
        self.data: Final = data
        self.sw: Final = sw

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @property
    def ok(self) -> bool:
        return self.sw == 0x9000

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise ApduParseError(f"a response APDU has at least 2 bytes (SW1 SW2), got {len(raw)}")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))
