"""Exact APDU bytes for each transmission rule of ``ApduProtocol`` (issue: foundation).

The connection here is a script of (expected command, response) pairs: a unit-test fake of the
transport seam, which asserts every byte the protocol sends (style anchors, practice 10).
"""

from __future__ import annotations

import pytest

from mynakit.iso7816.protocol import ApduProtocol
from mynakit.iso7816.status import ApduError

pytestmark = pytest.mark.unit


class ScriptedCard:
    def __init__(self, script: list[tuple[str, str]]) -> None:
        self.script = [(bytes.fromhex(c), bytes.fromhex(r)) for c, r in script]
        self.sent: list[bytes] = []

    def transmit(self, command: bytes) -> bytes:
        self.sent.append(command)
        assert self.script, f"unexpected command {command.hex()}"
        expected, response = self.script.pop(0)
        assert command.hex().upper() == expected.hex().upper()
        return response

    def done(self) -> bool:
        return not self.script


def test_get_response_after_61xx() -> None:
    card = ScriptedCard(
        [
            ("00B0000000", "01026110"),  # card has 16 more bytes
            ("00C0000010", "AA" * 16 + "6102"),
            ("00C0000002", "BBBB9000"),
        ]
    )
    data = ApduProtocol(card).send(0x00, 0xB0, 0, 0, le=256)
    assert data == bytes.fromhex("0102") + b"\xaa" * 16 + b"\xbb\xbb"
    assert card.done()


def test_resend_with_exact_le_after_6cxx() -> None:
    card = ScriptedCard([("00B0000020", "6C11"), ("00B0000011", "11" * 17 + "9000")])
    assert ApduProtocol(card).send(0x00, 0xB0, 0, 0, le=0x20) == b"\x11" * 17
    assert card.done()


def test_6c00_means_256() -> None:
    card = ScriptedCard([("00B0000001", "6C00"), ("00B0000000", "00" * 256 + "9000")])
    assert len(ApduProtocol(card).send(0x00, 0xB0, 0, 0, le=1)) == 256


def test_chaining_when_lc_does_not_fit_short() -> None:
    data = bytes(range(256)) + bytes(44)  # 300 bytes: 255 + 45
    card = ScriptedCard(
        [
            ("10DA0000FF" + data[:255].hex(), "9000"),
            ("00DA00002D" + data[255:].hex(), "9000"),
        ]
    )
    ApduProtocol(card, extended_length=False).send(0x00, 0xDA, 0, 0, data)
    assert card.done()


def test_chaining_stops_at_the_first_refusal() -> None:
    card = ScriptedCard([("10DA0000FF" + "00" * 255, "6A80")])
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card, extended_length=False).send(0x00, 0xDA, 0, 0, bytes(300))
    assert raised.value.sw == 0x6A80


def test_extended_le_when_supported() -> None:
    card = ScriptedCard([("00B08A00000000", "30" * 1573 + "9000")])
    protocol = ApduProtocol(card, extended_length=True)
    assert protocol.max_response_length == 65536
    assert len(protocol.send(0x00, 0xB0, 0x8A, 0x00, le=65536)) == 1573


def test_extended_lc_when_supported() -> None:
    card = ScriptedCard([("802A008000012C" + "00" * 300 + "0100", "AB" * 256 + "9000")])
    signature = ApduProtocol(card, extended_length=True).send(0x80, 0x2A, 0, 0x80, bytes(300), 256)
    assert signature == b"\xab" * 256


def test_unknown_support_probes_then_falls_back_to_short_for_good() -> None:
    card = ScriptedCard(
        [
            ("00B08A00000000", "6700"),  # reader or card refuses extended length
            ("00B08A0000", "42" * 256 + "9000"),  # same read, short: 256 bytes at most
            ("00B0010000", "43" * 256 + "9000"),  # later long reads go short directly
        ]
    )
    protocol = ApduProtocol(card)
    assert protocol.extended_length is None
    assert protocol.send(0x00, 0xB0, 0x8A, 0x00, le=65536) == b"\x42" * 256
    assert protocol.extended_length is False
    assert protocol.max_response_length == 256
    assert protocol.send(0x00, 0xB0, 0x01, 0x00, le=1000) == b"\x43" * 256
    assert card.done()


def test_unknown_support_learns_extended_works() -> None:
    card = ScriptedCard([("00B08A00000000", "01" * 700 + "9000")])
    protocol = ApduProtocol(card)
    protocol.send(0x00, 0xB0, 0x8A, 0x00, le=65536)
    assert protocol.extended_length is True


def test_extended_known_supported_passes_errors_through() -> None:
    card = ScriptedCard([("00B08A00000000", "6700")])
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card, extended_length=True).send(0x00, 0xB0, 0x8A, 0x00, le=65536)
    assert raised.value.sw == 0x6700


def test_status_words_other_than_9000_raise_with_the_command() -> None:
    card = ScriptedCard([("00200098", "63C2")])
    with pytest.raises(ApduError) as raised:
        ApduProtocol(card).send(0x00, 0x20, 0x00, 0x98)
    assert raised.value.tries_left == 2
    assert "00 20 00 98" in str(raised.value)


def test_a_card_that_never_finishes_61xx_is_stopped() -> None:
    class Endless:
        def transmit(self, command: bytes) -> bytes:
            return bytes.fromhex("006101")

    with pytest.raises(ApduError, match="never finished"):
        ApduProtocol(Endless()).send(0x00, 0xB0, 0, 0, le=1)
