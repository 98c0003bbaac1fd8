"""Locating the TLV objects of a card file with their exact bytes and offsets, including the
files that open with an offset table (text EF 0002 docs/card.md §6.2, visual EF 0002
docs/card.md §6.8): signatures and digests cover the objects as written, so the raw bytes matter.

Pure: bytes in, values out; malformed input is always a ``DataError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mynakit.errors import DataError
from mynakit.iso7816 import tlv


@dataclass(frozen=True)
class RawObject:
    """One TLV object and the exact bytes it occupies in its file (signatures cover those)."""

    item: tlv.Tlv
    start: int
    raw: bytes


def objects_with_raw(data: bytes, start: int, end: int) -> list[RawObject]:
    """The objects between ``start`` and ``end`` of ``data`` with their raw bytes and offsets."""
    objects: list[RawObject] = []
    offset = start
    while offset < end:
        item, after = tlv.parse_one(data[:end], offset)
        objects.append(RawObject(item, offset, data[offset:after]))
        offset = after
    return objects


def outer_object(data: bytes, tag: int) -> tuple[int, int]:
    """Start and end offsets of the value of the object ``tag`` that opens ``data``."""
    header = tlv.read_header(data)
    if header.tag != tag:
        raise tlv.TlvError(f"expected tag {tag:X}, found {header.tag:X}")
    end = header.header_length + header.length
    if end > len(data):
        raise tlv.TlvError(
            f"truncated TLV: tag {tag:X} declares {header.length} bytes, "
            f"{len(data) - header.header_length} present"
        )
    return header.header_length, end


def located_by_offset_table(
    data: bytes, outer_tag: int, table_tag: int, expected_tags: tuple[int, ...]
) -> dict[int, RawObject]:
    """Objects of a file with an offset table (text EF 0002 docs/card.md §6.2, visual EF 0002
    docs/card.md §6.8).

    The table holds one big-endian u16 per following object, counted from the start of the
    file. Each offset must land on the object that follows in sequence: a table that disagrees
    with the objects means the file is damaged, and is a ``DataError``.
    """
    start, end = outer_object(data, outer_tag)
    objects = objects_with_raw(data, start, end)
    if not objects or objects[0].item.tag != table_tag:
        raise DataError(f"tag {outer_tag:X} does not open with its offset table {table_tag:X}")
    table = objects[0].item.value
    if len(table) % 2:
        raise DataError(f"offset table {table_tag:X} has an odd length ({len(table)} bytes)")
    offsets = [int.from_bytes(table[i : i + 2], "big") for i in range(0, len(table), 2)]
    following = objects[1:]
    if len(offsets) != len(following):
        raise DataError(
            f"offset table lists {len(offsets)} objects, the file holds {len(following)}"
        )
    by_tag: dict[int, RawObject] = {}
    for offset, entry in zip(offsets, following, strict=True):
        if offset != entry.start:
            raise DataError(
                f"offset table puts tag {entry.item.tag:X} at {offset}, it is at {entry.start}"
            )
        by_tag.setdefault(entry.item.tag, entry)
    missing = [f"{tag:X}" for tag in expected_tags if tag not in by_tag]
    if missing:
        raise DataError(f"tag {outer_tag:X} lacks {', '.join(missing)}")
    return by_tag
