"""Reader discovery and card events over PC/SC.

``list_readers`` answers "what is plugged in and what holds a card"; ``wait_for_card`` blocks
until a card is present; ``CardMonitor`` is the kiosk's event source: card inserted or removed,
reader plugged in or out (docs/readers.md §3.4 and §4.8), delivered to callbacks and to an
iterator from one background thread. All of it is ``SCardGetStatusChange``, with the
``\\\\?PnP?\\Notification`` pseudo-reader for hot-plug.
"""

from __future__ import annotations

import enum
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mynakit.errors import TransportError
from mynakit.transport.base import NoServiceError, TransportTimeoutError
from mynakit.transport.pcsc import (
    PNP_NOTIFICATION,
    SCARD_E_CANCELLED,
    SCARD_E_TIMEOUT,
    SCARD_E_UNKNOWN_READER,
    SCARD_S_SUCCESS,
    check,
    error_for,
    establish_context,
    reader_names,
    reader_states,
    release_context,
    resolve_reader_name,
    unsigned,
)
from mynakit.transport.pyscard_binding import scard

logger = logging.getLogger("mynakit.transport.readers")

#: pcsc-lite (and Windows) count card insertions and removals in the high 16 bits of a reader's
#: event state; a changed count with a card present both times means it was swapped unseen.
_EVENT_COUNT_SHIFT = 16


@dataclass(frozen=True)
class ReaderInfo:
    """One reader as PC/SC sees it now."""

    name: str
    card_present: bool
    atr: bytes | None = None
    #: Another program holds the card exclusively (connecting would fail as busy).
    in_use_exclusively: bool = False
    #: A card is in but does not answer (upside down, dirty contacts, not a chip card).
    mute: bool = False

    @property
    def atr_hex(self) -> str | None:
        return self.atr.hex().upper() if self.atr else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for ``mynakit readers --json``."""
        return {
            "name": self.name,
            "card_present": self.card_present,
            "atr": self.atr_hex,
            "in_use_exclusively": self.in_use_exclusively,
            "mute": self.mute,
        }


def _reader_info(name: str, state: int, atr: bytes) -> ReaderInfo:
    present = bool(state & scard.SCARD_STATE_PRESENT)
    return ReaderInfo(
        name=name,
        card_present=present,
        atr=atr if present and atr else None,
        in_use_exclusively=bool(state & scard.SCARD_STATE_EXCLUSIVE),
        mute=bool(state & scard.SCARD_STATE_MUTE),
    )


def list_readers() -> list[ReaderInfo]:
    """Every connected reader with its card state. No reader is an empty list, not an error;
    no pcscd raises ``NoServiceError``."""
    context = establish_context()
    try:
        return [
            _reader_info(name, state, atr)
            for name, state, atr in reader_states(context, reader_names(context))
        ]
    finally:
        release_context(context)


def wait_for_card(reader: str | None = None, timeout: float | None = 30.0) -> ReaderInfo:
    """Block until a card is in ``reader`` (a name or a unique fragment), or in any reader when
    ``None``; readers plugged in meanwhile count. ``timeout=None`` waits without limit.
    Raises ``TransportTimeoutError``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    context = establish_context()
    try:
        known: dict[str, int] = {}
        while True:
            names = reader_names(context)
            watched = names
            if reader is not None:
                try:
                    watched = [resolve_reader_name(reader, names)]
                except TransportError:
                    watched = []  # not plugged in yet: wait for the PnP notification
            for name, state, atr in reader_states(context, watched):
                known[name] = state & ~scard.SCARD_STATE_CHANGED
                info = _reader_info(name, state, atr)
                if info.card_present and not info.mute:
                    return info
            # Wait in slices of at most 10 s when unbounded, so the call stays interruptible.
            remaining = 10.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                where = f"reader {reader!r}" if reader else "any reader"
                raise TransportTimeoutError(
                    f"no card was inserted into {where} within {timeout:g} s: insert the card "
                    "(or place it on the contactless reader) and retry"
                )
            query = [(name, known.get(name, scard.SCARD_STATE_UNAWARE)) for name in watched]
            query.append((PNP_NOTIFICATION, _pnp_state(len(names))))
            hresult, _states = scard.SCardGetStatusChange(
                context, max(1, int(remaining * 1000)), query
            )
            code = unsigned(hresult)
            if code not in (SCARD_S_SUCCESS, SCARD_E_TIMEOUT, SCARD_E_UNKNOWN_READER):
                raise error_for(hresult, "wait for card", reader)
    finally:
        release_context(context)


def _pnp_state(reader_count: int) -> int:
    # pcsc-lite reports a reader-list change when the count in the high word of the state we
    # pass differs from the current number of readers (winscard_clnt.c, PnP notification).
    return reader_count << _EVENT_COUNT_SHIFT


class CardEventKind(enum.Enum):
    CARD_INSERTED = "card_inserted"
    CARD_REMOVED = "card_removed"
    READER_ADDED = "reader_added"
    READER_REMOVED = "reader_removed"


@dataclass(frozen=True)
class CardEvent:
    kind: CardEventKind
    reader: str
    #: The card's ATR for CARD_INSERTED, else ``None``.
    atr: bytes | None = None


CardEventCallback = Callable[[CardEvent], None]


@dataclass
class _ReaderSnapshot:
    present: bool
    atr: bytes | None
    event_count: int
    state: int


class CardMonitor:
    """Watches every reader on a background thread and reports card and reader events.

    Subscribe callbacks (called on the monitor thread, so keep them short) or iterate
    ``events()``. With ``initial_events`` the readers and cards already there at ``start()`` are
    reported as added and inserted, so a kiosk sees a card left in the reader. If pcscd stops,
    every reader is reported removed and the monitor reconnects when pcscd comes back; the
    latest such problem is in ``last_error``.
    """

    def __init__(
        self,
        *,
        initial_events: bool = True,
        retry_interval: float = 1.0,
        max_queued_events: int = 1024,
    ) -> None:
        self.initial_events = initial_events
        self.retry_interval = retry_interval
        self._callbacks: list[CardEventCallback] = []
        self._callbacks_lock = threading.Lock()
        self._events: queue.Queue[CardEvent] = queue.Queue(max_queued_events)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: Any | None = None
        self._context_lock = threading.Lock()
        self._readers: dict[str, _ReaderSnapshot] = {}
        self._ready = threading.Event()
        self.last_error: TransportError | None = None

    def subscribe(self, callback: CardEventCallback) -> Callable[[], None]:
        """Call ``callback`` for every event; returns a function that unsubscribes it."""
        with self._callbacks_lock:
            self._callbacks.append(callback)

        def unsubscribe() -> None:
            with self._callbacks_lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return unsubscribe

    def start(self, ready_timeout: float = 5.0) -> None:
        """Start watching; returns once the first snapshot is taken (or ``ready_timeout``)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="mynakit-card-monitor", daemon=True)
        self._thread.start()
        self._ready.wait(ready_timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread promptly (cancels the blocking wait) and join it."""
        self._stop.set()
        thread = self._thread
        deadline = time.monotonic() + timeout
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            # SCardCancel wakes a blocked SCardGetStatusChange; repeated, because a cancel that
            # lands just before the thread starts its wait is lost.
            with self._context_lock:
                if self._context is not None:
                    scard.SCardCancel(self._context)
            thread.join(0.05)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def readers(self) -> list[ReaderInfo]:
        """The monitor's current view of the readers (no PC/SC call)."""
        return [
            ReaderInfo(name, snapshot.present, snapshot.atr)
            for name, snapshot in list(self._readers.items())
        ]

    def get(self, timeout: float | None = None) -> CardEvent | None:
        """The next queued event, or ``None`` after ``timeout`` seconds."""
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def events(self, timeout: float | None = None) -> Iterator[CardEvent]:
        """Iterate queued events; ends after ``timeout`` seconds without one, or at ``stop()``."""
        while True:
            event = self.get(timeout=timeout if timeout is not None else 0.25)
            if event is not None:
                yield event
            elif timeout is not None or (self._stop.is_set() and self._events.empty()):
                return

    def __enter__(self) -> CardMonitor:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- the monitor thread ---------------------------------------------------------------

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                context = establish_context()
            except TransportError as error:
                self._record_error(error)
                self._ready.set()
                self._stop.wait(self.retry_interval)
                continue
            with self._context_lock:
                self._context = context
            try:
                self._refresh(context, emit=self.initial_events or not first)
                first = False
                self._ready.set()
                self._watch(context)
            except TransportError as error:
                self._record_error(error)
                self._forget_all_readers()
                self._stop.wait(self.retry_interval)
            finally:
                with self._context_lock:
                    self._context = None
                release_context(context)

    def _watch(self, context: Any) -> None:
        while not self._stop.is_set():
            query = [(name, snapshot.state) for name, snapshot in self._readers.items()]
            query.append((PNP_NOTIFICATION, _pnp_state(len(self._readers))))
            # A finite wait bounds how long a lost SCardCancel could delay stop().
            hresult, _states = scard.SCardGetStatusChange(context, 1000, query)
            code = unsigned(hresult)
            if code in (SCARD_E_TIMEOUT, SCARD_E_CANCELLED):
                continue
            if code not in (SCARD_S_SUCCESS, SCARD_E_UNKNOWN_READER):
                check(hresult, "wait for card events")
            self._refresh(context, emit=True)

    def _refresh(self, context: Any, *, emit: bool) -> None:
        current: dict[str, _ReaderSnapshot] = {}
        for name, state, atr in reader_states(context, reader_names(context)):
            present = bool(state & scard.SCARD_STATE_PRESENT)
            current[name] = _ReaderSnapshot(
                present=present,
                atr=atr if present and atr else None,
                event_count=state >> _EVENT_COUNT_SHIFT,
                # Passed back as the "current state" of the next wait, which must not carry
                # the CHANGED flag or the wait returns at once.
                state=state & ~scard.SCARD_STATE_CHANGED,
            )
        previous = self._readers
        self._readers = current
        self.last_error = None
        if not emit:
            return
        for name in previous.keys() - current.keys():
            if previous[name].present:
                self._emit(CardEvent(CardEventKind.CARD_REMOVED, name))
            self._emit(CardEvent(CardEventKind.READER_REMOVED, name))
        for name, now in current.items():
            before = previous.get(name)
            if before is None:
                self._emit(CardEvent(CardEventKind.READER_ADDED, name))
                if now.present:
                    self._emit(CardEvent(CardEventKind.CARD_INSERTED, name, now.atr))
                continue
            swapped = (
                before.present
                and now.present
                and (before.event_count != now.event_count or before.atr != now.atr)
            )
            if before.present and (not now.present or swapped):
                self._emit(CardEvent(CardEventKind.CARD_REMOVED, name))
            if now.present and (not before.present or swapped):
                self._emit(CardEvent(CardEventKind.CARD_INSERTED, name, now.atr))

    def _forget_all_readers(self) -> None:
        for name, snapshot in list(self._readers.items()):
            if snapshot.present:
                self._emit(CardEvent(CardEventKind.CARD_REMOVED, name))
            self._emit(CardEvent(CardEventKind.READER_REMOVED, name))
        self._readers = {}

    def _record_error(self, error: TransportError) -> None:
        if type(error) is not type(self.last_error):
            level = logging.WARNING if isinstance(error, NoServiceError) else logging.ERROR
            logger.log(level, "card monitor: %s; retrying every %g s", error, self.retry_interval)
        self.last_error = error

    def _emit(self, event: CardEvent) -> None:
        logger.debug("card monitor: %s %s", event.kind.value, event.reader)
        try:
            self._events.put_nowait(event)
        except queue.Full:
            logger.warning("card monitor: event queue full, dropping %s", event.kind.value)
        with self._callbacks_lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:
                # A kiosk's handler bug must not stop card events for everyone else.
                logger.exception("card monitor: callback %r failed", callback)
