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

The sandbox world itself (:class:`SandboxCounter`: issuer, eligibility service, insured records,
each holder's first registration for insurance use, docs/services.md §A.1) lives here too, with
the one command that builds it; the terminal's tests build the same counter from it. It sits in
the CLI layer because it joins the emulator to the services, which never import it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click

from mynakit.cli.util import emit, note

if TYPE_CHECKING:
    from mynakit.emulator.card_os import VirtualCard
    from mynakit.emulator.issuer import SandboxIssuer
    from mynakit.emulator.ocsp_server import OcspServer
    from mynakit.emulator.personas import Persona
    from mynakit.services.eligibility.core import EligibilityClient, EligibilityService
    from mynakit.services.eligibility.models import InsuredRecord
    from mynakit.services.store import Database
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
@click.option(
    "--reveal-pin",
    is_flag=True,
    help="With --kiosk: print the demo card's PIN (a generated sandbox holder's) to type in.",
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
    reveal_pin: bool,
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
                reveal_pin=reveal_pin,
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
    reveal_pin: bool = False,
) -> dict[str, Any]:
    """Serve the kiosk page with the demo holder's card on the reader until Ctrl-C."""
    from mynakit.errors import TransportError
    from mynakit.terminal.kiosk import kiosk_for
    from mynakit.terminal.screens import TerminalState

    counter = _Counter(stack, home, through_pcscd=through_pcscd, seed=seed, library=library)
    kiosk = stack.enter_context(kiosk_for(counter.runner, port=port))
    click.echo(f"Kiosk page: {kiosk.url}", err=False)
    note("Open the address above in a browser on this machine; the demo card is on the reader.")
    # The person at the kiosk must type the PIN, but a PIN is printed only when asked for, as
    # `mynakit emulator show --reveal` does (docs/architecture.md, privacy rules).
    if reveal_pin:
        note(f"The demo card's PIN (generated holder): {counter.holder.persona.auth_pin}")
    else:
        note("The demo card's PIN is not shown; start the demo with --reveal-pin to see it.")
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


# -- the sandbox counter: issuer, eligibility service, holders ------------------------------------

#: The sandbox clinic's 10-digit medical institution code (docs/services.md §A.4).
SANDBOX_INSTITUTION_CODE = "1310000017"
SANDBOX_INSURER_NUMBER = "06139991"
SANDBOX_INSURER_NAME = "サンドボックス健康保険組合"

Qualification = Literal["valid", "expired", "renewed_insurer", "none", "several"]


@dataclass
class Holder:
    """A generated holder with a virtual card, known to the counter's service."""

    persona: Persona
    card: VirtualCard
    person_key: str
    records: list[InsuredRecord] = field(default_factory=list)

    @property
    def auth_serial(self) -> int:
        return self.card.state.serials["auth"]


class SandboxCounter:
    """The counter's world. Use as a context manager: it runs the OCSP responder."""

    def __init__(self, home: Path, *, institution_code: str = SANDBOX_INSTITUTION_CODE) -> None:
        from mynakit.emulator.issuer import SandboxIssuer

        self.home = home
        self.institution_code = institution_code
        self.issuer: SandboxIssuer = SandboxIssuer.open_or_create(home / "issuer")
        self.folders = home / "oqs"
        self._stack = contextlib.ExitStack()
        self._core: EligibilityService | None = None
        self._client: EligibilityClient | None = None
        self._server: BackgroundServer | None = None
        self._library: Any = None
        self._card_ca = _SandboxCardCa()
        self.responder: OcspServer | None = None
        self.database: Database
        self.credential: str | None = None  # the institution's, issued at the first start
        self._holders = 0

    def __enter__(self) -> SandboxCounter:
        from mynakit.emulator.ocsp_server import OcspServer

        self.responder = self._stack.enter_context(OcspServer(self.issuer))
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stack.close()

    @property
    def core(self) -> EligibilityService:
        """The service's core in this process (insurers load records through it)."""
        if self._core is None:
            self._core = self._build_core()
        return self._core

    @property
    def service(self) -> EligibilityClient:
        """What the terminal talks to: the HTTP API on loopback through the HTTP client, as a
        counter reaches a real service; started on first use."""
        if self._client is None:
            self.start_service()
        assert self._client is not None
        return self._client

    @property
    def database_url(self) -> str:
        from mynakit.services.store import sqlite_url

        return sqlite_url(self.home / "eligibility.sqlite3")

    def _build_core(self) -> EligibilityService:
        """The eligibility service on SQLite (the embedded default), revocation by OCSP and the
        renewal link from the issuer over HTTP, as a deployment wires it."""
        from mynakit.jpki.trust import TrustStore
        from mynakit.services.eligibility.assembly import build_service
        from mynakit.services.issuer_link.http import HttpIssuerLink
        from mynakit.services.store import Database

        if self.responder is None:
            raise RuntimeError("use the sandbox counter as a context manager")
        self.database = Database.open(self.database_url, chains=["eligibility"])
        self._stack.callback(self.database.dispose)
        link = HttpIssuerLink(self.responder.url)
        self._stack.callback(link.close)
        return build_service(
            self.database,
            TrustStore.jlis().with_sandbox(self.issuer.directory),
            revocation="ocsp",
            serial_link=link,
            # Face or visual confirmation trusts the card-CA keys of the sandbox's cards; the
            # mapping grows as holders are made (docs/card.md §7.13).
            card_ca=self._card_ca,
        )

    def start_service(self) -> None:
        """Serve the HTTP API on 127.0.0.1 (the same port again after a stop)."""
        from mynakit.services.auth.store import CredentialStore
        from mynakit.services.eligibility.client import HttpEligibilityClient
        from mynakit.services.eligibility.http import INSTITUTION_SERVICE, create_eligibility_app

        core = self.core
        if self._server is None:
            self._server = BackgroundServer(create_eligibility_app(core, self.database))
            self._stack.callback(self.stop_service)
        self._server.start()
        if self._client is None:
            issued = CredentialStore(self.database, INSTITUTION_SERVICE).issue(
                self.institution_code
            )
            self.credential = issued.credential
            self._client = HttpEligibilityClient(self._server.url, issued.credential)
            self._stack.callback(self._client.close)

    @property
    def service_url(self) -> str:
        self.service  # noqa: B018 - started on first use
        assert self._server is not None
        return self._server.url

    def stop_service(self) -> None:
        """Stop the HTTP API (the counter then finds the service unreachable)."""
        if self._server is not None:
            self._server.stop()

    # -- the library counter (MyKey platform) ----------------------------------------------------

    def library(self) -> Any:
        """A MyKey platform on SQLite served on loopback, with a library registered as a
        service; returns the library's client (``MyKeyClient``) (docs/services.md §B.1, §B.3)."""
        if self._library is not None:
            return self._library
        from mynakit.jpki.revocation import ocsp_checker
        from mynakit.jpki.trust import TrustStore
        from mynakit.services.mykey.assembly import open_platform
        from mynakit.services.mykey.client import MyKeyClient
        from mynakit.services.mykey.http import add_service_with_credential, create_mykey_app
        from mynakit.services.store import sqlite_url

        if self.responder is None:
            raise RuntimeError("use the sandbox counter as a context manager")
        deployment = open_platform(
            sqlite_url(self.home / "mykey.sqlite3"),
            issuer_url=self.responder.url,
            trust_store=TrustStore.jlis().with_sandbox(self.issuer.directory),
            # OCSP on every resolution: the demo revokes and comes straight back.
            revocation=ocsp_checker(),
        )
        self._stack.callback(deployment.close)
        server = BackgroundServer(create_mykey_app(deployment))
        server.start()
        self._stack.callback(server.stop)
        service = add_service_with_credential(
            deployment, "sandbox city library", require_pin=True, lifetime_days=None
        )
        self._library = MyKeyClient(server.url, credential=service["credential"])
        self._stack.callback(self._library.close)
        return self._library

    def join_library(self, holder: Holder, library_user_number: str) -> None:
        """The holder registers a MyKey ID with the card and PIN, and the library links its
        own user number to it (the holder's PIN, as at the library's desk)."""
        from mynakit.card.jpki import JpkiAp
        from mynakit.iso7816.protocol import ApduProtocol
        from mynakit.jpki.authentication import card_respond
        from mynakit.transport.in_process import InProcessConnection

        library = self.library()
        for step in ("register", "link"):
            with InProcessConnection(holder.card) as connection:
                session = JpkiAp.open(ApduProtocol(connection, extended_length=True))
                response = card_respond(session, library.challenge(), holder.persona.auth_pin)
            if step == "register":
                library.register(response)
            else:
                library.link(response, library_user_number)
        holder.card.reset()

    # -- holders ---------------------------------------------------------------------------------

    def new_holder(
        self,
        seed: str,
        *,
        qualification: Qualification = "valid",
        register: bool = True,
        today: dt.date | None = None,
    ) -> Holder:
        """A holder with a fresh virtual card, insured records of the given kind, and (unless
        ``register=False``) the card registered for insurance use with the holder's PIN."""
        from mynakit.emulator.card_files import (
            CARD_CA_TEXT_KEY_NUMBER,
            CARD_CA_VISUAL_KEY_NUMBER,
            key_id,
        )
        from mynakit.emulator.personas import generate_persona
        from mynakit.emulator.state import new_virtual_card

        persona = generate_persona(seed)
        card = new_virtual_card(self.issuer, persona=persona)
        card_ca = card.state.card_ca_public_key()
        if card_ca is not None:
            for number in (CARD_CA_VISUAL_KEY_NUMBER, CARD_CA_TEXT_KEY_NUMBER):
                self._card_ca.setdefault(key_id(number), []).append(card_ca)
        self._holders += 1
        holder = Holder(persona, card, person_key=f"sandbox-person-{seed}"[:64])
        holder.records = _records_for(holder, qualification, today or dt.date.today())
        if holder.records:
            self._load(holder.records)
        if register and holder.records:
            self.register(holder)
        return holder

    def _load(self, records: list[InsuredRecord]) -> None:
        from mynakit.services.eligibility.store import DuplicateRecordError

        # The same holder again in a kept home: the records are there already.
        with contextlib.suppress(DuplicateRecordError):
            self.core.load_records(records)

    def register(self, holder: Holder) -> None:
        """初回登録 at the reader: the holder's PIN, the card signs, the data on the card; the
        card's visual AP key is enrolled too, for a later visual check (docs/card.md §7.13)."""
        from mynakit.card.jpki import JpkiAp
        from mynakit.card.presence import prove_presence
        from mynakit.card.visual import VisualAp
        from mynakit.iso7816.protocol import ApduProtocol
        from mynakit.jpki.authentication import card_respond
        from mynakit.services.eligibility.models import InsuranceCardQuery, RegistrationRequest
        from mynakit.transport.in_process import InProcessConnection

        record = holder.records[0]
        with InProcessConnection(holder.card) as connection:
            protocol = ApduProtocol(connection, extended_length=True)
            presence = self.service.begin_presence()
            proof = prove_presence(
                VisualAp(protocol), presence.nonce, holder.persona.birth_date_code
            )
            session = JpkiAp.open(protocol)
            challenge = self.service.begin_authentication()
            response = card_respond(session, challenge, holder.persona.auth_pin)
        self.service.register(
            RegistrationRequest(
                authentication=response,
                query=InsuranceCardQuery(
                    insurer_number=record.insurer_number,
                    card_symbol=record.card_symbol,
                    card_number=record.card_number,
                    branch_number=record.branch_number,
                    birth_date=record.birth_date,
                ),
                presence=(presence.challenge_id, proof),
            )
        )
        holder.card.reset()

    def renew_card(self, holder: Holder) -> int:
        """The municipal office renews the auth certificate: new key, new serial, old revoked
        (superseded), serial link kept. Returns the old serial."""
        from cryptography.hazmat.primitives import serialization

        from mynakit.emulator.state import CardKey

        state = holder.card.state
        jpki = holder.card.profile.application("jpki")
        key = jpki.key("auth_key")
        file = jpki.file("auth_certificate")
        old_serial = state.serials["auth"]
        new_key = CardKey.generate()
        certificate = self.issuer.renew(old_serial, new_key.public_key())
        state.card_keys[("jpki", key.key_id)] = new_key
        state.files[("jpki", file.file_id)] = certificate.public_bytes(serialization.Encoding.DER)
        state.serials["auth"] = certificate.serial_number
        return old_serial

    def revoke_card(self, holder: Holder) -> None:
        from cryptography import x509

        self.issuer.revoke(holder.auth_serial, x509.ReasonFlags.key_compromise)

    def block_pin(self, holder: Holder) -> None:
        holder.card.state.block("jpki", "auth_pin", holder.card.profile)


def _records_for(
    holder: Holder, qualification: Qualification, today: dt.date
) -> list[InsuredRecord]:
    from mynakit.services.eligibility.codes import (
        PersonalFamilyClassification,
        ReasonOfLoss,
        Sex,
    )
    from mynakit.services.eligibility.models import InsuredRecord

    if qualification == "none":
        return []
    persona = holder.persona
    number = str(int(hashlib.sha256(persona.seed.encode()).hexdigest(), 16) % 10**8).rjust(8, "0")
    base = InsuredRecord(
        person_key=holder.person_key,
        insurer_number=SANDBOX_INSURER_NUMBER,
        insurer_name=SANDBOX_INSURER_NAME,
        card_symbol="サンド",
        card_number=number,
        branch_number="01",
        personal_family=PersonalFamilyClassification.INSURED,
        name=persona.name,
        name_kana=persona.name_kana,
        birth_date=persona.birth_date,
        sex1={"MALE": Sex.MALE, "FEMALE": Sex.FEMALE}.get(persona.sex.name, Sex.NOT_SET),
        qualification_date=today - dt.timedelta(days=700),
        partial_contribution_ratio="030",
    )
    lost = replace(
        base,
        disqualification_date=today - dt.timedelta(days=30),
        reason_of_loss=ReasonOfLoss.OTHER_INSURANCE,
    )
    if qualification == "valid":
        return [base.normalized()]
    if qualification == "expired":
        return [lost.normalized()]
    newer = replace(
        base,
        insurer_number="01130012",
        insurer_name="全国健康保険協会 東京支部",
        card_symbol="1234",
        qualification_date=today - dt.timedelta(days=29),
    )
    if qualification == "renewed_insurer":
        return [lost.normalized(), newer.normalized()]
    return [base.normalized(), newer.normalized()]  # several


class _SandboxCardCa(dict[bytes, list[Any]]):
    """The card-CA keys of the sandbox's cards, by key id (every sandbox card certifies its
    card-face AP keys under the same ids). The service is built before the first card is
    made and trusts the keys of cards made later, so this trust list counts as configured
    even while it is empty."""

    def __bool__(self) -> bool:
        return True


class BackgroundServer:
    """An ASGI app served by uvicorn on 127.0.0.1 from a background thread; stoppable and
    restartable on the same port (a counter's service going down and coming back)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = _free_loopback_port()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        import uvicorn

        if self._thread is not None:
            return
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="mynakit-service", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start on {self.url}")
            time.sleep(0.01)

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._server.should_exit = True
            thread.join(timeout)


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
