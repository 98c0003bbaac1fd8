"""The in-process connection: a virtual card object in the same Python process, no pcscd.

The card side is anything with ``atr``, ``execute`` and ``reset`` (``mynakit.emulator``'s
``VirtualCard``); keeping this a structural type means the transport layer never imports the
emulator (docs/architecture.md §2).
"""

from __future__ import annotations

from typing import Protocol

from mynakit.transport.base import CardRemovedError


class ExecutesApdus(Protocol):
    @property
    def atr(self) -> bytes: ...

    def execute(self, command: bytes) -> bytes: ...

    def reset(self) -> None: ...


class InProcessConnection:
    """A ``Connection`` to a card object in this process."""

    def __init__(self, card: ExecutesApdus, reader_name: str = "mynakit virtual reader") -> None:
        self._card: ExecutesApdus | None = card
        self._reader_name = reader_name
        card.reset()

    @property
    def atr(self) -> bytes:
        return self._require_card().atr

    @property
    def reader_name(self) -> str:
        return self._reader_name

    @property
    def extended_length(self) -> bool | None:
        return True  # no reader in between: only the card's own limits apply

    def transmit(self, command: bytes) -> bytes:
        return self._require_card().execute(command)

    def reset(self, *, cold: bool = False) -> bytes:
        card = self._require_card()
        card.reset()
        return card.atr

    def close(self) -> None:
        self._card = None

    def _require_card(self) -> ExecutesApdus:
        if self._card is None:
            raise CardRemovedError("the connection to the virtual card is closed")
        return self._card

    def __enter__(self) -> InProcessConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
