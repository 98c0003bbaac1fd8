"""The base of connection decorators (trace, transcript recording): everything forwards to the
wrapped connection, so a decorator overrides only what it adds, and reader facts (limits, PIN
pad) pass through untouched."""

from __future__ import annotations

from mynakit.transport.base import Connection
from mynakit.transport.limits import ReaderLimits, limits_of
from mynakit.transport.pinpad import PinPad


class ConnectionDecorator:
    """A ``Connection`` that forwards to ``inner``."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    @property
    def reader_name(self) -> str:
        return self.inner.reader_name

    @property
    def extended_length(self) -> bool | None:
        return self.inner.extended_length

    @property
    def limits(self) -> ReaderLimits:
        return limits_of(self.inner)

    @property
    def pin_pad(self) -> PinPad | None:
        """The inner reader's keypad (PC/SC part 10): a VERIFY there carries no PIN through the
        host, so a decorator has nothing to redact or record but the fact."""
        pin_pad = getattr(self.inner, "pin_pad", None)
        return pin_pad if isinstance(pin_pad, PinPad) else None

    def transmit(self, command: bytes) -> bytes:
        return self.inner.transmit(command)

    def reset(self, *, cold: bool = False) -> bytes:
        return self.inner.reset(cold=cold)

    def close(self) -> None:
        self.inner.close()
