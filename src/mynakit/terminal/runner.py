"""Runs a :class:`~mynakit.terminal.machine.Terminal` on one worker thread.

Card events (from PC/SC's ``CardMonitor`` or an in-process slot), the kiosk's buttons and the
watchdog's ticks all become jobs on one queue, executed in order by one thread, so the machine
sees one input at a time and a slow card or service never blocks the card monitor or the web
server. The watchdog ticks whenever the queue has been idle for ``tick_interval`` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from mynakit.terminal.machine import Terminal

logger = logging.getLogger("mynakit.terminal.runner")

_STOP = object()


class TerminalRunner:
    """One worker thread in front of a terminal."""

    def __init__(self, terminal: Terminal, *, tick_interval: float = 0.5) -> None:
        self.terminal = terminal
        self.tick_interval = tick_interval
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0

    def start(self) -> TerminalRunner:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mynakit-terminal", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._jobs.put(_STOP)
            thread.join(timeout)

    def __enter__(self) -> TerminalRunner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def post(self, job: Callable[..., None], *arguments: Any) -> None:
        """Run ``job(*arguments)`` on the worker, after every job posted before it."""
        with self._idle:
            self._pending += 1
        self._jobs.put((job, arguments))

    def card_event(self, event: Any) -> None:
        """A ``CardMonitor`` callback: queue the event for the machine."""
        self.post(self.terminal.handle_card_event, event)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every posted job has run; ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _run(self) -> None:
        while True:
            try:
                item = self._jobs.get(timeout=self.tick_interval)
            except queue.Empty:
                self._guarded(self.terminal.tick)
                continue
            if item is _STOP:
                return
            job, arguments = item
            try:
                self._guarded(job, *arguments)
            finally:
                # Drop the reference at once: a job may carry the holder's PIN.
                del item, job, arguments
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    @staticmethod
    def _guarded(job: Callable[..., None], *arguments: Any) -> None:
        try:
            job(*arguments)
        except Exception:
            # A bug in one step must not stop the counter; the arguments are not logged (a PIN
            # may be among them).
            logger.exception("terminal job %s failed", getattr(job, "__name__", "?"))
