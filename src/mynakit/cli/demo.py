"""``mynakit demo``: the whole counter flow on one laptop, no reader and no plastic.

A clinic counter (docs/services.md §A.2): the sandbox issuer (playing J-LIS, OCSP on loopback),
the eligibility service on SQLite, a generated holder whose virtual card is registered for
insurance use, the receipt computer's folders (docs/services.md §A.4) and the counter terminal. The
holder puts the card on the reader (in-process, or inside pcscd with ``--pcsc``), chooses the PIN,
the card signs the service's nonce, the holder answers the consent questions, the service answers,
the result goes to the screen and to the ``face`` folder, and the holder takes the card. Then the
receipt computer asks about the same person by insurance-card data through ``req``/``res``,
and finally the issuer revokes the certificate and the same card is refused at the counter.

``--kiosk`` serves the terminal's page on 127.0.0.1 and prints its address; the holder then
uses the page (touch) instead of the script.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mynakit.cli.util import emit, note

if TYPE_CHECKING:
    from mynakit.cli.sandbox_counter import Holder, SandboxCounter
    from mynakit.terminal.console import ScreenFeed
    from mynakit.terminal.runner import TerminalRunner
    from mynakit.terminal.screens import Screen
    from mynakit.transport.base import Connection
    from mynakit.transport.trace import TracingConnection

IN_PROCESS_READER = "mynakit virtual reader (in-process)"
DEMO_CONSENTS = ("PharmacistsInfo", "SpecificHealthCheckupsInfo")
KIOSK_HOLDER_PAUSE = 4.0
LIBRARY_USER_NUMBER = "L-2026-000123"  # seconds the kiosk demo waits before taking the card out


@click.command()
@click.option(
    "--pcsc",
    "through_pcscd",
    is_flag=True,
    help="Put the virtual card into pcscd's 'Virtual PCD 00 00' reader (needs pcscd + vpcd).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the issuer, the service's database and the result files here "
    "(default: a new folder under the system's temporary folder, kept and printed).",
)
@click.option("--seed", default="demo", show_default=True, help="Seed of the generated holder.")
@click.option("--kiosk", is_flag=True, help="Serve the kiosk page on 127.0.0.1, print its address.")
@click.option(
    "--library",
    is_flag=True,
    help="A library counter: the same card resolved through the MyKey platform.",
)
@click.option("--port", type=int, default=0, help="Kiosk port (default: a free one).")
@click.option(
    "--kiosk-seconds",
    type=float,
    default=None,
    help="Stop the kiosk after this many seconds (default: at Ctrl-C).",
)
@click.pass_context
def demo(
    ctx: click.Context,
    through_pcscd: bool,
    home: Path | None,
    seed: str,
    kiosk: bool,
    library: bool,
    port: int,
    kiosk_seconds: float | None,
) -> None:
    """Run a virtual card through the whole counter flow: PIN, eligibility, result files."""
    if home is None:
        home = Path(tempfile.mkdtemp(prefix="mynakit-demo-"))
    home.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if kiosk:
            result = run_kiosk_demo(
                stack,
                home,
                through_pcscd=through_pcscd,
                seed=seed,
                port=port,
                seconds=kiosk_seconds,
                library=library,
            )
        elif library:
            result = run_library_demo(stack, home, through_pcscd=through_pcscd, seed=seed)
        else:
            result = run_counter_demo(stack, home, through_pcscd=through_pcscd, seed=seed)
    emit(ctx, result, _render(result))


# -- the counter ----------------------------------------------------------------------------------


class _Counter:
    """The demo's counter: the sandbox world, the terminal on its runner, the card slot."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        home: Path,
        *,
        through_pcscd: bool,
        seed: str,
        library: bool = False,
    ) -> None:
        from mynakit.cli.sandbox_counter import SandboxCounter
        from mynakit.services.eligibility.oqs import OqsBridge, OqsFolders
        from mynakit.terminal.console import ScreenFeed
        from mynakit.terminal.machine import Terminal
        from mynakit.terminal.runner import TerminalRunner

        note("1. The sandbox issuer (playing J-LIS) starts; the eligibility service opens SQLite.")
        self.world: SandboxCounter = stack.enter_context(SandboxCounter(home))
        self.holder: Holder = self.world.new_holder(seed)
        note("2. A holder is insured and has registered the card for insurance use (初回登録).")
        self.bridge = OqsBridge(OqsFolders(home / "oqs"), self.world.service)
        self.connections: list[TracingConnection] = []
        self.through_pcscd = through_pcscd
        self._stack = stack
        self._bridge_to_pcscd: Any = None
        self.reader = IN_PROCESS_READER
        if through_pcscd:
            self._start_pcscd(home)
        service: Any = self.world.service
        if library:
            from mynakit.terminal.desks import LibraryDesk

            note("   The library links its user number to the holder's MyKey ID (PIN).")
            self.world.join_library(self.holder, LIBRARY_USER_NUMBER)
            service = LibraryDesk(self.world.library())
        self.terminal = Terminal(
            service,
            self._connect,
            institution_code=self.world.institution_code,
            reader=self.reader,
            result_sink=self.bridge.write_face,
        )
        self.feed: ScreenFeed = ScreenFeed()
        self.terminal.subscribe(self.feed)
        self.runner: TerminalRunner = stack.enter_context(TerminalRunner(self.terminal))
        if through_pcscd:
            from mynakit.transport.readers import CardMonitor

            monitor = CardMonitor(initial_events=True)
            monitor.subscribe(self.runner.card_event)
            stack.enter_context(monitor)
        else:
            self.runner.post(self.terminal.reader_added, self.reader)

    def _start_pcscd(self, home: Path) -> None:
        from mynakit.emulator.pcscd import VPCD_READER, ensure_pcscd

        # Reuse a pcscd that has vpcd loaded, or start one and stop it at the end.
        pcscd = ensure_pcscd(home / "pcscd")
        self._stack.callback(pcscd.stop)
        self.reader = VPCD_READER

    def _connect(self, reader: str) -> Connection:
        from mynakit.transport.trace import TracingConnection

        if self.through_pcscd:
            from mynakit.transport.pcsc import PcscConnection

            inner: Connection = PcscConnection.open(reader)
        else:
            from mynakit.transport.in_process import InProcessConnection

            inner = InProcessConnection(self.holder.card, reader_name=reader)
        connection = TracingConnection(inner)
        self.connections.append(connection)
        return connection

    def insert_card(self) -> None:
        if self.through_pcscd:
            from mynakit.emulator.vpcd import VpcdBridge

            if self._bridge_to_pcscd is None:
                self._bridge_to_pcscd = VpcdBridge(self.holder.card)
                self._bridge_to_pcscd.start()
                self._stack.callback(self._bridge_to_pcscd.stop)
            else:
                self._bridge_to_pcscd.insert_card(self.holder.card)
        else:
            self.holder.card.reset()
            self.runner.post(self.terminal.card_inserted, self.reader)

    def take_card(self) -> None:
        if self.through_pcscd:
            self._bridge_to_pcscd.remove_card()
        else:
            self.runner.post(self.terminal.card_removed, self.reader)

    def apdus(self) -> int:
        return sum(len(connection.counter) for connection in self.connections)


def _visit_done(seen: list[Screen]) -> Callable[[Screen], bool]:
    from mynakit.terminal.screens import TerminalState

    def done(screen: Screen) -> bool:
        seen.append(screen)
        started = any(item.state is TerminalState.READING_CARD for item in seen)
        return started and screen.state is TerminalState.WAITING_FOR_CARD

    return done


def _print_screen(screen: Screen) -> None:
    line = f"   [{screen.state.value}] {screen.title_ja} / {screen.title_en}"
    if screen.tries_left is not None:
        line += f" (tries left {screen.tries_left})"
    note(line)


def _visit(counter: _Counter, *, consents: tuple[str, ...]) -> list[Screen]:
    from mynakit.terminal.console import HolderScript, attend

    holder = HolderScript(
        pin_source=_pin_once(counter.holder.persona.auth_pin),
        consents=consents,
        take_card=counter.take_card,
    )
    seen: list[Screen] = []
    counter.insert_card()
    attend(counter.runner, counter.feed, holder, until=_visit_done(seen), on_screen=_print_screen)
    return seen


def _pin_once(pin: str) -> Callable[[int | None], str | None]:
    """The scripted holder types the PIN once; a second request is a refusal, never a retry."""
    remaining = [pin]

    def source(tries_left: int | None) -> str | None:
        return remaining.pop() if remaining else None

    return source


def run_counter_demo(
    stack: contextlib.ExitStack, home: Path, *, through_pcscd: bool, seed: str
) -> dict[str, Any]:
    """The scripted counter flow; returns the report ``mynakit demo`` prints."""
    from mynakit.terminal.screens import TerminalState

    started = time.perf_counter()
    counter = _Counter(stack, home, through_pcscd=through_pcscd, seed=seed)
    note(f"3. The holder places the card on '{counter.reader}'; the terminal takes over:")
    first = _visit(counter, consents=DEMO_CONSENTS)
    first_apdus = counter.apdus()
    result_screen = next(
        (screen for screen in first if screen.state is TerminalState.SHOWING_RESULT), None
    )
    face_file = result_screen.result_file if result_screen is not None else None

    note("4. The receipt computer asks by insurance-card data through req/res.")
    request_name = _drop_request(counter)
    [outcome] = counter.bridge.process_pending()

    note("5. The issuer revokes the certificate; the same card is refused at the counter.")
    counter.world.revoke_card(counter.holder)
    second = _visit(counter, consents=())
    refused = any(screen.state is TerminalState.CERTIFICATE_REVOKED for screen in second)

    folders = counter.bridge.folders
    return {
        "reader": counter.reader,
        "home": str(home),
        "visits": [
            {"states": [screen.state.value for screen in first], "apdus": first_apdus},
            {
                "states": [screen.state.value for screen in second],
                "apdus": counter.apdus() - first_apdus,
            },
        ],
        "result": result_screen.result if result_screen is not None else None,
        "face_file": str(folders.face / face_file) if face_file else None,
        "request_file": str(folders.done / request_name),
        "response_file": str(folders.res / outcome.response),
        "response_accepted": outcome.accepted,
        "revoked_card_refused": refused,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _drop_request(counter: _Counter) -> str:
    """A receipt computer's single qualification query for the demo holder
    (docs/services.md §A.4)."""
    from mynakit.services.eligibility.models import format_date

    record = counter.holder.records[0]
    now = dt.datetime.now(dt.timezone(dt.timedelta(hours=9)))  # the receipt computer's clock
    name = f"OQSsiquc01req_{now:%Y%m%d%H%M%S%f}.xml"
    today = now.date()
    xml = (
        "<?xml version='1.0' encoding='UTF-8' standalone='no'?>\n"
        "<XmlMsg><MessageHeader>"
        f"<QualificationConfirmationDate>{format_date(today)}</QualificationConfirmationDate>"
        f"<MedicalInstitutionCode>{counter.world.institution_code}</MedicalInstitutionCode>"
        "<ArbitraryFileIdentifier>demo</ArbitraryFileIdentifier>"
        "</MessageHeader><MessageBody><QualificationConfirmSearchInfo>"
        f"<InsurerNumber>{record.insurer_number}</InsurerNumber>"
        f"<InsuredCardSymbol>{record.card_symbol}</InsuredCardSymbol>"
        f"<InsuredIdentificationNumber>{record.card_number}</InsuredIdentificationNumber>"
        f"<InsuredBranchNumber>{record.branch_number}</InsuredBranchNumber>"
        f"<Birthdate>{format_date(record.birth_date)}</Birthdate>"
        "<LimitApplicationCertificateRelatedConsFlg>0</LimitApplicationCertificateRelatedConsFlg>"
        "</QualificationConfirmSearchInfo></MessageBody></XmlMsg>\n"
    )
    (counter.bridge.folders.req / name).write_text(xml, encoding="utf-8")
    return name


def run_library_demo(
    stack: contextlib.ExitStack, home: Path, *, through_pcscd: bool, seed: str
) -> dict[str, Any]:
    """The library counter: the same card and terminal, resolved through the MyKey platform."""
    from mynakit.terminal.screens import TerminalState

    started = time.perf_counter()
    counter = _Counter(stack, home, through_pcscd=through_pcscd, seed=seed, library=True)
    note(f"3. The holder places the card on '{counter.reader}' at the library's desk:")
    visit = _visit(counter, consents=())
    visit_apdus = counter.apdus()
    result_screen = next(
        (screen for screen in visit if screen.state is TerminalState.SHOWING_RESULT), None
    )
    note("4. The issuer revokes the certificate; the library refuses the card.")
    counter.world.revoke_card(counter.holder)
    second = _visit(counter, consents=())
    refused = any(screen.state is TerminalState.CERTIFICATE_REVOKED for screen in second)
    return {
        "reader": counter.reader,
        "home": str(home),
        "counter": "library",
        "visits": [
            {"states": [screen.state.value for screen in visit], "apdus": visit_apdus},
            {
                "states": [screen.state.value for screen in second],
                "apdus": counter.apdus() - visit_apdus,
            },
        ],
        "result": result_screen.result if result_screen is not None else None,
        "revoked_card_refused": refused,
        "seconds": round(time.perf_counter() - started, 3),
    }


def run_kiosk_demo(
    stack: contextlib.ExitStack,
    home: Path,
    *,
    through_pcscd: bool,
    seed: str,
    port: int,
    seconds: float | None,
    library: bool = False,
) -> dict[str, Any]:
    """Serve the kiosk page with the demo holder's card on the reader until Ctrl-C."""
    from mynakit.errors import TransportError
    from mynakit.terminal.kiosk import kiosk_for
    from mynakit.terminal.screens import TerminalState

    counter = _Counter(stack, home, through_pcscd=through_pcscd, seed=seed, library=library)
    kiosk = stack.enter_context(kiosk_for(counter.runner, port=port))
    click.echo(f"Kiosk page: {kiosk.url}", err=False)
    note("Open the address above in a browser on this machine; the demo card is on the reader.")
    # A generated holder's PIN, shown on request as `mynakit emulator show --reveal` does:
    # the person at the kiosk must type it.
    note(f"The demo card's PIN (generated holder): {counter.holder.persona.auth_pin}")
    note("Ctrl-C stops the kiosk.")
    counter.insert_card()
    deadline = None if seconds is None else time.monotonic() + seconds
    visits = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            try:
                screen = counter.feed.next(timeout=1.0)
            except TransportError:
                continue  # nothing new on the screen this second: keep serving
            _print_screen(screen)
            finished = screen.state in (
                TerminalState.WAITING_FOR_REMOVAL,
                TerminalState.CARD_PULLED,
            ) or (screen.state.is_failure and screen.state is not TerminalState.READER_UNPLUGGED)
            if finished:
                # The holder takes the card, and the next one (the same demo card) comes.
                time.sleep(KIOSK_HOLDER_PAUSE)
                counter.take_card()
                time.sleep(KIOSK_HOLDER_PAUSE)
                counter.insert_card()
                visits += 1
    except KeyboardInterrupt:
        note("Kiosk stopped.")
    return {"kiosk_url": kiosk.origin, "home": str(home), "visits": visits}


def _render(result: dict[str, Any]) -> str:
    if "kiosk_url" in result:
        return f"Kiosk served at {result['kiosk_url']}; {result['visits']} visits."
    lines = [f"Reader: {result['reader']}"]
    for number, visit in enumerate(result["visits"], start=1):
        apdus = f" ({visit['apdus']} APDUs)" if visit["apdus"] is not None else ""
        lines.append(f"Visit {number}{apdus}: " + " -> ".join(visit["states"]))
    view = result["result"] or {}
    if result.get("counter") == "library":
        lines.append(
            f"Library user number: {view.get('library_user_number', '-')} "
            f"(assurance {view.get('assurance', '-')})"
        )
        lines.append(
            f"Revoked card refused: {'yes' if result['revoked_card_refused'] else 'NO'}; "
            f"{result['seconds']} s in all."
        )
        return "\n".join(lines)
    lines.append(
        f"Qualification validity: {view.get('qualification_validity', '-')}; "
        f"consents given: {', '.join(view.get('consents') or []) or 'none'}"
    )
    lines.append(f"Result for the receipt computer (face): {result['face_file']}")
    lines.append(f"Receipt computer's query: {result['request_file']}")
    lines.append(f"Its response (res): {result['response_file']}")
    lines.append(
        f"Revoked card refused: {'yes' if result['revoked_card_refused'] else 'NO'}; "
        f"{result['seconds']} s in all."
    )
    return "\n".join(lines)
