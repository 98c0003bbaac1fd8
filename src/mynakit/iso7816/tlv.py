"""BER-TLV as the card really writes it (docs/card.md §6), and JICSAP simple TLV.

Lenient on purpose: the card uses non-minimal tags such as ``FF 10`` (private, constructed, tag
16 in long form, docs/card.md §6.1 and §11.7), which strict DER decoders reject, and files carry
``FF`` or
``00`` filler after the last object. Truncated input is always a ``TlvError``.
"""

from __future__ import annotations

from mynakit.errors import DataError
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Final

_FILLER = (0x00, 0xFF)


class TlvError(DataError):
    """Bytes that are not well-formed TLV."""


class Tlv(ValueObject):
    """One TLV object. ``tag`` holds the tag bytes as a big-endian integer (``FF 10`` -> 0xFF10)."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: int, value: bytes) -> None:
        self.tag: Final = tag
        self.value: Final = value

    @property
    def constructed(self) -> bool:
        return bool(tag_bytes(self.tag)[0] & 0x20)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)

    def children(self) -> list[Tlv]:
        if not self.constructed:
            raise TlvError(f"tag {self.tag:X} is primitive and has no children")
        return parse_all(self.value)

    def child(self, tag: int) -> Tlv:
        for candidate in self.children():
            if candidate.tag == tag:
                return candidate
        raise TlvError(f"tag {tag:X} not found inside {self.tag:X}")


def tag_bytes(tag: int) -> bytes:
    if tag < 0:
        raise TlvError("a tag is not negative")
    return tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def encode(tag: int, value: bytes) -> bytes:
    return tag_bytes(tag) + encode_length(len(value)) + value


class Header(ValueObject):
    __slots__ = ("header_length", "length", "tag")

    def __init__(self, tag: int, length: int, header_length: int) -> None:
        self.tag: Final = tag
        self.length: Final = length
        self.header_length: Final = header_length

    @property
    def total_length(self) -> int:
        return self.header_length + self.length


def read_header(data: bytes, offset: int = 0) -> Header:
    """Parse the tag and length at ``offset``. Raises ``TlvError`` when truncated or malformed."""
    position = offset
    if position >= len(data):
        raise TlvError("truncated TLV: no tag")
    first = data[position]
    position += 1
    tag = first
    if first & 0x1F == 0x1F:
        # Long-form tag: continuation bytes while b8 is set. Accept non-minimal forms
        # (docs/card.md §6.1).
        while True:
            if position >= len(data):
                raise TlvError("truncated TLV: tag continues past the end")
            byte = data[position]
            position += 1
            tag = (tag << 8) | byte
            if not byte & 0x80:
                break
            if position - offset > 4:
                raise TlvError("TLV tag longer than 4 bytes")
    if position >= len(data):
        raise TlvError(f"truncated TLV: tag {tag:X} has no length")
    length_byte = data[position]
    position += 1
    if length_byte < 0x80:
        length = length_byte
    elif length_byte == 0x80:
        raise TlvError("indefinite TLV length is not used on this card")
    else:
        size = length_byte & 0x7F
        if size > 4:
            raise TlvError(f"TLV length of {size} bytes is not supported")
        if position + size > len(data):
            raise TlvError(f"truncated TLV: length of tag {tag:X} continues past the end")
        length = int.from_bytes(data[position : position + size], "big")
        position += size
    return Header(tag, length, position - offset)


TAG_SEQUENCE = 0x30
_MAX_LENGTH_BYTES = 4


def der_sequence_length(first_bytes: bytes, what: str = "DER object") -> int | None:
    """Total length of the DER SEQUENCE (tag 30, definite length) that opens ``first_bytes``,
    or ``None`` when more bytes are needed to know it (ISO/IEC 8825-1 §8.1.3).

    Reading only this header lets the card layer fetch a certificate in the fewest READ BINARY
    commands instead of assuming ``30 82 LL LL`` (docs/card.md §11.6), and the relying
    side check a certificate's length before parsing it. An erased EF (``00``/``FF``), another
    tag, the indefinite form or a length of more than 4 bytes is a ``TlvError``.
    """
    if len(first_bytes) < 2:
        return None
    tag = first_bytes[0]
    if tag in _FILLER:
        # An erased or never-written EF reads as all 00 or all FF.
        raise TlvError(f"no {what} here: the data starts with {tag:02X}, not 30 (SEQUENCE)")
    if tag != TAG_SEQUENCE:
        raise TlvError(f"not a DER {what}: it starts with tag {tag:02X}, not 30 (SEQUENCE)")
    first_length_byte = first_bytes[1]
    if first_length_byte == 0x80:
        raise TlvError(f"not a DER {what}: it uses the BER indefinite length form")
    if first_length_byte > 0x80 and first_length_byte & 0x7F > _MAX_LENGTH_BYTES:
        raise TlvError(f"{what} length field of {first_length_byte & 0x7F} bytes is implausible")
    try:
        return read_header(first_bytes).total_length
    except TlvError:
        return None  # the length bytes continue past what was read


def parse_one(data: bytes, offset: int = 0) -> tuple[Tlv, int]:
    """Parse one object at ``offset``; return it and the offset after it."""
    header = read_header(data, offset)
    start = offset + header.header_length
    end = start + header.length
    if end > len(data):
        raise TlvError(
            f"truncated TLV: tag {header.tag:X} declares {header.length} bytes, "
            f"{len(data) - start} present"
        )
    return Tlv(header.tag, bytes(data[start:end])), end


def is_filler_at(data: bytes, offset: int) -> bool:
    """True where only filler remains (docs/card.md §6.1): a ``00`` byte, or ``FF`` followed by
    ``FF`` or the end. A lone ``FF`` followed by another byte is a long-form tag such as
    ``FF 10``."""
    if data[offset] == 0x00:
        return True
    return data[offset] == 0xFF and (offset + 1 == len(data) or data[offset + 1] == 0xFF)


def iterate(data: bytes) -> Iterator[Tlv]:
    """Yield objects until the end of data or filler."""
    offset = 0
    while offset < len(data) and not is_filler_at(data, offset):
        item, offset = parse_one(data, offset)
        yield item


def parse_all(data: bytes) -> list[Tlv]:
    return list(iterate(data))


def parse_single(data: bytes, tag: int) -> Tlv:
    """Parse the first object of a file, which must carry ``tag``; filler after it is ignored."""
    item, _ = parse_one(data)
    if item.tag != tag:
        raise TlvError(f"expected tag {tag:X}, found {item.tag:X}")
    return item


def parse_simple(data: bytes) -> list[tuple[int, bytes]]:
    """JICSAP simple TLV of record EFs: 1-byte tag, 1-byte length or ``FF`` + 2 bytes
    (docs/card.md §6.1)."""
    items: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data) and data[offset] not in _FILLER:
        if offset + 2 > len(data):
            raise TlvError("truncated simple TLV")
        tag, length = data[offset], data[offset + 1]
        offset += 2
        if length == 0xFF:
            if offset + 2 > len(data):
                raise TlvError("truncated simple TLV length")
            length = int.from_bytes(data[offset : offset + 2], "big")
            offset += 2
        if offset + length > len(data):
            raise TlvError(f"truncated simple TLV: tag {tag:02X} declares {length} bytes")
        items.append((tag, bytes(data[offset : offset + length])))
        offset += length
    return items


def encode_simple(tag: int, value: bytes) -> bytes:
    if len(value) < 0xFF:
        return bytes((tag, len(value))) + value
    return bytes((tag, 0xFF)) + len(value).to_bytes(2, "big") + value
