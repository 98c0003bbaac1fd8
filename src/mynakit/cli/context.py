"""The CLI context: ``--reader`` resolved once into a PC/SC reader or a virtual card, and the
lazy connection to it.

``--reader`` is interpreted here and nowhere else: ``virtual:NAME`` is the in-process virtual
card NAME of ``$MYNAKIT_HOME/cards`` (no pcscd involved), ``nfc:usb`` (or ``nfc:usb:VID:PID``)
an NFC reader driven by nfcpy outside PC/SC (docs/readers.md §2), anything else names a PC/SC
reader (or a unique part of its name), and no option means the first PC/SC reader holding a
card. Every
command that touches a reader goes through ``CliContext``: the card commands through
``connection()``/``protocol()``, ``readers``, ``wait`` and ``check`` through ``readers()``,
and ``wait_for_card()``. The connection is opened only when a command
touches the card, so commands that need no card never wait on pcscd.
"""

from __future__ import annotations

from mynakit.errors import UsageError
from mynakit.value_object import ValueObject

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Final, Protocol

    from mynakit.card.cv_certificate import CardCaKeys
    from mynakit.iso7816.protocol import ApduProtocol
    from mynakit.transport.base import Connection
    from mynakit.transport.readers import ReaderInfo
    from mynakit.transport.trace import TracingConnection

VIRTUAL_PREFIX = "virtual:"
NFC_PREFIX = "nfc:"  # nfcpy readers (RC-S380 on Linux, docs/readers.md §2)


class ReaderChoice(ValueObject):
    """What ``--reader`` asked for: at most one of a virtual card, an nfcpy reader path
    (``nfc:...``), or a PC/SC reader name (or a unique part of it); none of them means the first
    PC/SC reader with a card."""

    __slots__ = ("nfc_reader", "pcsc_reader", "virtual_card")

    def __init__(
        self,
        virtual_card: str | None = None,
        nfc_reader: str | None = None,
        pcsc_reader: str | None = None,
    ) -> None:
        self.virtual_card: Final = virtual_card
        self.nfc_reader: Final = nfc_reader
        self.pcsc_reader: Final = pcsc_reader

    @classmethod
    def parse(cls, option: str | None) -> ReaderChoice:
        if option is None or option == "":
            return cls()
        if option.startswith(VIRTUAL_PREFIX):
            name = option.removeprefix(VIRTUAL_PREFIX)
            if not name:
                raise UsageError("--reader virtual:NAME needs the virtual card's NAME")
            return cls(virtual_card=name)
        if option.startswith(NFC_PREFIX):
            return cls(nfc_reader=option)
        return cls(pcsc_reader=option)

    @property
    def virtual_reader_name(self) -> str:
        return f"mynakit virtual reader ({self.virtual_card})"


class CliContext:
    def __init__(self, reader: str | None, trace: bool) -> None:
        self.reader = ReaderChoice.parse(reader)
        self.trace = trace
        self._connection: TracingConnection | None = None
        self._protocol: ApduProtocol | None = None

    @property
    def home(self) -> Path:
        # pathlib only here: commands on a PC/SC reader never need the home directory.
        from mynakit.paths import mynakit_home

        return mynakit_home()

    @property
    def cards_directory(self) -> Path:
        return self.home / "cards"

    def connection(self) -> TracingConnection:
        """Open (once) the connection to the card named by ``--reader``, always traced so that
        ``--trace`` and APDU counts work for every command."""
        if self._connection is None:
            self._connection = self._traced(self._open_raw())
        return self._connection

    def _traced(self, raw: Connection) -> TracingConnection:
        from mynakit.transport.trace import TracingConnection

        sink = _print_to_stderr if self.trace else None
        return TracingConnection(raw, sink=sink)

    def protocol(self) -> ApduProtocol:
        """The connection's one protocol object, so what it learns about extended length is
        learnt once per command, not once per call."""
        if self._protocol is None:
            from mynakit.transport.limits import protocol_for

            # The reader's limits, learnt at connect, size the first large read.
            self._protocol = protocol_for(self.connection())
        return self._protocol

    def _open_raw(self) -> Connection:
        if self.reader.virtual_card is not None:
            from mynakit.emulator.state import load_card
            from mynakit.transport.in_process import InProcessConnection

            card = load_card(self.cards_directory, self.reader.virtual_card)
            return InProcessConnection(card, reader_name=self.reader.virtual_reader_name)
        if self.reader.nfc_reader is not None:
            return self._open_nfc(timeout=None)
        from mynakit.transport.pcsc import PcscConnection

        return PcscConnection.open(self.reader.pcsc_reader)

    def _open_nfc(self, *, timeout: float | None) -> Connection:
        from mynakit.transport.nfc import NfcConnection

        assert self.reader.nfc_reader is not None
        if timeout is None:
            connection: Connection = NfcConnection.open(self.reader.nfc_reader)
        else:
            connection = NfcConnection.open(self.reader.nfc_reader, timeout=timeout)
        return connection

    # -- readers, as ``readers``, ``wait`` and ``check`` see them -------------------------------

    def readers(self) -> list[ReaderInfo]:
        """The readers the chosen ``--reader`` stands for: the virtual card's own reader (with
        the card in it), the nfcpy reader with the card on it, the one PC/SC reader ``--reader
        NAME`` names (``NoReaderError`` when none matches), or every PC/SC reader."""
        from mynakit.transport.pcsc import resolve_reader_name
        from mynakit.transport.readers import ReaderInfo, list_readers

        if self.reader.virtual_card is None and self.reader.nfc_reader is None:
            found = list_readers()
            if self.reader.pcsc_reader is None:
                return found
            name = resolve_reader_name(self.reader.pcsc_reader, [info.name for info in found])
            return [info for info in found if info.name == name]
        connection = self.connection()
        return [ReaderInfo(name=connection.reader_name, card_present=True, atr=connection.atr)]

    def wait_for_card(self, timeout: float | None) -> ReaderInfo:
        """Block until a card is in the chosen reader (any reader without ``--reader``). A
        virtual card is always in its reader: it answers at once, or says it does not exist."""
        from mynakit.transport.base import NoCardError, TransportTimeoutError
        from mynakit.transport.readers import ReaderInfo, wait_for_card

        if self.reader.nfc_reader is not None and self._connection is None:
            # nfcpy readers are outside PC/SC: wait on the reader itself (docs/readers.md §2).
            try:
                raw = self._open_nfc(timeout=timeout if timeout is not None else 1e9)
            except NoCardError as error:
                raise TransportTimeoutError(
                    f"no card was placed on {self.reader.nfc_reader!r} in time"
                ) from error
            self._connection = self._traced(raw)
        if self.reader.virtual_card is None and self.reader.nfc_reader is None:
            return wait_for_card(self.reader.pcsc_reader, timeout=timeout)
        connection = self.connection()
        return ReaderInfo(name=connection.reader_name, card_present=True, atr=connection.atr)

    def trusted_card_ca_keys(self, *, sandbox: bool) -> CardCaKeys | None:
        """The card-CA keys to trust for the CV certificates of the text and visual APs.

        Real J-LIS card-CA keys are not bundled, so a real card's CV chain is reported as not
        verified. A ``virtual:NAME`` reader, or ``--sandbox`` (for a virtual card served through
        pcscd: a card in a reader is not known to be virtual, so this is never implied), trusts
        the sandbox card-CA public keys of the virtual cards under ``$MYNAKIT_HOME/cards``. Only
        their public key files are read; no card, and no private key, is loaded for this.
        """
        if not sandbox and self.reader.virtual_card is None:
            return None
        from mynakit.emulator.card_files import (
            CARD_CA_TEXT_KEY_NUMBER,
            CARD_CA_VISUAL_KEY_NUMBER,
            key_id,
        )
        from mynakit.emulator.state import card_ca_public_keys

        keys = card_ca_public_keys(self.cards_directory)
        if not keys:
            return None
        return {key_id(CARD_CA_TEXT_KEY_NUMBER): keys, key_id(CARD_CA_VISUAL_KEY_NUMBER): keys}

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._protocol = None


if TYPE_CHECKING:
    # A protocol for the type checker only: nothing checks it at run time.

    class Invocation(Protocol):
        """What the helpers read from a command's context: ``click.Context`` on the click path,
        the fast path's own ``FastInvocation`` (``mynakit.cli.fast_path``) otherwise."""

        @property
        def params(self) -> dict[str, Any]: ...

        @property
        def obj(self) -> Any: ...

        def find_root(self) -> Invocation: ...


def _print_to_stderr(line: str) -> None:
    import click  # --trace runs through click only: the fast path leaves it to the click path

    click.echo(line, err=True)


def get_context(ctx: Invocation) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj
