"""The connection seam every transport implements.

Two methods carry the traffic, ``transmit`` and ``close``; ``atr``, ``reader_name``, ``reset``
and the extended-length capability describe the link. PC/SC, the in-process virtual card, and
the tracing decorator all implement it, so card sessions never know which one they talk to.
"""

from __future__ import annotations

import sys

from mynakit.errors import TransportError, UsageError

TYPE_CHECKING = False  # mypy treats this name as True (no ``typing`` import at run time)
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object  # the seam is checked by mypy only: at run time a plain base class

#: Python's WARNING level: records below it are shown only where logging was configured.
_WARNING_LEVEL = 30


def log_if_configured(
    logger_name: str, level: int, message: str, *args: object, level_name: str | None = None
) -> None:
    """Log a record below WARNING on ``logger_name``, if the program uses ``logging`` at all.

    Such a record reaches a handler only where the program configured logging (``-v`` in the
    CLI, an integrator's set-up), which imports the module first; where nothing did, the record
    would be dropped. So the transports do not import ``logging`` themselves: on a one-shot CLI
    command it costs about 5 ms of start-up (tools/bench/README.md).
    """
    if level >= _WARNING_LEVEL:
        raise ValueError("log_if_configured is for records below WARNING")
    if "logging" not in sys.modules:
        return
    import logging  # already imported by whoever configured it: a dictionary look-up

    if level_name is not None:
        logging.addLevelName(level, level_name)
    logging.getLogger(logger_name).log(level, message, *args)


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
