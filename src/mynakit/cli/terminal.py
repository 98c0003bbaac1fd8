"""``mynakit terminal``: the counter terminal on a real reader (docs/services.md §A.2).

PC/SC card events drive the terminal; the eligibility service is reached over its HTTP API
(``--url`` with the institution's credential). At a console the holder answers on the command
line (PIN from a hidden prompt, ``--pin-stdin`` or ``MYNAKIT_AUTH_PIN``, asked once per entry);
with ``--kiosk`` the terminal serves its page on 127.0.0.1 and the holder uses the touch
screen. ``--oqs DIR`` writes card results to ``DIR/face`` and answers the receipt computer's
requests dropped in ``DIR/req`` (docs/services.md §A.4).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mynakit.cli.context import get_context
from mynakit.cli.util import emit, note, to_json
from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.services.eligibility.oqs import OqsBridge
    from mynakit.terminal.screens import Screen

CREDENTIAL_VARIABLE = "MYNAKIT_ELIGIBILITY_CREDENTIAL"
OQS_POLL_SECONDS = 1.0


@click.command()
@click.option("--url", required=True, help="The eligibility service's HTTP API.")
@click.option(
    "--credential",
    envvar=CREDENTIAL_VARIABLE,
    help=f"The institution's credential (or ${CREDENTIAL_VARIABLE}).",
)
@click.option("--institution", required=True, help="The 10-digit medical institution code.")
@click.option(
    "--oqs",
    "oqs_folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Receipt-computer folder: results to face/, requests from req/ answered in res/.",
)
@click.option("--kiosk", is_flag=True, help="Serve the kiosk page on 127.0.0.1.")
@click.option("--port", type=int, default=0, help="Kiosk port (default: a free one).")
@click.option(
    "--consent",
    "consents",
    multiple=True,
    help="Console mode: a consent the holder gives (e.g. PharmacistsInfo); repeatable.",
)
@click.option("--pin-stdin", is_flag=True, help="Console mode: read the PIN from stdin.")
@click.option("--once", is_flag=True, help="Console mode: stop after one holder.")
@click.pass_context
def terminal(
    ctx: click.Context,
    url: str,
    credential: str | None,
    institution: str,
    oqs_folder: Path | None,
    kiosk: bool,
    port: int,
    consents: tuple[str, ...],
    pin_stdin: bool,
    once: bool,
) -> None:
    """Run the counter terminal on the reader given by --reader (default: any reader)."""
    from mynakit.services.eligibility.client import HttpEligibilityClient
    from mynakit.services.eligibility.models import normalize_institution_code
    from mynakit.terminal.console import ScreenFeed
    from mynakit.terminal.machine import Terminal
    from mynakit.terminal.runner import TerminalRunner
    from mynakit.transport.pcsc import PcscConnection
    from mynakit.transport.readers import CardMonitor

    choice = get_context(ctx).reader
    if choice.virtual_card is not None or choice.nfc_reader is not None:
        raise UsageError("mynakit terminal follows PC/SC card events: name a PC/SC reader")
    reader = choice.pcsc_reader
    institution = normalize_institution_code(institution)
    visits: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(HttpEligibilityClient(url, credential))
        bridge = _bridge(stack, oqs_folder, client) if oqs_folder is not None else None
        machine = Terminal(
            client,
            PcscConnection.open,
            institution_code=institution,
            reader=reader,
            result_sink=bridge.write_face if bridge is not None else None,
        )
        feed = ScreenFeed()
        machine.subscribe(feed)
        runner = stack.enter_context(TerminalRunner(machine))
        monitor = CardMonitor(initial_events=True)
        monitor.subscribe(runner.card_event)
        stack.enter_context(monitor)
        if kiosk:
            _serve_kiosk(stack, runner, feed, port)
        else:
            visits = _console(ctx, runner, feed, consents, pin_stdin=pin_stdin, once=once)
    emit(ctx, {"visits": visits}, _render(visits))


def _bridge(stack: contextlib.ExitStack, folder: Path, client: Any) -> OqsBridge:
    from mynakit.services.eligibility.oqs import OqsBridge, OqsFolders

    bridge = OqsBridge(OqsFolders(folder), client)
    stop = threading.Event()

    def sweep() -> None:
        for outcome in bridge.process_pending():
            note(f"receipt computer: {outcome.request} -> {outcome.response}")

    def poll() -> None:
        # Receipt computers drop files at any time: answer them as they come.
        while not stop.wait(OQS_POLL_SECONDS):
            sweep()

    sweep()  # what waited while the terminal was off

    thread = threading.Thread(target=poll, name="mynakit-oqs-bridge", daemon=True)
    thread.start()
    stack.callback(thread.join, 5)
    stack.callback(stop.set)
    return bridge


def _serve_kiosk(stack: contextlib.ExitStack, runner: Any, feed: Any, port: int) -> None:
    from mynakit.errors import TransportError
    from mynakit.terminal.kiosk import kiosk_for

    server = stack.enter_context(kiosk_for(runner, port=port))
    click.echo(f"Kiosk page: {server.url}")
    note("Open it in the counter's browser (kiosk mode); Ctrl-C stops the terminal.")
    try:
        while True:
            try:
                screen = feed.next(timeout=60.0)
            except TransportError:
                continue  # an idle counter
            note(f"[{screen.state.value}] {screen.title_ja} / {screen.title_en}")
    except KeyboardInterrupt:
        note("Terminal stopped.")


def _console(
    ctx: click.Context,
    runner: Any,
    feed: Any,
    consents: tuple[str, ...],
    *,
    pin_stdin: bool,
    once: bool,
) -> list[dict[str, Any]]:
    from mynakit.terminal.console import HolderScript, attend
    from mynakit.terminal.screens import TerminalState

    as_json = bool(ctx.find_root().params.get("as_json"))
    visits: list[dict[str, Any]] = []

    def show(screen: Screen) -> None:
        if as_json:
            note(to_json(screen.to_dict()).replace("\n", " "))
        else:
            tries = f" ({screen.tries_left} tries left)" if screen.tries_left is not None else ""
            note(f"[{screen.state.value}] {screen.title_ja} / {screen.title_en}{tries}")
            note(f"    {screen.message_ja}")

    pin_source = _PinSource(pin_stdin)
    holder = HolderScript(pin_source=pin_source, consents=consents)
    try:
        while True:
            pin_source.new_holder()
            seen: list[Screen] = []

            def finished(screen: Screen, seen: list[Screen] = seen) -> bool:
                seen.append(screen)
                started = any(item.state is TerminalState.READING_CARD for item in seen)
                return started and screen.state is TerminalState.WAITING_FOR_CARD

            note("Waiting for a card (place it on the reader).")
            attend(runner, feed, holder, until=finished, on_screen=show, timeout=24 * 3600)
            result = next((item.result for item in reversed(seen) if item.result), None)
            visits.append({"states": [item.state.value for item in seen], "result": result})
            if once:
                return visits
    except KeyboardInterrupt:
        note("Terminal stopped.")
        return visits


class _PinSource:
    """The holder's PIN, read when the terminal asks for it. A person at a prompt may type it
    again after a wrong entry; a PIN from the environment or stdin is used once per holder, so
    a wrong one is never sent a second time on its own."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin
        self.used = False

    def new_holder(self) -> None:
        self.used = False

    def __call__(self, tries_left: int | None) -> str | None:
        import os
        import sys

        from mynakit.cli.util import ENVIRONMENT_VARIABLES, read_secret

        scripted = self.from_stdin or bool(os.environ.get(ENVIRONMENT_VARIABLES["auth_pin"]))
        if self.used and (scripted or not sys.stdin.isatty()):
            return None
        self.used = True
        label = "PIN (4 digits)" + (f", {tries_left} tries left" if tries_left else "")
        return read_secret("auth_pin", label, from_stdin=self.from_stdin)


def _render(visits: list[dict[str, Any]]) -> str:
    lines = []
    for number, visit in enumerate(visits, start=1):
        result = visit["result"] or {}
        lines.append(
            f"Holder {number}: {' -> '.join(visit['states'])}; "
            f"qualification validity {result.get('qualification_validity', '-')}"
        )
    return "\n".join(lines) or "No holder came."
