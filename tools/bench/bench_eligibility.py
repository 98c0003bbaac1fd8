"""Eligibility checks per second and their latency with a large insured population.

For each database (SQLite file, and a throwaway PostgreSQL cluster with fsync on):

1. generate ``--records`` insured records into a JSON-lines file (not timed), then time the
   bulk load of that file (``bulk_load``: PostgreSQL COPY, batched INSERTs on SQLite);
2. bind ``--cards`` virtual cards to insured people through the real registration (PIN
   authentication, insurer data) and, for a realistic index, ``--bound`` more serials;
3. start ``--servers`` ``mynakit eligibility serve`` processes on loopback (revocation from
   the sandbox issuer's CRL, kept by the service and verified on every check);
4. before the timed window: fetch one nonce per check and have the cards sign them (the card's
   work, not the server's);
5. timed window: ``--concurrency`` keep-alive HTTP connections of ``loopback_load`` (one lean
   asyncio process) post the checks; every check is the full JPKI verification (nonce
   consumed in the database, signature, chain, validity, revocation), the qualification
   lookup, and the access record committed before the answer (one transaction). A check
   counts as an error unless its check row was committed (a refusal is an HTTP 200 with
   SegmentOfResult 9 and records nothing).

Prints checks/s, p50/p99 latency, the errors, and the bulk-load time. Run it inside a private
network namespace (``tools/pcscd_manager.py isolate -- COMMAND``): it binds loopback ports.
The machine is shared: note its load average with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loopback_load import encode_posts, run_window
from sqlalchemy import func, select

from mynakit.card.jpki import JpkiAp
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.state import create_card, load_card, load_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import Challenge, card_respond
from mynakit.jpki.trust import TrustStore
from mynakit.services.auth.store import CredentialStore
from mynakit.services.eligibility.assembly import build_service
from mynakit.services.eligibility.core import decide_validity
from mynakit.services.eligibility.http import INSTITUTION_SERVICE
from mynakit.services.eligibility.models import InsuranceCardQuery, RegistrationRequest
from mynakit.services.eligibility.population import (
    generate_population,
    read_records,
    write_records,
)
from mynakit.services.eligibility.store import (
    CardRow,
    CheckRow,
    SqlEligibilityRepository,
    bulk_load,
)
from mynakit.services.store import Database, sqlite_url
from mynakit.services.store.postgres_cluster import ThrowawayCluster
from mynakit.transport.in_process import InProcessConnection

INSTITUTION = "1312345678"
REFERENCE_DAY = "2026-12-01"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare_population(path: Path, count: int) -> list[Any]:
    """Write the JSON-lines file (or reuse it); return people qualified on the reference day."""
    import datetime as dt

    day = dt.date.fromisoformat(REFERENCE_DAY)
    chosen: list[Any] = []
    if path.exists():
        with path.open(encoding="utf-8") as stream:
            for index, record in enumerate(read_records(stream, "jsonl"), 1):
                if len(chosen) >= 200:
                    break
                if (
                    record.personal_family.value == "1"
                    and decide_validity([record], [record], day)[0].value == "1"
                    and index % 97 == 0
                ):
                    chosen.append(record)
        log(f"  reusing {path}")
        return chosen
    started = time.monotonic()
    with path.open("w", encoding="utf-8") as stream:

        def records() -> Any:
            for index, record in enumerate(
                generate_population(count, seed="bench", reference_day=day), 1
            ):
                if index % 200_000 == 0:
                    log(f"  generated {index:,}")
                if (
                    len(chosen) < 5000
                    and record.personal_family.value == "1"
                    and decide_validity([record], [record], day)[0].value == "1"
                    and index % 97 == 0
                ):
                    chosen.append(record)
                yield record

        write_records(records(), stream, "jsonl")
    log(f"  generated {count:,} records in {time.monotonic() - started:.1f} s")
    return chosen


def load(database: Database, path: Path) -> tuple[float, int]:
    started = time.monotonic()
    with path.open(encoding="utf-8") as stream:
        count = bulk_load(
            database,
            read_records(stream, "jsonl"),
            progress=lambda n: log(f"  loaded {n:,}") if n % 200_000 == 0 else None,
        )
    seconds = time.monotonic() - started
    log(f"  bulk load: {count:,} records in {seconds:.1f} s")
    return seconds, count


def bind_filler(database: Database, count: int) -> None:
    """Serials of other (synthetic) holders, so the card index has a realistic size."""
    import datetime as dt

    from sqlalchemy import insert

    now = dt.datetime.now(dt.UTC)
    rows = [
        {
            "serial": str(10**15 + index),
            "person_key": f"filler-{index:09d}",
            "registered_at": now,
            "predecessor": None,
            "superseded_at": None,
            "card_key": None,
        }
        for index in range(count)
    ]
    with database.transaction() as session:
        for start in range(0, len(rows), 10_000):
            session.execute(insert(CardRow), rows[start : start + 10_000])


def make_cards(home: Path, issuer: SandboxIssuer, count: int) -> list[str]:
    names = []
    for index in range(count):
        name = f"bench{index:03d}"
        create_card(home / "cards", name, seed=f"bench-{index}", issuer=issuer)
        names.append(name)
    return names


class Cards:
    """The bench's virtual cards, loaded once (their keys), each with an open JPKI session."""

    def __init__(self, home: Path, names: list[str]) -> None:
        self.sessions: dict[str, JpkiAp] = {}
        self.pins: dict[str, str] = {}
        for name in names:
            connection = InProcessConnection(load_card(home / "cards", name))
            self.sessions[name] = JpkiAp(ApduProtocol(connection, extended_length=True))
            self.pins[name] = load_card_state(home / "cards", name).persona.auth_pin

    def sign(self, name: str, challenge: Challenge) -> dict[str, str]:
        return card_respond(self.sessions[name], challenge, self.pins[name]).to_dict()


class Server:
    def __init__(self, home: Path, url: str, port: int, log_path: Path) -> None:
        environment = {**os.environ, "MYNAKIT_HOME": str(home)}
        self.port = port
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "mynakit.cli", "eligibility", "serve",
                "--database", url, "--port", str(port), "--revocation", "crl-cached",
            ],
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server on {self.port} exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server on {self.port} did not start")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def process_tree(roots: list[int]) -> list[int]:
    """``roots`` and all their descendants (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_ticks(pids: list[int]) -> dict[int, int]:
    """User + system CPU ticks of each process still running."""
    ticks = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_seconds_between(before: dict[int, int], after: dict[int, int]) -> float:
    # A process that started during the window counts whole.
    ticks = sum(value - before.get(pid, 0) for pid, value in after.items())
    return ticks / os.sysconf("SC_CLK_TCK")


def count_checks(url: str) -> int:
    database = Database.open(url, chains=["eligibility"])
    try:
        with database.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(CheckRow)) or 0)
    finally:
        database.dispose()


def run_one(
    kind: str, args: argparse.Namespace, folder: Path, population: Path, people: list[Any]
) -> dict[str, Any]:
    log(f"== {kind}")
    home = folder / f"home-{kind}"
    home.mkdir()
    cluster: ThrowawayCluster | None = None
    if kind == "sqlite":
        url = sqlite_url(folder / f"{kind}.sqlite3")
    else:
        cluster = ThrowawayCluster(durable=True)
        cluster.__enter__()
        url = cluster.create_database("bench")
    servers: list[Server] = []
    try:
        database = Database.open(url, chains=["eligibility"])
        load_seconds, loaded = load(database, population)
        bind_filler(database, args.bound)
        issuer = SandboxIssuer.create(home / "issuer")
        names = make_cards(home, issuer, args.cards)
        cards = Cards(home, names)
        # Registration through the service itself (PIN authentication, insurer data).
        from mynakit.emulator.ocsp_server import OcspServer
        from mynakit.services.issuer_link.http import HttpIssuerLink

        with OcspServer(issuer) as responder:
            service = build_service(
                database,
                TrustStore().with_sandbox(issuer.directory),
                revocation="ocsp",
                serial_link=HttpIssuerLink(responder.url),
            )
            for name, person in zip(names, people, strict=False):
                query = InsuranceCardQuery(
                    person.insurer_number, person.card_symbol, person.card_number,
                    person.branch_number, person.birth_date,
                )  # fmt: skip
                answer = cards.sign(name, service.begin_authentication())
                from mynakit.jpki.authentication import ChallengeResponse

                service.register(RegistrationRequest(ChallengeResponse.from_dict(answer), query))
        credential = CredentialStore(database, INSTITUTION_SERVICE).issue(INSTITUTION).credential
        database.dispose()

        ports = [free_port() for _ in range(args.servers)]
        for port in ports:
            servers.append(Server(home, url, port, folder / f"server-{kind}-{port}.log"))
        for server in servers:
            server.wait_ready()
        import httpx

        # Pre-sign: one nonce per check, signed by a card (outside the timed window).
        started = time.monotonic()
        bodies: list[dict[str, Any]] = []
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[0]}") as client:
            for index in range(args.checks + args.warmup):
                name = names[index % len(names)]
                challenge = Challenge.from_dict(client.post("/v1/challenges").json())
                answer = cards.sign(name, challenge)
                bodies.append(
                    {
                        "identification": {"method": "pin", "authentication": answer},
                        "confirmation_date": REFERENCE_DAY,
                    }
                )
        log(f"  signed {len(bodies):,} nonces in {time.monotonic() - started:.1f} s")
        random.Random(1).shuffle(bodies)
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        requests = encode_posts(
            urls[0], "/v1/checks/card", bodies, {"Authorization": f"Bearer {credential}"}
        )
        warmup, timed = requests[: args.warmup], requests[args.warmup :]
        run_window(urls, warmup, connections=args.concurrency, time_limit=args.time_limit)
        recorded_before = count_checks(url)
        load_average = os.getloadavg()[0]
        # CPU time of the servers and of PostgreSQL over the window (the load generator is
        # this process): per check, it says what the machine must give, whatever else ran.
        roots = [server.process.pid for server in servers]
        if cluster is not None:
            postmaster = cluster.directory / "data" / "postmaster.pid"
            database_roots = [int(postmaster.read_text().split()[0])]
        else:
            database_roots = []
        server_before = cpu_ticks(process_tree(roots))
        database_before = cpu_ticks(process_tree(database_roots))
        load_before = time.process_time()
        window = run_window(
            urls, timed, connections=args.concurrency, time_limit=args.time_limit
        ).to_dict()
        load_cpu = time.process_time() - load_before
        server_cpu = cpu_seconds_between(server_before, cpu_ticks(process_tree(roots)))
        database_cpu = cpu_seconds_between(database_before, cpu_ticks(process_tree(database_roots)))
        # A refused check is an HTTP 200 with SegmentOfResult 9 and records nothing: every
        # answered check must have left its check row (committed before the answer).
        recorded = count_checks(url) - recorded_before
        verify = Database.open(url, chains=["eligibility"])
        try:
            verdicts = SqlEligibilityRepository(verify).verify_access_chains()
        finally:
            verify.dispose()
        chain = "ok" if verdicts and all(verdict.ok for verdict in verdicts) else "BROKEN"
        refused = window["answered"] - recorded
        errors = sum(window["errors"].values()) + window["unsent"] + refused
        result = {
            "database": kind,
            "records": loaded,
            "bulk_load_seconds": round(load_seconds, 1),
            "checks": window["answered"],
            "errors": errors,
            "checks_per_second": window["per_second"],
            "p50_ms": window["p50_ms"],
            "p99_ms": window["p99_ms"],
            "servers": args.servers,
            "concurrency": args.concurrency,
            "load_average_before": round(load_average, 2),
            "chain": chain,
            # Milliseconds of CPU per answered check over the timed window.
            "cpu_ms_per_check": {
                name: round(seconds * 1000 / max(1, window["answered"]), 3)
                for name, seconds in (
                    ("servers", server_cpu),
                    ("database", database_cpu),
                    ("load_generator", load_cpu),
                )
            },
        }
        if errors:
            log(f"  errors: {window['errors']}, unsent {window['unsent']}, refused {refused}")
        log(f"  {json.dumps(result)}")
        return result
    finally:
        for server in servers:
            server.stop()
        if cluster is not None:
            cluster.__exit__(None, None, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--bound", type=int, default=200_000, help="extra synthetic card bindings")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--time-limit", type=float, default=120, help="bound of each window (s)")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--population", type=Path, help="JSON-lines file to reuse (written first if missing)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mynakit-bench-eligibility-"))
    try:
        population = args.population or folder / "population.jsonl"
        people = prepare_population(population, args.records)
        results = [
            run_one(kind, args, folder, population, people) for kind in args.databases.split(",")
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'database':<11}{'records':>10}{'load s':>8}{'checks':>8}{'checks/s':>10}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}{'load avg':>9}  chain"
    )
    for r in results:
        print(
            f"{r['database']:<11}{r['records']:>10,}{r['bulk_load_seconds']:>8}{r['checks']:>8}"
            f"{r['checks_per_second']:>10}{r['p50_ms']:>8}{r['p99_ms']:>8}{r['errors']:>8}"
            f"{r['load_average_before']:>9}  {r['chain']}"
        )


if __name__ == "__main__":
    main()
