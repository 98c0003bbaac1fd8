"""APDU trace with secrets redacted (docs/architecture.md §6).

``TracingConnection`` wraps any ``Connection`` and logs every exchange at ``TRAFFIC`` (5, below
DEBUG) on the ``mynakit.apdu`` logger, and optionally hands each line to a sink (``--trace``).
It redacts the data of VERIFY, CHANGE REFERENCE DATA and CHANGE KEY (PINs, passwords, and check
code A, which is the My Number), and the responses read from files the card profile marks
``personal`` (My Number, basic-4 information, card face, signature certificate), including any
GET RESPONSE continuing them. It follows SELECT commands to know which file is current.
"""

from __future__ import annotations

from mynakit.iso7816.apdu import ApduParseError, CommandApdu, ResponseApdu
from mynakit.profiles import DEFAULT_PROFILE, CardProfile, load_profile
from mynakit.transport.base import Connection, log_if_configured
from mynakit.transport.decorator import ConnectionDecorator
from mynakit.transport.pinpad import PinPad

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from collections.abc import Callable

TRAFFIC = 5  # below DEBUG
TRAFFIC_LOGGER = "mynakit.apdu"

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_READ_RECORD = 0xB2
INS_GET_RESPONSE = 0xC0
# (CLA & 0x80, INS) pairs whose data is a secret: VERIFY, CHANGE REFERENCE DATA (ISO), and
# JICSAP CHANGE KEY 80 32 (docs/card.md §5).
_SECRET_DATA = {(0x00, 0x20), (0x00, 0x24), (0x80, 0x32)}
REDACTED = "<redacted>"


def carries_secret(command: CommandApdu) -> bool:
    """Whether ``command``'s data is a secret that must never be shown (a PIN, a password,
    check code A): the data of VERIFY, CHANGE REFERENCE DATA and CHANGE KEY."""
    return (command.cla & 0x80, command.ins) in _SECRET_DATA and bool(command.data)


def redacted_command(command: CommandApdu) -> str:
    """``command`` as text, its data replaced by ``<redacted>`` when it carries a secret."""
    if carries_secret(command):
        header = bytes((command.cla, command.ins, command.p1, command.p2)).hex(" ").upper()
        return f"{header} Lc={len(command.data)} {REDACTED}"
    return str(command)


class TraceCounter:
    """Counts exchanges; benchmarks and tests read APDU counts from it."""

    def __init__(self) -> None:
        self.commands: list[CommandApdu | bytes] = []

    def __len__(self) -> int:
        return len(self.commands)

    def clear(self) -> None:
        self.commands.clear()


class TracingConnection(ConnectionDecorator):
    """A ``Connection`` decorator that logs redacted APDUs and counts them."""

    def __init__(
        self,
        inner: Connection,
        *,
        sink: Callable[[str], None] | None = None,
        profile: CardProfile | None = None,
    ) -> None:
        super().__init__(inner)
        self.sink = sink
        self.counter = TraceCounter()
        self._personal_files = _personal_files(profile or load_profile(DEFAULT_PROFILE))
        self._current_application: bytes | None = None
        self._current_file: int | None = None
        self._continuing_personal_read = False

    @property
    def pin_pad(self) -> PinPad | None:
        pin_pad = super().pin_pad
        if pin_pad is not None:
            pin_pad.observer = self._emit  # the keypad VERIFY shows in the trace, PIN-less
        return pin_pad

    def transmit(self, command: bytes) -> bytes:
        try:
            parsed: CommandApdu | None = CommandApdu.decode(command)
        except ApduParseError:
            parsed = None
        self.counter.commands.append(parsed if parsed is not None else command)
        command_text, response_is_personal = self._describe_command(parsed, command)
        self._emit(f"> {command_text}")
        response = self.inner.transmit(command)
        self._emit(f"< {self._describe_response(response, response_is_personal)}")
        self._continuing_personal_read = response_is_personal and response[-2:-1] == b"\x61"
        return response

    def reset(self, *, cold: bool = False) -> bytes:
        self._current_application = None
        self._current_file = None
        atr = self.inner.reset(cold=cold)
        self._emit(f"reset, ATR {atr.hex(' ').upper()}")
        return atr

    def _emit(self, line: str) -> None:
        log_if_configured(TRAFFIC_LOGGER, TRAFFIC, "%s", line, level_name="TRAFFIC")
        if self.sink is not None:
            self.sink(line)

    def _describe_command(self, parsed: CommandApdu | None, raw: bytes) -> tuple[str, bool]:
        if parsed is None:
            # Unparseable bytes may still hold a PIN: show only the header.
            return f"{raw[:4].hex(' ').upper()} {REDACTED} (malformed)", False
        if carries_secret(parsed):
            return redacted_command(parsed), False
        personal = False
        if parsed.ins == INS_SELECT and parsed.p1 == 0x04:
            self._current_application = bytes(parsed.data)
            self._current_file = None
        elif parsed.ins == INS_SELECT and parsed.p1 == 0x02 and len(parsed.data) == 2:
            self._current_file = int.from_bytes(parsed.data, "big")
        elif parsed.ins == INS_READ_BINARY:
            if parsed.p1 & 0x80:
                # A read by SFI makes that file current (ISO 7816-4 §7.2.2): the reads by offset
                # that follow it are of the same file and must stay redacted.
                self._current_file = parsed.p1 & 0x1F
            personal = self._is_personal(self._current_file)
        elif parsed.ins == INS_READ_RECORD:
            if parsed.p2 >> 3:
                self._current_file = parsed.p2 >> 3
            personal = self._is_personal(self._current_file)
        elif parsed.ins == INS_GET_RESPONSE:
            personal = self._continuing_personal_read
        return str(parsed), personal

    def _is_personal(self, file_id: int | None) -> bool:
        return (self._current_application, file_id) in self._personal_files

    @staticmethod
    def _describe_response(raw: bytes, personal: bool) -> str:
        try:
            response = ResponseApdu.decode(raw)
        except ApduParseError:
            return f"{len(raw)} bytes (malformed)"
        status = f"{response.sw:04X}"
        if personal and response.data:
            return f"{REDACTED} ({len(response.data)} bytes) {status}"
        return f"{response.data.hex(' ').upper()} {status}".strip()


def _personal_files(profile: CardProfile) -> set[tuple[bytes | None, int | None]]:
    return {
        (application.aid, file.file_id)
        for application in profile.applications.values()
        for file in application.files.values()
        if file.personal
    }
