"""The holder's side of the terminal without a touch screen: the demo's scripted holder, and
``mynakit terminal`` at a console.

:class:`ScreenFeed` collects the terminal's screens on its listener (the runner's thread);
:func:`attend` consumes them on the caller's thread and answers each one as a holder would:
PIN mode, the PIN from ``pin_source`` (called once per entry, so a wrong PIN is never sent
again on its own), the consents given, the result acknowledged, the card taken out.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mynakit.errors import TransportError
from mynakit.terminal.runner import TerminalRunner
from mynakit.terminal.screens import Screen, TerminalState

#: Returns the PIN for one entry (the screen's tries left is given), or ``None`` to give up.
PinSource = Callable[[int | None], str | None]


class ScreenFeed:
    """A terminal listener that queues every screen for :func:`attend`."""

    def __init__(self) -> None:
        self._screens: queue.Queue[Screen] = queue.Queue()

    def __call__(self, screen: Screen) -> None:
        self._screens.put(screen)

    def next(self, timeout: float) -> Screen:
        try:
            return self._screens.get(timeout=timeout)
        except queue.Empty:
            raise TransportError(
                f"the terminal showed nothing new for {timeout:g} s (card or service stuck?)"
            ) from None


@dataclass
class HolderScript:
    """How the holder answers: the PIN source, consents, whether the last try may be spent."""

    pin_source: PinSource
    consents: Iterable[str] = ()
    confirm_last_try: bool = False
    take_card: Callable[[], None] | None = None


def attend(
    runner: TerminalRunner,
    feed: ScreenFeed,
    holder: HolderScript,
    *,
    until: Callable[[Screen], bool],
    on_screen: Callable[[Screen], None] = lambda screen: None,
    timeout: float = 60.0,
) -> list[Screen]:
    """Answer screens until ``until(screen)``; returns every screen seen."""
    terminal = runner.terminal
    seen: list[Screen] = []
    while True:
        screen = feed.next(timeout)
        seen.append(screen)
        on_screen(screen)
        if until(screen):
            return seen
        state = screen.state
        actions = {choice.action for choice in screen.choices}
        if state is TerminalState.CHOOSING_METHOD:
            runner.post(terminal.choose_method, "pin")
        elif "confirm_last_try" in actions:
            if holder.confirm_last_try:
                runner.post(terminal.confirm_last_try)
            else:
                runner.post(terminal.cancel)
        elif screen.pin_pad:
            pin = holder.pin_source(screen.tries_left)
            if pin is None:
                runner.post(terminal.cancel)
            else:
                runner.post(terminal.submit_pin, pin)
            del pin
        elif state is TerminalState.TAKING_CONSENTS:
            runner.post(terminal.answer_consents, list(holder.consents))
        elif state is TerminalState.SHOWING_RESULT:
            runner.post(terminal.acknowledge)
        elif (
            state in (TerminalState.WAITING_FOR_REMOVAL, TerminalState.CARD_LEFT_BEHIND)
            or (state.is_failure and state is not TerminalState.READER_UNPLUGGED)
        ) and holder.take_card is not None:
            holder.take_card()
