from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mynakit.errors import UsageError
from mynakit.iso7816.apdu import ApduParseError, CommandApdu, ResponseApdu

pytestmark = pytest.mark.unit

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")


@pytest.mark.parametrize(
    ("command", "encoded"),
    [
        # case 1: retry query (docs/card.md §7.5)
        (CommandApdu(0x00, 0x20, 0x00, 0x80), "00200080"),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=7), "00B0000007"),  # case 2 short
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=256), "00B0000000"),  # Le 256 is 00
        (CommandApdu(0x00, 0xA4, 0x02, 0x0C, b"\x00\x0a"), "00A4020C02000A"),  # case 3
        (CommandApdu(0x80, 0x2A, 0x00, 0x80, b"\x01\x02", 256), "802A0080020102" + "00"),
        # docs/card.md §1 extended read
        (CommandApdu(0x00, 0xB0, 0x8A, 0x00, le=65536), "00B08A00000000"),
        (CommandApdu(0x00, 0xB0, 0x00, 0x00, le=1573), "00B0000000" + "0625"),
        (
            CommandApdu(0x80, 0x2A, 0x00, 0x80, bytes(300), 256),
            "802A008000012C" + "00" * 300 + "0100",
        ),
    ],
)
def test_encoding_is_exact(command: CommandApdu, encoded: str) -> None:
    assert command.encode().hex().upper() == encoded.upper()
    assert CommandApdu.decode(bytes.fromhex(encoded)) == command


def test_cases() -> None:
    assert CommandApdu(0, 0x20, 0, 0x80).case == 1
    assert CommandApdu(0, 0xB0, 0, 0, le=1).case == 2
    assert CommandApdu(0, 0xA4, 4, 0x0C, b"x").case == 3
    assert CommandApdu(0, 0x2A, 0, 0x80, b"x", 256).case == 4


def test_select_decodes() -> None:
    command = CommandApdu.decode(SELECT_JPKI)
    assert (command.ins, command.p1, command.p2) == (0xA4, 0x04, 0x0C)
    assert command.data == bytes.fromhex("D392F000260100000001")


def test_short_forced_on_extended_fields_is_refused() -> None:
    with pytest.raises(UsageError, match="extended"):
        CommandApdu(0, 0xB0, 0, 0, le=300).encode(extended=False)


def test_short_fields_can_be_sent_extended() -> None:
    assert CommandApdu(0, 0xB0, 0, 0, le=7).encode(extended=True).hex() == "00b00000000007"


@pytest.mark.parametrize(
    ("field", "value"),
    [("cla", 256), ("ins", -1), ("p1", 0x100), ("p2", 999)],
)
def test_header_bytes_are_validated(field: str, value: int) -> None:
    fields = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0, field: value}
    with pytest.raises(UsageError, match=field.upper()):
        CommandApdu(fields["cla"], fields["ins"], fields["p1"], fields["p2"])


@pytest.mark.parametrize("le", [0, 65537, -5])
def test_le_range(le: int) -> None:
    with pytest.raises(UsageError, match="Le"):
        CommandApdu(0, 0xB0, 0, 0, le=le)


def test_data_too_long_for_any_encoding() -> None:
    with pytest.raises(UsageError, match="extended Lc"):
        CommandApdu(0, 0xD6, 0, 0, bytes(65536))


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "00",
        "00A404",
        "00A4040C05D392",  # short Lc 5, two bytes follow
        "00A4040C02D392F0AA",  # bytes after Le
        "00A4040C0000",  # a lone extended marker
        "00A4040C000005D392",  # extended Lc 5, two bytes follow
        "00A4040C000000D392",  # extended Lc of zero
    ],
)
def test_malformed_commands_raise_parse_error(raw: str) -> None:
    with pytest.raises(ApduParseError):
        CommandApdu.decode(bytes.fromhex(raw))


def test_response_split() -> None:
    response = ResponseApdu.decode(bytes.fromhex("0102039000"))
    assert response.data == b"\x01\x02\x03"
    assert response.ok and response.sw1 == 0x90 and response.sw2 == 0
    assert response.encode().hex() == "0102039000"
    with pytest.raises(ApduParseError):
        ResponseApdu.decode(b"\x90")


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_the_parse_error(raw: bytes) -> None:
    try:
        command = CommandApdu.decode(raw)
    except ApduParseError:
        return
    # Whatever decodes re-encodes to the same bytes in the same length form.
    extended = len(raw) >= 7 and raw[4] == 0
    assert command.encode(extended=extended or command.needs_extended) == raw


@given(
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=400),
    st.one_of(st.none(), st.integers(1, 65536)),
)
def test_round_trip(cla: int, ins: int, p1: int, p2: int, data: bytes, le: int | None) -> None:
    command = CommandApdu(cla, ins, p1, p2, data, le)
    assert CommandApdu.decode(command.encode()) == command


@given(st.binary(min_size=1, max_size=40), st.integers(0, 39), st.integers(0, 255))
def test_mutated_commands_raise_only_the_parse_error(raw: bytes, index: int, byte: int) -> None:
    mutated = bytearray(SELECT_JPKI + raw)
    mutated[index % len(mutated)] = byte
    with contextlib.suppress(ApduParseError):
        CommandApdu.decode(bytes(mutated))


@given(st.binary(max_size=10))
def test_responses_parse_or_raise_parse_error(raw: bytes) -> None:
    try:
        response = ResponseApdu.decode(raw)
    except ApduParseError:
        assert len(raw) < 2
        return
    assert response.encode() == raw
