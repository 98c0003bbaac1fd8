from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mynakit.iso7816 import tlv
from mynakit.iso7816.tlv import Tlv, TlvError

pytestmark = pytest.mark.unit

# Text AP EF 0001 as the card stores it: FF 10 0C + 12 digits + FF FF filler (docs/card.md §6.3).
MY_NUMBER_FILE = bytes.fromhex("FF100C") + b"123456789018" + b"\xff\xff"


def test_non_minimal_private_tag_ff10() -> None:
    item, end = tlv.parse_one(MY_NUMBER_FILE)
    assert item == Tlv(0xFF10, b"123456789018")
    assert end == 15
    assert item.constructed  # FF: private class, constructed bit set
    assert tlv.parse_all(MY_NUMBER_FILE) == [item]  # the FF FF filler ends the list


def test_long_form_lengths_and_nesting() -> None:
    inner = tlv.encode(0xDF22, "黒桐　幹也".encode()) + tlv.encode(0xDF25, b"1")
    outer = tlv.encode(0xFF20, inner)
    assert tlv.parse_single(outer + b"\x00" * 5, 0xFF20).child(0xDF25).value == b"1"
    big = tlv.encode(0x30, bytes(300))
    assert big[:4] == bytes.fromhex("3082012C")
    header = tlv.read_header(big)
    assert (header.tag, header.length, header.header_length, header.total_length) == (
        0x30,
        300,
        4,
        304,
    )
    assert tlv.encode(0xDF33, bytes(200))[:4] == bytes.fromhex("DF3381C8")


def test_certificate_header_from_first_bytes() -> None:
    # A 1573-byte certificate starts 30 82 06 21 (docs/card.md §7.2).
    assert tlv.read_header(bytes.fromhex("3082062130820509")).total_length == 1573


@pytest.mark.parametrize(
    "raw",
    [
        "FF10",  # no length
        "FF8F",  # tag continues past the end
        "DF",  # tag continues past the end
        "DF21",  # no length
        "3082",  # length bytes missing
        "300501020304",  # declares 5, has 4
        "FF100C3132",  # truncated My Number
        "3080",  # indefinite length
        "30850100000000",  # 5 length bytes
    ],
)
def test_truncated_or_malformed_raise_tlv_error(raw: str) -> None:
    with pytest.raises(TlvError):
        tlv.parse_all(bytes.fromhex(raw))


def test_wrong_outer_tag() -> None:
    with pytest.raises(TlvError, match="expected tag FF20"):
        tlv.parse_single(MY_NUMBER_FILE, 0xFF20)


def test_primitive_has_no_children() -> None:
    with pytest.raises(TlvError, match="primitive"):
        Tlv(0xDF22, b"x").children()


def test_simple_tlv_record() -> None:
    # Common AP record 1 (docs/card.md §6.11).
    record = b"\x01\x1c" + b"400000012719843" + b"13221" + b"20350217"
    assert tlv.parse_simple(record) == [(0x01, b"4000000127198431322120350217")]
    long_value = bytes(300)
    assert tlv.parse_simple(tlv.encode_simple(0x02, long_value)) == [(0x02, long_value)]
    with pytest.raises(TlvError):
        tlv.parse_simple(b"\x01\x1c\x30")


@given(st.binary(max_size=200))
def test_random_bytes_raise_only_tlv_error(raw: bytes) -> None:
    try:
        items = tlv.parse_all(raw)
    except TlvError:
        return
    for item in items:
        assert isinstance(item.value, bytes)


@given(st.binary(max_size=50), st.integers(0, 200), st.integers(0, 255))
def test_mutated_files_raise_only_tlv_error(extra: bytes, index: int, byte: int) -> None:
    data = bytearray(MY_NUMBER_FILE + extra)
    data[index % len(data)] = byte
    with contextlib.suppress(TlvError):
        tlv.parse_all(bytes(data))
    with contextlib.suppress(TlvError):
        tlv.parse_simple(bytes(data))


@given(
    st.sampled_from([0x30, 0x04, 0xDF21, 0xFF10, 0xFF20, 0x7F21, 0x5F4E]),
    st.binary(max_size=70000),
)
def test_round_trip(tag: int, value: bytes) -> None:
    assert tlv.parse_one(tlv.encode(tag, value)) == (Tlv(tag, value), len(tlv.encode(tag, value)))


@pytest.mark.parametrize(
    ("header", "length"),
    [("30", None), ("3082", None), ("30820625", 4 + 0x625), ("3005", 7), ("308105", 8)],
)
def test_der_sequence_length_from_the_header_alone(header: str, length: int | None) -> None:
    assert tlv.der_sequence_length(bytes.fromhex(header)) == length


@pytest.mark.parametrize("header", ["FFFF", "0000", "3180", "3080", "3085"])
def test_der_sequence_length_refuses_what_no_certificate_starts_with(header: str) -> None:
    with pytest.raises(tlv.TlvError):
        tlv.der_sequence_length(bytes.fromhex(header), "certificate")
