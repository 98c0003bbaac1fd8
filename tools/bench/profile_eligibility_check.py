r"""cProfile of the eligibility check core without HTTP: ``EligibilityService.check_by_card_batch``.

Builds the service as the server does (``build_service``: nonces in the database, revocation
from the sandbox issuer's CRL kept by the service), loads a small population, registers one
virtual card, signs ``--checks`` nonces before profiling, then profiles the checks alone, in
batches of ``--batch`` (as the HTTP route's group commit hands them over under load; 1: one
transaction per check) and prints milliseconds per check and the top of the cumulative
profile. PostgreSQL runs on a
throwaway cluster with fsync on. Run it in a private namespace (the issuer responder binds
loopback)::

    .venv/bin/python tools/pcscd_manager.py isolate -- \
        .venv/bin/python tools/bench/profile_eligibility_check.py [--database postgresql]
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import pstats
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from mynakit.card.jpki import JpkiAp
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.ocsp_server import OcspServer
from mynakit.emulator.state import create_card, load_card, load_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import card_respond
from mynakit.jpki.trust import TrustStore
from mynakit.services.eligibility.assembly import build_service
from mynakit.services.eligibility.codes import QualificationValidity
from mynakit.services.eligibility.core import decide_validity
from mynakit.services.eligibility.models import (
    CardCheckRequest,
    CheckResult,
    InsuranceCardQuery,
    PinAuthentication,
    RegistrationRequest,
)
from mynakit.services.eligibility.population import generate_population
from mynakit.services.eligibility.store import bulk_load
from mynakit.services.issuer_link.http import HttpIssuerLink
from mynakit.services.store import Database, sqlite_url
from mynakit.services.store.postgres_cluster import ThrowawayCluster
from mynakit.transport.in_process import InProcessConnection

CHECK_DAY = dt.date(2026, 12, 1)
INSTITUTION = "1312345678"
WARMUP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=300)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--batch", type=int, default=4, help="checks per transaction")
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    parser.add_argument("--no-profile", action="store_true", help="time without cProfile")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mynakit-profile-eligibility-"))
    with ExitStack() as stack:
        if args.database == "postgresql":
            cluster = stack.enter_context(ThrowawayCluster(durable=True))
            url = cluster.create_database("profile")
        else:
            url = sqlite_url(folder / "profile.sqlite3")
        database = Database.open(url, chains=["eligibility"])
        stack.callback(database.dispose)
        records = list(generate_population(args.records, seed="profile", reference_day=CHECK_DAY))
        bulk_load(database, records)
        person = next(
            record
            for record in records
            if record.personal_family.value == "1"
            and decide_validity([record], [record], CHECK_DAY)[0] is QualificationValidity.VALID
        )
        issuer = SandboxIssuer.create(folder / "issuer")
        create_card(folder / "cards", "profile", seed="profile", issuer=issuer)
        card = JpkiAp(
            ApduProtocol(
                InProcessConnection(load_card(folder / "cards", "profile")), extended_length=True
            )
        )
        pin = load_card_state(folder / "cards", "profile").persona.auth_pin
        responder = stack.enter_context(OcspServer(issuer))
        service = build_service(
            database,
            TrustStore().with_sandbox(issuer.directory),
            revocation="crl-cached",
            serial_link=HttpIssuerLink(responder.url),
        )
        query = InsuranceCardQuery(
            person.insurer_number,
            person.card_symbol,
            person.card_number,
            person.branch_number,
            person.birth_date,
        )
        service.register(
            RegistrationRequest(card_respond(card, service.begin_authentication(), pin), query)
        )
        requests = [
            CardCheckRequest(
                INSTITUTION,
                PinAuthentication(card_respond(card, service.begin_authentication(), pin)),
                confirmation_date=CHECK_DAY,
            )
            for _ in range(args.checks + WARMUP)
        ]
        for request in requests[:WARMUP]:
            if not service.check_by_card(request).accepted:
                raise SystemExit("a warm-up check was refused")
        timed = requests[WARMUP:]
        batches = [timed[start : start + args.batch] for start in range(0, len(timed), args.batch)]
        profile = cProfile.Profile()
        started = time.perf_counter()
        cpu_started = time.process_time()
        if not args.no_profile:
            profile.enable()
        answers = [answer for batch in batches for answer in service.check_by_card_batch(batch)]
        profile.disable()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    accepted = sum(isinstance(answer, CheckResult) and answer.accepted for answer in answers)
    print(
        f"{args.database}: {accepted}/{args.checks} checks accepted in batches of {args.batch}: "
        f"{elapsed / args.checks * 1000:.2f} ms per check, {cpu / args.checks * 1000:.2f} ms "
        f"of this process's CPU" + ("" if args.no_profile else " (under cProfile)")
    )
    if not args.no_profile:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
