"""The MyKey platform as a real server process (``mynakit mykey serve``, uvicorn on loopback):
SIGKILL during a bounded load loses no acknowledged registration or link, and the access-record
chain verifies after restart; after a full scenario no table or log line holds a My Number,
PIN, password or basic-4 item (docs/services.md §B.1, privacy rules)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, select

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.services.errors import ServiceError, UpstreamError
from mynakit.services.mykey.client import MyKeyClient
from mynakit.services.store import normalized_url
from support.mykey import CounterCard, new_card

pytestmark = pytest.mark.services

ADMIN_TOKEN = "durability-admin-token"
HOLDERS = 4
KILL_AFTER_ACKNOWLEDGED = 24
READY_WAIT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Server:
    home: Path
    database_url: str
    log: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        environment = {
            **os.environ,
            "MYNAKIT_HOME": str(self.home),
            "MYNAKIT_MYKEY_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mynakit.cli",
                    "-vv",
                    "mykey",
                    "--database",
                    self.database_url,
                    "serve",
                    "--port",
                    str(self.port),
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        # Readiness, not a timing assertion: poll until the server answers or exits.
        import time

        deadline = time.monotonic() + READY_WAIT_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError("server did not become ready")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def server(home: Path, database_url: str, log: Path) -> Iterator[Server]:
    running = Server(home, database_url, log)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mykey-server-home")


@pytest.fixture(scope="module")
def issuer(home: Path) -> SandboxIssuer:
    return SandboxIssuer.open_or_create(home / "issuer")


@pytest.fixture(scope="module")
def cards(home: Path, issuer: SandboxIssuer) -> list[CounterCard]:
    return [new_card(home / "cards", issuer, f"durable{number}") for number in range(HOLDERS)]


def test_sigkill_loses_no_acknowledged_write(
    home: Path, cards: list[CounterCard], database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    acknowledged: dict[str, int] = {}  # card name -> highest acknowledged link number
    registered: dict[str, str] = {}  # card name -> MyKey ID
    lock = threading.Lock()
    enough = threading.Event()
    count = [0]

    with server(home, database_url, log) as first:
        admin = MyKeyClient(first.url, admin_token=ADMIN_TOKEN)
        credential = admin.add_service("Durable library")["credential"]

        def work(card: CounterCard) -> None:
            holder = MyKeyClient(first.url)
            library = MyKeyClient(first.url, credential=credential)
            number = 0
            try:
                view = holder.register(card.pin(holder))
                with lock:
                    registered[card.name] = view["mykey_id"]
                    count[0] += 1
                while True:  # bounded: the server is killed after enough acknowledgements
                    number += 1
                    library.link(card.pin(holder), f"{card.name}-{number}")
                    with lock:
                        acknowledged[card.name] = number
                        count[0] += 1
                        if count[0] >= KILL_AFTER_ACKNOWLEDGED:
                            enough.set()
            except (UpstreamError, ServiceError, httpx.HTTPError):
                return  # the server died under us: what was acknowledged must survive

        threads = [threading.Thread(target=work, args=(card,)) for card in cards]
        for thread in threads:
            thread.start()
        assert enough.wait(timeout=300), log.read_text()[-2000:]
        first.kill()
        for thread in threads:
            thread.join()

    assert registered and acknowledged
    with server(home, database_url, log) as second:
        holder = MyKeyClient(second.url)
        library = MyKeyClient(second.url, credential=credential)
        for card in cards:
            if card.name not in registered:
                continue
            assert holder.show(card.pin(holder))["mykey_id"] == registered[card.name]
            if card.name in acknowledged:
                linked = library.resolve(card.pin(holder))["service_user_id"]
                number = int(linked.rsplit("-", 1)[1])
                # The acknowledged link, or the one in flight when the server died.
                assert number in (acknowledged[card.name], acknowledged[card.name] + 1)
        verdict = MyKeyClient(second.url, admin_token=ADMIN_TOKEN).verify_audit()
        assert verdict["ok"], verdict["problems"]
        assert verdict["records"] >= sum(acknowledged.values()) + len(registered)


def _personal_strings(card: CounterCard) -> tuple[list[str], list[str]]:
    """(long secrets found by substring, short ones found only as whole tokens)."""
    persona = card.persona
    birth = persona.birth_date
    long_items = [
        persona.my_number,
        persona.sign_password,
        persona.name,
        persona.name_kana,
        persona.name_roman,
        persona.address,
        persona.address_roman,
        birth.strftime("%Y%m%d"),
        birth.isoformat(),
        persona.birth_date_code,
    ]
    short_items = [persona.auth_pin, persona.text_pin, persona.card_pin, persona.security_code]
    return [item for item in long_items if item], [item for item in short_items if item]


def _dump_tables(database_url: str) -> str:
    engine = create_engine(normalized_url(database_url))
    metadata = MetaData()
    metadata.reflect(engine)
    lines = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                lines.append(f"{table.name}: {row!r}")
    engine.dispose()
    return "\n".join(lines)


def test_no_personal_data_in_tables_or_logs(
    home: Path, cards: list[CounterCard], database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "server.log"
    card = cards[0]
    with server(home, database_url, log) as running:
        holder = MyKeyClient(running.url)
        admin = MyKeyClient(running.url, admin_token=ADMIN_TOKEN)
        credential = admin.add_service("Private library")["credential"]
        library = MyKeyClient(running.url, credential=credential)
        holder.register(card.pin(holder), presence=card.enrolment(holder))
        library.link(card.pin(holder), "PRIV-1")
        library.resolve(card.pin(holder))
        certificate, challenge_id, proof = card.tap(holder)
        library.resolve_tap(certificate, challenge_id, proof)
        holder.change(card.pin(holder), None)
        holder.history(card.pin(holder))
        holder.revoke(card.pin(holder))
    dump = _dump_tables(database_url)
    logs = log.read_text(errors="replace")
    # The dump read the tables, and the log is the server's debug log.
    assert "mykey_holders" in dump and "audit_records" in dump and "mykey_serials" in dump
    assert "MyKey platform on http://127.0.0.1" in logs and "serial-link" in logs
    long_items, short_items = _personal_strings(card)
    for text, where in ((dump, "tables"), (logs, "logs")):
        tokens = set(re.split(r"[^0-9A-Za-z]+", text))
        for item in long_items:
            assert item not in text, f"personal data in the {where}"
        for item in short_items:
            assert item not in tokens, f"a PIN in the {where}"
