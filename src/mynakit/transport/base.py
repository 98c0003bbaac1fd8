"""The connection seam every transport implements.

Two methods carry the traffic, ``transmit`` and ``close``; ``atr``, ``reader_name``, ``reset``
and the extended-length capability describe the link. PC/SC, the in-process virtual card, and
the tracing decorator all implement it, so card sessions never know which one they talk to.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from mynakit.errors import TransportError, UsageError


@runtime_checkable
class Connection(Protocol):
    @property
    def atr(self) -> bytes: ...

    @property
    def reader_name(self) -> str: ...

    @property
    def extended_length(self) -> bool | None:
        """Whether the reader carries extended APDUs (``None``: unknown)."""
        ...

    def transmit(self, command: bytes) -> bytes:
        """Send one command APDU, return the response with SW1 SW2."""
        ...

    def reset(self, *, cold: bool = False) -> bytes:
        """Reset the card (warm by default) and return the new ATR."""
        ...

    def close(self) -> None: ...


class NoServiceError(TransportError):
    """No PC/SC service (pcscd) is running."""


class NoReaderError(TransportError):
    """No card reader is connected, or none matches the name asked for."""


class NoCardError(TransportError):
    """The reader holds no card."""


class CardRemovedError(TransportError):
    """The card left the reader, possibly in the middle of a command."""


class ReaderBusyError(TransportError):
    """Another program holds the reader exclusively."""


class TransportTimeoutError(TransportError):
    """Waiting for a card or an answer took longer than allowed."""


def require_command_apdu(command: object) -> None:
    """Refuse what cannot be a command APDU before it reaches a reader (ISO 7816-4 §5.1)."""
    if not isinstance(command, bytes | bytearray) or len(command) < 4:
        raise UsageError("a command APDU is at least 4 bytes (CLA INS P1 P2)")
