from __future__ import annotations

import pytest

from mynakit.transport.trace import TRAFFIC, TracingConnection

pytestmark = pytest.mark.unit

MY_NUMBER = b"123456789018"


class EchoCard:
    """Answers what a card would to the commands below (a scripted unit-test connection)."""

    atr = bytes.fromhex("3BE000FF8131FE4514")
    reader_name = "scripted"
    extended_length = None

    def transmit(self, command: bytes) -> bytes:
        if command[1] == 0xB0:
            return b"\xff\x10\x0c" + MY_NUMBER + b"\xff\xff\x90\x00"
        return b"\x90\x00"

    def reset(self, *, cold: bool = False) -> bytes:
        return self.atr

    def close(self) -> None:
        pass


def trace(commands: list[str]) -> list[str]:
    lines: list[str] = []
    connection = TracingConnection(EchoCard(), sink=lines.append)
    for command in commands:
        connection.transmit(bytes.fromhex(command))
    return lines


def test_verify_shows_no_pin_digits(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(TRAFFIC, logger="mynakit.apdu")
    lines = trace(["0020009804" + b"1234".hex(), "0020009B0A" + b"ABCDEF1234".hex()])
    logged = "\n".join(lines + [record.getMessage() for record in caplog.records])
    assert "31 32 33 34" not in logged and "31323334" not in logged
    assert "<redacted>" in lines[0] and lines[0].startswith("> 00 20 00 98")
    assert "41 42 43" not in logged


def test_change_pin_and_jicsap_change_key_are_redacted() -> None:
    lines = trace(["0024018004" + b"9876".hex(), "8032008004" + b"5678".hex()])
    assert all("39 38 37 36" not in line and "35 36 37 38" not in line for line in lines)


def test_check_code_a_which_is_the_my_number_is_redacted() -> None:
    lines = trace(["0020008C0C" + MY_NUMBER.hex()])
    assert MY_NUMBER.hex(" ").upper() not in "\n".join(lines)


def test_personal_file_responses_are_redacted() -> None:
    lines = trace(
        [
            "00A4040C0AD3921000310001010408",  # text AP
            "00A4020C020001",  # EF 0001: My Number
            "00B0000011",
            "00B0810011",  # the same file by SFI
        ]
    )
    text = "\n".join(lines)
    assert "31 32 33 34 35" not in text
    assert lines[5] == "< <redacted> (17 bytes) 9000"
    assert lines[7] == "< <redacted> (17 bytes) 9000"


def test_public_files_are_shown() -> None:
    lines = trace(["00A4040C0AD392F000260100000001", "00B08A0000"])  # JPKI AP, auth cert
    assert "31 32 33" in lines[3]


def test_malformed_command_shows_header_only() -> None:
    lines = trace(["0020008005313233"])  # Lc 5 but 3 bytes: may still hold a PIN
    assert lines[0] == "> 00 20 00 80 <redacted> (malformed)"


def test_counter_counts_every_command() -> None:
    connection = TracingConnection(EchoCard())
    connection.transmit(bytes.fromhex("00A4040C0AD392F000260100000001"))
    connection.transmit(bytes.fromhex("00B08A0000"))
    assert len(connection.counter) == 2
