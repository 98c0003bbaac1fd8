"""Injectable clocks for tests that move time by hand instead of waiting."""

from __future__ import annotations

import datetime as dt


class OffsetClock:
    """The real time plus an ``offset`` the test sets (a nonce or credential expires by moving
    the offset past its lifetime)."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


class FixedClock:
    """A clock that stands at ``now`` (the real time when not given) until the test sets it."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now if now is not None else dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now
