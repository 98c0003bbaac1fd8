"""The eligibility server killed with SIGKILL during a bounded load on loopback loses no
acknowledged registration, check or consent, and its access-record chains verify afterwards
(SQLite and PostgreSQL). Then the privacy scan: no table and no log line holds a My Number, a
PIN or a password, and access records hold no content of the insured records."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, select

from mynakit.emulator.state import load_card_state
from mynakit.errors import MynakitError
from mynakit.services.auth.store import CredentialStore
from mynakit.services.eligibility.client import HttpEligibilityClient
from mynakit.services.eligibility.codes import ConsentScope
from mynakit.services.eligibility.http import INSTITUTION_SERVICE
from mynakit.services.eligibility.models import (
    CardCheckRequest,
    PinAuthentication,
    RegistrationRequest,
)
from mynakit.services.eligibility.store import (
    CheckRow,
    ConsentRow,
    SqlEligibilityRepository,
    bulk_load,
)
from mynakit.services.store import Database, sqlite_url
from mynakit.services.store.postgres_cluster import ThrowawayCluster
from support.eligibility_world import (
    CHECK_DAY,
    INSTITUTION,
    SCENARIOS,
    EligibilityWorld,
    population,
    query_for,
)

pytestmark = pytest.mark.services

REGISTERED = ("valid", "expired", "newer", "none", "several", "renewed")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """``mynakit eligibility serve`` as its own process, its output kept for the scan."""

    def __init__(self, home: Path, url: str, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mynakit.cli", "-v", "eligibility", "serve",
             "--database", url, "--port", str(self.port)],
            env={**os.environ, "MYNAKIT_HOME": str(home)},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, log.read_text()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the eligibility server did not start")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self._log.close()


@pytest.fixture(params=("sqlite", "postgresql"))
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "eligibility.sqlite3")
        return
    cluster: ThrowawayCluster = request.getfixturevalue("postgres_cluster")
    name = f"durability_{os.getpid()}"
    yield cluster.create_database(name)
    cluster.drop_database(name)


def test_sigkill_loses_nothing_acknowledged_and_leaks_nothing(
    database_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    world = EligibilityWorld.create(home)  # home/issuer and home/cards: a MYNAKIT_HOME
    database = Database.open(database_url, chains=["eligibility"])
    bulk_load(database, population())
    credential = CredentialStore(database, INSTITUTION_SERVICE).issue(INSTITUTION).credential
    database.dispose()
    log = tmp_path / "server.log"
    server = Server(home, database_url, log)

    registered: set[int] = set()
    # Acknowledged checks: (check id, person key, whether a consent was recorded with it; a
    # holder with no qualification on the day has no record to consent about).
    checks: list[tuple[str, str, bool]] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    def load() -> None:
        try:
            with HttpEligibilityClient(server.url, credential, timeout=5) as client:
                for round_number in range(1000):
                    scenario = REGISTERED[round_number % len(REGISTERED)]
                    if world.serial(scenario) not in registered:
                        answer = world.respond(scenario, client.begin_authentication())
                        done = client.register(RegistrationRequest(answer, query_for(scenario)))
                        registered.add(done.serial)
                        continue
                    answer = world.respond(scenario, client.begin_authentication())
                    result = client.check_by_card(
                        CardCheckRequest(
                            INSTITUTION,
                            PinAuthentication(answer),
                            confirmation_date=CHECK_DAY,
                            consents=frozenset({ConsentScope.MEDICATION}),
                        )
                    )
                    assert result.accepted and result.check_id is not None
                    checks.append(
                        (result.check_id, f"person-{scenario}", bool(result.body.results))
                    )
        except MynakitError as error:
            if not stop.is_set():  # only the kill may end the load
                failures.append(error)
        except BaseException as error:  # surfaced by the main thread
            failures.append(error)

    worker = threading.Thread(target=load)
    worker.start()
    deadline = time.monotonic() + 120
    while len(checks) < 12 and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.05)
    stop.set()
    server.kill()  # mid-load: a request is usually in flight
    worker.join(timeout=30)
    assert not failures, failures
    assert len(registered) == len(REGISTERED) and len(checks) >= 12

    database = Database.open(database_url, chains=["eligibility"])
    try:
        repository = SqlEligibilityRepository(database)
        for scenario in REGISTERED:
            assert repository.person_for_serial(world.serial(scenario)) == f"person-{scenario}"
        with database.transaction() as session:
            stored = set(session.scalars(select(CheckRow.check_id)))
            consents = list(session.scalars(select(ConsentRow.person_key)))
        assert {check_id for check_id, _, _ in checks} <= stored
        for person in {person for _, person, _ in checks}:
            acknowledged = sum(1 for _, who, consented in checks if who == person and consented)
            assert consents.count(person) >= acknowledged
        verdicts = repository.verify_access_chains()
        assert verdicts and all(verdict.ok for verdict in verdicts), verdicts

        # A restarted server serves on: one more check goes through.
        restarted = Server(home, database_url, log)
        try:
            with HttpEligibilityClient(restarted.url, credential) as client:
                answer = world.respond("valid", client.begin_authentication())
                again = client.check_by_card(
                    CardCheckRequest(INSTITUTION, PinAuthentication(answer))
                )
                assert again.accepted
        finally:
            restarted.stop()
        assert all(verdict.ok for verdict in repository.verify_access_chains())
        dump = _dump(database)
    finally:
        database.dispose()
    _privacy_scan(world, dump, log.read_text(encoding="utf-8", errors="replace"))


def _dump(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as text."""
    metadata = MetaData()
    metadata.reflect(database.engine)
    tables: dict[str, list[dict[str, Any]]] = {}
    with database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            tables[table.name] = [
                {key: str(value) for key, value in row._mapping.items()}
                for row in connection.execute(table.select())
            ]
    return tables


def _privacy_scan(world: EligibilityWorld, dump: dict[str, list[dict[str, Any]]], log: str) -> None:
    assert dump["eligibility_insured"] and dump["audit_records"] and dump["eligibility_cards"]
    text = json.dumps(dump, ensure_ascii=False)
    cells = {cell for rows in dump.values() for row in rows for cell in row.values()}
    for scenario in SCENARIOS:
        persona = load_card_state(world.cards, scenario).persona
        # The My Number anywhere (never read by the service: it is on the text AP only).
        for where, content in (("tables", text), ("log", log)):
            assert not re.search(rf"(?<!\d){persona.my_number}(?!\d)", content), where
            assert persona.sign_password not in content, where
            for secret in (persona.auth_pin, persona.text_pin, persona.card_pin):
                # A stored PIN would be a value of its own; the log is scanned as words.
                assert secret not in cells
                assert not re.search(rf"(?<![0-9A-Za-z]){secret}(?![0-9A-Za-z])", log)
        # The card's basic-4 information never reaches the service either.
        assert persona.name not in text and persona.address not in text
    # Access records name who, when, why, which items and how: never the content.
    audit = json.dumps(
        [
            {key: row[key] for key in ("actor", "subject", "purpose", "items", "method")}
            for row in dump["audit_records"]
        ],
        ensure_ascii=False,
    )
    for record in population():
        assert record.name not in audit and record.card_number not in audit
        assert record.birth_date.isoformat() not in audit
    assert not any("pin" in column or "password" in column for rows in dump.values()
                   for row in rows[:1] for column in row)  # fmt: skip
