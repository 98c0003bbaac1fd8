"""The CLI's lazy connection: the reader is resolved only when a command touches the card
(style anchors, practice 8), so commands that need no card never wait on pcscd.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from mynakit.paths import mynakit_home

if TYPE_CHECKING:
    from mynakit.iso7816.protocol import ApduProtocol
    from mynakit.transport.base import Connection
    from mynakit.transport.trace import TracingConnection

VIRTUAL_PREFIX = "virtual:"
NFC_PREFIX = "nfc:"  # nfcpy readers (RC-S380 on Linux, docs/readers.md §2)


class CliContext:
    def __init__(self, reader: str | None, trace: bool) -> None:
        self.reader = reader
        self.trace = trace
        self._connection: TracingConnection | None = None
        self._protocol: ApduProtocol | None = None

    @property
    def home(self) -> Path:
        return mynakit_home()

    def connection(self) -> TracingConnection:
        """Open (once) the connection to the card named by ``--reader``, always traced so that
        ``--trace`` and APDU counts work for every command."""
        if self._connection is None:
            from mynakit.transport.trace import TracingConnection

            sink = (lambda line: click.echo(line, err=True)) if self.trace else None
            self._connection = TracingConnection(self._open_raw(), sink=sink)
        return self._connection

    def protocol(self) -> ApduProtocol:
        """The connection's one protocol object, so what it learns about extended length is
        learnt once per command, not once per call."""
        if self._protocol is None:
            from mynakit.transport.limits import protocol_for

            # The reader's limits, learnt at connect, size the first large read.
            self._protocol = protocol_for(self.connection())
        return self._protocol

    def _open_raw(self) -> Connection:
        if self.reader and self.reader.startswith(VIRTUAL_PREFIX):
            from mynakit.emulator.state import load_card
            from mynakit.transport.in_process import InProcessConnection

            name = self.reader.removeprefix(VIRTUAL_PREFIX)
            card = load_card(self.home / "cards", name)
            return InProcessConnection(card, reader_name=f"mynakit virtual reader ({name})")
        if self.reader and self.reader.startswith(NFC_PREFIX):
            from mynakit.transport.nfc import NfcConnection

            connection: Connection = NfcConnection.open(self.reader)
            return connection
        from mynakit.transport.pcsc import PcscConnection

        return PcscConnection.open(self.reader)

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
            self._protocol = None


def get_context(ctx: click.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj
