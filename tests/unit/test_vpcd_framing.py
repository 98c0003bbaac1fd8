"""vpcd framing (docs/testing.md §5.1) over a socketpair, including TCP-style short reads."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from mynakit.emulator.vpcd import (
    CONTROL_GET_ATR,
    CONTROL_POWER_OFF,
    CONTROL_POWER_ON,
    CONTROL_RESET,
    VpcdConnectionClosedError,
    VpcdProtocolError,
    answer_message,
    encode_message,
    receive_exactly,
    receive_message,
    serve_connection,
    vpcd_reader_name,
)
from mynakit.errors import UsageError
from mynakit.transport.base import CardRemovedError
from support.scripted_card import SCRIPTED_ATR, ScriptedCard

pytestmark = pytest.mark.unit

ATR = SCRIPTED_ATR


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    vpcd_side, card_side = socket.socketpair()
    vpcd_side.settimeout(5)
    card_side.settimeout(5)
    yield vpcd_side, card_side
    vpcd_side.close()
    card_side.close()


def send_one_byte_at_a_time(sock: socket.socket, data: bytes) -> None:
    for index in range(len(data)):
        sock.sendall(data[index : index + 1])


def test_encode_prefixes_big_endian_length() -> None:
    assert encode_message(b"\x90\x00") == b"\x00\x02\x90\x00"
    assert encode_message(b"\x01" * 0x1234)[:2] == b"\x12\x34"


def test_encode_refuses_empty_payload_which_vpcd_takes_as_eject() -> None:
    with pytest.raises(VpcdProtocolError, match="empty"):
        encode_message(b"")


def test_encode_refuses_payload_beyond_two_byte_length() -> None:
    with pytest.raises(VpcdProtocolError, match="65535"):
        encode_message(b"\x00" * 0x10000)


def test_receive_message_reassembles_one_byte_reads(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    vpcd_side, card_side = socket_pair
    apdu = bytes.fromhex("00A4040C0AD392F000260100000001")
    writer = threading.Thread(
        target=send_one_byte_at_a_time, args=(vpcd_side, struct.pack("!H", len(apdu)) + apdu)
    )
    writer.start()
    assert receive_message(card_side) == apdu
    writer.join()


def test_receive_exactly_loops_until_all_bytes(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    vpcd_side, card_side = socket_pair
    payload = bytes(range(200))
    writer = threading.Thread(target=send_one_byte_at_a_time, args=(vpcd_side, payload))
    writer.start()
    assert receive_exactly(card_side, 200) == payload
    writer.join()


def test_peer_closing_mid_message_is_reported(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    vpcd_side, card_side = socket_pair
    vpcd_side.sendall(b"\x00\x05\x00\xa4")  # announces 5 bytes, sends 2
    vpcd_side.close()
    with pytest.raises(VpcdConnectionClosedError, match="3 of 5"):
        receive_message(card_side)


def test_zero_length_message_from_vpcd_is_a_protocol_error(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    vpcd_side, card_side = socket_pair
    vpcd_side.sendall(b"\x00\x00")
    with pytest.raises(VpcdProtocolError):
        receive_message(card_side)


@pytest.mark.parametrize(
    ("control", "call"),
    [(CONTROL_POWER_ON, "power_up"), (CONTROL_POWER_OFF, "power_down"), (CONTROL_RESET, "reset")],
)
def test_power_controls_get_no_reply(control: int, call: str) -> None:
    card = ScriptedCard()
    assert answer_message(card, bytes([control])) is None
    assert card.calls == [call]


def test_get_atr_is_answered_with_the_atr() -> None:
    card = ScriptedCard()
    assert answer_message(card, bytes([CONTROL_GET_ATR])) == ATR
    assert card.calls == []


def test_unknown_control_byte_is_a_protocol_error() -> None:
    with pytest.raises(VpcdProtocolError, match="03"):
        answer_message(ScriptedCard(), b"\x03")


def test_serve_connection_answers_only_atr_and_apdus(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    vpcd_side, card_side = socket_pair
    card = ScriptedCard()
    server = threading.Thread(target=lambda: _serve_until_closed(card_side, card))
    server.start()
    # What vpcd sends when pcscd powers the card up: 01 (no reply) then 04 (the ATR).
    send_one_byte_at_a_time(vpcd_side, b"\x00\x01\x01" + b"\x00\x01\x04")
    assert receive_message(vpcd_side) == ATR
    select = bytes.fromhex("00A4040C0AD392F000260100000001")
    send_one_byte_at_a_time(vpcd_side, struct.pack("!H", len(select)) + select)
    assert receive_message(vpcd_side) == b"\x90\x00"
    vpcd_side.sendall(b"\x00\x01\x00")  # power off: no reply, so the next read is the ATR
    vpcd_side.sendall(b"\x00\x01\x04")
    assert receive_message(vpcd_side) == ATR
    vpcd_side.shutdown(socket.SHUT_WR)
    server.join(5)
    assert card.calls == ["power_up", f"execute {select.hex()}", "power_down"]


def test_card_removed_fault_propagates_to_close_the_link(
    socket_pair: tuple[socket.socket, socket.socket],
) -> None:
    vpcd_side, card_side = socket_pair
    card = ScriptedCard()
    card.pull_on_command = True
    vpcd_side.sendall(b"\x00\x04\x00\xa4\x00\x00")
    with pytest.raises(CardRemovedError):
        serve_connection(card_side, card)


def test_reader_name_follows_the_vpcd_slot() -> None:
    assert vpcd_reader_name(35963) == "Virtual PCD 00 00"
    assert vpcd_reader_name(35964) == "Virtual PCD 00 01"
    with pytest.raises(UsageError):
        vpcd_reader_name(8080)


def _serve_until_closed(sock: socket.socket, card: ScriptedCard) -> None:
    with contextlib.suppress(VpcdConnectionClosedError):
        serve_connection(sock, card)


class BrokenCard(ScriptedCard):
    def __init__(self, answer: bytes | None) -> None:
        super().__init__()
        self.answer = answer

    def execute(self, command: bytes) -> bytes:
        if self.answer is None:
            raise ValueError("bug in the card program")
        return self.answer


@pytest.mark.parametrize("answer", [None, b"", b"\x90"])
def test_a_failing_card_answers_6f00_instead_of_ejecting(answer: bytes | None) -> None:
    # An empty answer would make vpcd eject the card; a raised bug would kill the bridge.
    assert answer_message(BrokenCard(answer), bytes.fromhex("00A40400")) == b"\x6f\x00"
