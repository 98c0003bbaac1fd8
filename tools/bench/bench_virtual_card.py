"""Throughput of the virtual card, in-process and through pcscd + vpcd.

    .venv/bin/python tools/bench/bench_virtual_card.py [--seconds 1.5] [--json]

(a) APDUs per second: a SELECT EF 0006 + READ BINARY of the 32-byte token loop on the JPKI AP
    (docs/card.md §7.1), in-process (``InProcessConnection``) and through pcscd (pyscard
    ``SCardTransmit`` via ``PcscConnection`` to the card served by ``VpcdBridge``), and the ratio.
(b) Signatures per second: ``80 2A`` with the authentication key after one VERIFY of the auth
    PIN (docs/card.md §7.7), by ``JpkiAp.sign``, both ways; 2048-bit RSA in the card dominates.
(c) Full authentications per second: one ``JpkiAp.open`` (SELECT AP + token read) and
    ``card_respond`` (PIN retry query, VERIFY, sign the nonce, read the certificate) per
    operation, as ``mynakit jpki auth`` does; timed once for the card side alone and once with
    the relying side too (``Authenticator.begin`` + ``complete``: signature, chain to the sandbox
    root, validity; revocation is not checked, ``revocation="none"``, so no OCSP/CRL fetch is
    timed). Both in-process and through pcscd.

pcscd is reused when one with vpcd runs; otherwise one is started here and stopped at the end.
Each measurement runs for ``--seconds`` (default 1.5 s); the whole script takes under a minute.
Every VERIFY uses the right PIN, so the counters never go down.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mynakit.card.jpki import JpkiAp, digest_info
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.pcscd import (
    VPCD_READER,
    card_in_virtual_reader,
    ensure_pcscd,
    pcscd_arrangement,
    reexec_in_private_namespace,
)
from mynakit.emulator.state import new_virtual_card
from mynakit.errors import MynakitError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import Authenticator, card_respond
from mynakit.jpki.trust import TrustStore
from mynakit.transport.base import Connection
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.pcsc import PcscConnection

SELECT_JPKI_AP = bytes.fromhex("00A4040C0AD392F000260100000001")  # docs/card.md §7.1
SELECT_TOKEN_EF = bytes.fromhex("00A4020C020006")
READ_TOKEN = bytes.fromhex("00B0000020")
SUCCESS = b"\x90\x00"
BENCH_SEED = "bench-virtual-card"
SIGNED_DIGEST_INFO = digest_info("sha256", hashlib.sha256(b"mynakit benchmark").digest())
MAX_SECONDS = 5.0  # keeps the whole script bounded whatever --seconds asks


class BenchmarkError(MynakitError):
    """The virtual card did not answer as expected: the figures would be meaningless."""


@dataclass(frozen=True)
class Rate:
    units: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.units / self.seconds


def measure(operation: Callable[[], int], seconds: float) -> Rate:
    """Run ``operation`` (returning how many units it did) until ``seconds`` have passed."""
    operation()  # warm-up: imports, first-use caches, pcscd's first transmit
    units = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        units += operation()
    return Rate(units, time.perf_counter() - started)


def apdu_loop(connection: Connection) -> Callable[[], int]:
    if connection.transmit(SELECT_JPKI_AP) != SUCCESS:
        raise BenchmarkError("SELECT of the JPKI AP failed")

    def select_and_read() -> int:
        if connection.transmit(SELECT_TOKEN_EF) != SUCCESS:
            raise BenchmarkError("SELECT EF 0006 failed")
        if connection.transmit(READ_TOKEN)[-2:] != SUCCESS:
            raise BenchmarkError("READ BINARY of the token failed")
        return 2

    return select_and_read


def protocol_for(connection: Connection) -> ApduProtocol:
    return ApduProtocol(connection, extended_length=connection.extended_length)


def signature_loop(connection: Connection, auth_pin: str) -> Callable[[], int]:
    session = JpkiAp.open(protocol_for(connection))
    session.verify_auth_pin(auth_pin)

    def sign() -> int:
        session.sign("auth", SIGNED_DIGEST_INFO)
        return 1

    return sign


def authentication_loop(
    connection: Connection, auth_pin: str, authenticator: Authenticator, *, relying_side: bool
) -> Callable[[], int]:
    protocol = protocol_for(connection)

    def authenticate() -> int:
        challenge = authenticator.begin()
        session = JpkiAp.open(protocol)
        response = card_respond(session, challenge, auth_pin)
        if relying_side:
            authenticator.complete(
                response.challenge_id,
                response.signature,
                response.certificate_der,
                hash_algorithm=response.hash_algorithm,
            )
        return 1

    return authenticate


def run_suite(
    connection: Connection, card: VirtualCard, authenticator: Authenticator, seconds: float
) -> dict[str, Rate]:
    auth_pin = card.state.persona.auth_pin
    return {
        "apdus": measure(apdu_loop(connection), seconds),
        "signatures": measure(signature_loop(connection, auth_pin), seconds),
        "authentications_card_side": measure(
            authentication_loop(connection, auth_pin, authenticator, relying_side=False), seconds
        ),
        "authentications_with_relying_side": measure(
            authentication_loop(connection, auth_pin, authenticator, relying_side=True), seconds
        ),
    }


@contextmanager
def pcscd_connection(card: VirtualCard, work: Path) -> Iterator[PcscConnection]:
    """The card in ``Virtual PCD 00 00`` and a connection to it; pcscd stopped only if started."""
    session = ensure_pcscd(work / "pcscd")
    try:
        with card_in_virtual_reader(card), PcscConnection.open(VPCD_READER) as connection:
            yield connection
    finally:
        session.stop()


def counters_full(card: VirtualCard) -> bool:
    return all(record.tries_left == record.max_tries for record in card.state.pins.values())


LABELS = {
    "apdus": ("APDUs/s (SELECT + READ BINARY)", "{:,.0f}"),
    "signatures": ("signatures/s (80 2A, auth key)", "{:,.1f}"),
    "authentications_card_side": ("authentications/s, card side", "{:,.1f}"),
    "authentications_with_relying_side": ("authentications/s, + relying side", "{:,.1f}"),
}


def render_table(in_process: dict[str, Rate], through_pcscd: dict[str, Rate]) -> str:
    lines = [f"{'measurement':38s} {'in-process':>12s} {'pcscd+vpcd':>12s} {'ratio':>8s}"]
    for key, (label, number) in LABELS.items():
        local, remote = in_process[key].per_second, through_pcscd[key].per_second
        lines.append(
            f"{label:38s} {number.format(local):>12s} {number.format(remote):>12s} "
            f"{local / remote:>7.1f}x"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args()
    # Its own pcscd in a private namespace where the machine allows it (docs/testing.md §3.2).
    reexec_in_private_namespace([sys.executable, *sys.argv])
    print(f"pcscd: {pcscd_arrangement()}", file=sys.stderr)
    seconds = min(max(arguments.seconds, 0.1), MAX_SECONDS)

    work = Path(tempfile.mkdtemp(prefix="mynakit-bench-"))
    issuer = SandboxIssuer.create(work / "issuer")
    card = new_virtual_card(issuer, seed=BENCH_SEED)
    authenticator = Authenticator(TrustStore.jlis().with_sandbox(issuer), revocation="none")

    in_process = run_suite(InProcessConnection(card), card, authenticator, seconds)
    with pcscd_connection(card, work) as connection:
        through_pcscd = run_suite(connection, card, authenticator, seconds)
    if not counters_full(card):
        raise BenchmarkError("a PIN counter went down during the benchmark")

    if arguments.json:
        report = {
            "seconds_per_measurement": seconds,
            "revocation_checked": False,
            **{
                key: {
                    "in_process_per_second": round(in_process[key].per_second, 1),
                    "pcscd_per_second": round(through_pcscd[key].per_second, 1),
                    "ratio": round(in_process[key].per_second / through_pcscd[key].per_second, 2),
                }
                for key in LABELS
            },
        }
        print(json.dumps(report, indent=2))
    else:
        print(render_table(in_process, through_pcscd))
        print(
            f"({seconds:g} s per measurement; relying side: signature, chain and validity, "
            "revocation not checked)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
