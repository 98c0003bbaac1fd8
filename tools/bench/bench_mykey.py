"""MyKey platform resolutions per second with many registered holders (docs/services.md §B).

    .venv/bin/python tools/bench/bench_mykey.py [--holders 1000000] [--resolutions 6000]
        [--databases sqlite,postgresql] [--workers 2] [--connections 32] [--time-limit 120]
        [--json]

Run it inside a private network namespace (``tools/pcscd_manager.py isolate -- COMMAND``): it
binds loopback ports.

Per database (SQLite file, or a throwaway PostgreSQL cluster with fsync on):
1. ``--holders`` synthetic holders are bulk-loaded (PostgreSQL ``COPY``, SQLite one
   ``executemany`` transaction): a holder row, its current serial and a link to the benchmark
   service each; the load time is reported.
2. ``mynakit mykey serve --workers N`` starts on loopback (uvicorn, each worker its own
   platform; the sandbox issuer's CRL/issuer-link responder in the supervisor process).
3. ``--cards`` virtual cards register through the API with their PIN and link to the service.
4. Before the timed window: ``--resolutions`` challenges are stored as the server stores them
   (``auth_nonces``, five-minute lifetime) and answered with the cards' own keys (the card's
   work, not the server's).
5. Timed window: one asyncio load process (``loopback_load``: raw HTTP/1.1, requests encoded
   before the window) keeps ``--connections`` keep-alive connections busy POSTing
   ``/v1/services/resolve`` (service credential), for at most ``--time-limit`` seconds.
   Every resolution does the full verification: nonce (single use, in the database),
   signature, chain to the sandbox root, validity, revocation from the issuer's CRL that the
   platform downloads and refreshes (every five minutes), the renewal link, then the
   service's ID, the PPID and an access record (hash chain) committed before the answer.
Reported: resolutions/s over the window, p50/p99 latency, errors, load time.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from mynakit.card.jpki import JpkiAp, digest_info
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import generate_persona
from mynakit.emulator.state import CardState, build_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import card_respond
from mynakit.profiles import load_profile
from mynakit.services.mykey.client import MyKeyClient
from mynakit.services.store import Database, sqlite_url
from mynakit.services.store.postgres_cluster import ThrowawayCluster
from mynakit.transport.in_process import InProcessConnection

sys.path.insert(0, str(Path(__file__).parent))
from loopback_load import encode_posts, run_window

ADMIN_TOKEN = "bench-admin-token"
SYNTHETIC_SERIAL_BASE = 2**40  # above the sandbox issuer's 32-bit serials
BATCH = 50_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# -- bulk load ----------------------------------------------------------------------------------


def synthetic_rows(count: int, client_id: str) -> Iterator[tuple[tuple[Any, ...], ...]]:
    """(holder, serial, link) rows in batches."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for start in range(0, count, BATCH):
        holders, serials, links = [], [], []
        for number in range(start, min(count, start + BATCH)):
            ref = secrets.token_hex(16)
            mykey_id = f"B{number:07d}"  # 8 characters, unique, never drawn by the platform
            holders.append((ref, mykey_id, mykey_id, "issued8", "active", True, None, 0, now))
            serials.append((str(SYNTHETIC_SERIAL_BASE + number), ref, True, now))
            links.append((ref, client_id, f"U{number:07d}", now))
        yield tuple(holders), tuple(serials), tuple(links)


HOLDER_COLUMNS = (
    "holder_ref, mykey_id, unique_key, scheme, status, serial_link_consent, tap_key, "
    "id_clashes, registered_at"
)
SERIAL_COLUMNS = "serial, holder_ref, current, bound_at"
LINK_COLUMNS = "holder_ref, client_id, service_user_id, linked_at"


def bulk_load(database_url: str, count: int, client_id: str) -> float:
    started = time.perf_counter()
    if database_url.startswith("sqlite"):
        import sqlite3

        path = database_url.removeprefix("sqlite:///")
        connection = sqlite3.connect(path)
        with connection:
            for holders, serials, links in synthetic_rows(count, client_id):
                connection.executemany(
                    f"INSERT INTO mykey_holders ({HOLDER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                    holders,
                )
                connection.executemany(
                    f"INSERT INTO mykey_serials ({SERIAL_COLUMNS}) VALUES (?,?,?,?)", serials
                )
                connection.executemany(
                    f"INSERT INTO mykey_links ({LINK_COLUMNS}) VALUES (?,?,?,?)", links
                )
        connection.execute("ANALYZE")
        connection.close()
    else:
        import psycopg

        plain = database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as postgres:
            with postgres.cursor() as cursor:
                for holders, serials, links in synthetic_rows(count, client_id):
                    for table, columns, rows in (
                        ("mykey_holders", HOLDER_COLUMNS, holders),
                        ("mykey_serials", SERIAL_COLUMNS, serials),
                        ("mykey_links", LINK_COLUMNS, links),
                    ):
                        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
            postgres.commit()
            postgres.execute("ANALYZE")
    return time.perf_counter() - started


# -- the server -------------------------------------------------------------------------------


@contextmanager
def server(home: Path, database_url: str, workers: int) -> Iterator[str]:
    port = free_port()
    environment = {
        **os.environ,
        "MYNAKIT_HOME": str(home),
        "MYNAKIT_MYKEY_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    log_file = (home / "server.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mynakit.cli",
            "mykey",
            "--database",
            database_url,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=environment,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit((home / "server.log").read_text()[-3000:])
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log_file.close()


# -- the card's work, before the window ---------------------------------------------------------


def prepared_requests(
    database: Database, cards: list[CardState], count: int
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Challenges stored as the server stores them, answered with the cards' keys."""
    from mynakit.services.auth.store import NonceRow

    profile = load_profile()
    auth_key_id = profile.application("jpki").key("auth_key").key_id
    certificates = []
    for state in cards:
        with InProcessConnection(VirtualCard(profile, state.fork())) as connection:
            certificates.append(JpkiAp(ApduProtocol(connection)).read_certificate("auth"))
    bodies: list[dict[str, Any]] = []
    rows: list[Any] = []
    now = dt.datetime.now(dt.UTC)
    for number in range(count):
        index = number % len(cards)
        nonce = secrets.token_bytes(32)
        challenge_id = secrets.token_urlsafe(16)
        key = cards[index].card_keys[("jpki", auth_key_id)]
        signature = key.sign_pkcs1_v15(digest_info("sha256", hashlib.sha256(nonce).digest()))
        rows.append(
            NonceRow(
                challenge_id=challenge_id,
                purpose="mykey-pin",
                nonce=nonce,
                issued_at=now,
                expires_at=now + dt.timedelta(minutes=5),
                used_at=None,
            )
        )
        bodies.append(
            {
                "authentication": {
                    "challenge_id": challenge_id,
                    "signature": base64.b64encode(signature).decode(),
                    "certificate": base64.b64encode(certificates[index]).decode(),
                    "hash_algorithm": "sha256",
                }
            }
        )
        if number and number % 2000 == 0:
            log(f"  signed {number}/{count}")
    return bodies, rows


# -- the load generator -------------------------------------------------------------------------


def timed_window(
    url: str, credential: str, bodies: list[dict[str, Any]], connections: int, time_limit: float
) -> dict[str, Any]:
    requests = encode_posts(
        url, "/v1/services/resolve", bodies, {"Authorization": f"Bearer {credential}"}
    )
    window = run_window(url, requests, connections=connections, time_limit=time_limit).to_dict()
    return {
        "resolutions": window["answered"],
        "errors": window["errors"],
        "unsent": window["unsent"],
        "seconds": window["seconds"],
        "resolutions_per_second": window["per_second"],
        "p50_ms": window["p50_ms"],
        "p99_ms": window["p99_ms"],
    }


# -- one database -------------------------------------------------------------------------------


def bench_database(kind: str, arguments: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mynakit-bench-mykey-") as folder:
        home = Path(folder)
        cluster: ThrowawayCluster | None = None
        if kind == "sqlite":
            database_url = sqlite_url(home / "services.sqlite3")
        else:
            cluster = ThrowawayCluster(durable=True).start()
            database_url = cluster.create_database("bench")
        try:
            return bench_on(kind, home, database_url, arguments)
        finally:
            if cluster is not None:
                cluster.stop()


def bench_on(
    kind: str, home: Path, database_url: str, arguments: argparse.Namespace
) -> dict[str, Any]:
    log(f"[{kind}] issuer and {arguments.cards} virtual cards")
    issuer = SandboxIssuer.create(home / "issuer")
    profile = load_profile()
    cards = [
        build_card_state(profile, generate_persona(f"bench-{number}"), issuer)
        for number in range(arguments.cards)
    ]
    database = Database.open(database_url, chains=["mykey"])
    from mynakit.jpki.trust import TrustStore
    from mynakit.services.mykey.assembly import open_platform
    from mynakit.services.mykey.http import add_service_with_credential

    setup = open_platform(
        database_url, issuer_url=issuer.base_url, trust_store=TrustStore().with_sandbox(issuer)
    )
    service = add_service_with_credential(
        setup, "Bench library", require_pin=False, lifetime_days=None
    )
    setup.close()

    log(f"[{kind}] bulk-loading {arguments.holders:,} holders")
    load_seconds = bulk_load(database_url, arguments.holders, service["client_id"])
    log(f"[{kind}] loaded in {load_seconds:.1f} s")

    with server(home, database_url, arguments.workers) as url:
        holder = MyKeyClient(url)
        library = MyKeyClient(url, credential=service["credential"])
        for number, state in enumerate(cards):
            for call in ("register", "link"):
                challenge = holder.challenge()
                with InProcessConnection(VirtualCard(profile, state.fork())) as connection:
                    answer = card_respond(
                        JpkiAp(ApduProtocol(connection)), challenge, state.persona.auth_pin
                    )
                if call == "register":
                    holder.register(answer)
                else:
                    library.link(answer, f"REAL-{number}")
        log(f"[{kind}] preparing {arguments.resolutions:,} signed challenges")
        bodies, rows = prepared_requests(database, cards, arguments.resolutions)
        with database.transaction() as session:
            session.add_all(rows)
        log(f"[{kind}] timed window")
        window = timed_window(
            url, service["credential"], bodies, arguments.connections, arguments.time_limit
        )
        verdict = MyKeyClient(url, admin_token=ADMIN_TOKEN).verify_audit()
    database.dispose()
    return {
        "database": kind,
        "holders": arguments.holders,
        "load_seconds": round(load_seconds, 1),
        "workers": arguments.workers,
        "connections": arguments.connections,
        **window,
        "access_chain_ok": verdict["ok"],
        "access_records": verdict["records"],
    }


def chain_text(report: dict[str, Any]) -> str:
    return "ok" if report["access_chain_ok"] else "BROKEN"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--holders", type=int, default=1_000_000)
    parser.add_argument("--resolutions", type=int, default=6000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--cards", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args()
    reports = [bench_database(kind.strip(), arguments) for kind in arguments.databases.split(",")]
    if arguments.json:
        print(json.dumps(reports, indent=2))
        return
    print(
        f"{'database':<11} {'holders':>10} {'load s':>7} {'res/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'errors':>7}  chain"
    )
    for report in reports:
        print(
            f"{report['database']:<11} {report['holders']:>10,} {report['load_seconds']:>7} "
            f"{report['resolutions_per_second']:>8} {report['p50_ms']:>7} {report['p99_ms']:>7} "
            f"{sum(report['errors'].values()):>7}  {chain_text(report)}"
        )
    print(
        f"(workers {arguments.workers}, one asyncio load process with {arguments.connections} "
        f"keep-alive connections, {arguments.resolutions} resolutions, at most "
        f"{arguments.time_limit:g} s, load generator and server on loopback)"
    )


if __name__ == "__main__":
    main()
