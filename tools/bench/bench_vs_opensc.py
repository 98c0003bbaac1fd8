"""mynakit against OpenSC on the same virtual card, in ``Virtual PCD 00 00`` through pcscd.

    .venv/bin/python tools/bench/bench_vs_opensc.py [--runs 7] [--json]

(a) APDU counts (deterministic). mynakit's are read from ``TracingConnection.counter`` (in one
    process, through ``PcscConnection``); every count, mynakit's and OpenSC's, is also taken on
    the card side: the card served to vpcd is wrapped so that it counts the APDUs it executes
    while one whole process (``mynakit ...``, ``pkcs15-tool ...``, ``pkcs11-tool ...``) runs.
    OpenSC's count is given for the whole process (it probes other drivers' AIDs first) and
    "after card detection", from its first SELECT of the JPKI AP on. Two operations:
    - reading the user-authentication certificate (``pkcs15-tool --read-certificate 01``);
    - a full authentication: token check, PIN status, VERIFY, signature, certificate.
      mynakit: ``JpkiAp.open`` + ``card_respond`` (what ``mynakit jpki auth`` sends). OpenSC:
      ``pkcs11-tool --login --sign --mechanism SHA256-RSA-PKCS --id 01``, whose PKCS#15 bind
      checks the token and both PIN counters and reads the certificates before it signs.
    jpki/myna's published sequence (docs/card.md §7.2) is a documented constant:
    SELECT AP, SELECT 0006, READ token, SELECT 000A, READ 7-byte header, then 256-byte chunks,
    ``5 + ceil((N - 7) / 256)`` APDUs for an N-byte certificate (N is this card's own).
(b) Wall time, median of ``--runs`` runs: mynakit's installed script against OpenSC's tools,
    each a whole process (interpreter start-up included), for reading the auth certificate and
    for signing with the auth key; and mynakit in one process (``PcscConnection`` + ``JpkiAp``,
    connect to disconnect), which is how integrators use it.

Fairness: mynakit's and OpenSC's runs of one operation alternate (A, B, A, B, ...), so a load
that comes and goes on a shared machine falls on both; and mynakit's source is compiled to
bytecode first, as an installed package is (with ``PYTHONDONTWRITEBYTECODE`` set, every process
would otherwise compile the modules it imports). The floor row times ``python -c "from
mynakit.transport.pyscard_binding import scard"``: the interpreter and pyscard's compiled PC/SC
extension loaded alone, what any Python program on a PC/SC reader pays before its own code runs
(``jpki cert`` and ``jpki pkey sign`` import no click, and none of pyscard's Python layer:
docs/architecture.md §10).

Targets (issue 8, same run): ``jpki cert`` at most 2.5x ``pkcs15-tool --read-certificate``,
``pkey sign`` at most 2.5x ``pkcs11-tool --sign``; the report says whether each holds.

PIN counters: only the right PIN is ever sent, and every signing run first checks that the
card's counter is full and stops the benchmark if a run failed, so no run can spend tries into
a block. pcscd is reused when one with vpcd runs, otherwise started here and stopped at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from mynakit.transport.pcsc import PcscConnection
from mynakit.transport.trace import TracingConnection

JPKI_AP_AID = bytes.fromhex("D392F000260100000001")  # docs/card.md §2
PKCS11_MODULE_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so",
    "/usr/lib/opensc-pkcs11.so",
)
AUTH_TOKEN_SLOT = "0"  # OpenSC: slot 0 is the auth PIN token, slot 1 the signature one
BENCH_SEED = "bench-vs-opensc"
MAX_RUNS = 25
TARGET_PROCESS_RATIO = 2.5  # issue 8: whole processes, mynakit / OpenSC, same run
IN_LIBRARY_RUNS_FACTOR = 3  # in-library runs are short: take more samples for a stable median

# jpki/myna's published sequence for reading a certificate (docs/card.md §7.1 + §7.2).
JPKI_MYNA_CERTIFICATE_SEQUENCE = (
    "00 A4 04 0C 0A D392F000260100000001  SELECT JPKI AP",
    "00 A4 02 0C 02 0006                  SELECT EF 0006 (token)",
    "00 B0 00 00 20                       READ BINARY the 32-byte token",
    "00 A4 02 0C 02 000A                  SELECT EF 000A (auth certificate)",
    "00 B0 00 00 07                       READ BINARY the 7-byte DER header",
    "00 B0 <offset> 00 (last: remainder)  READ BINARY 256-byte chunks from offset 7",
)
JPKI_MYNA_FIXED_APDUS = 5  # SELECT AP, SELECT 0006, READ token, SELECT 000A, READ header
JPKI_MYNA_HEADER_LENGTH = 7
SHORT_READ_CHUNK = 256


def jpki_myna_certificate_apdus(certificate_length: int) -> int:
    """APDUs jpki/myna sends to read an N-byte certificate (docs/card.md §7.2)."""
    remainder = max(certificate_length - JPKI_MYNA_HEADER_LENGTH, 0)
    return JPKI_MYNA_FIXED_APDUS + math.ceil(remainder / SHORT_READ_CHUNK)


class BenchmarkError(MynakitError):
    """A run failed or a PIN counter went down: stop before anything else is spent."""


# -- the card, counting what it executes ----------------------------------------------------------


@dataclass
class CountingCard:
    """The virtual card as vpcd sees it, counting every command APDU it executes.

    Only the header and whether the command selects the JPKI AP are kept, never the data
    (VERIFY carries the PIN; docs/architecture.md §6).
    """

    card: VirtualCard
    headers: list[bytes] = field(default_factory=list)
    jpki_ap_selections: list[int] = field(default_factory=list)

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def execute(self, command: bytes) -> bytes:
        if _selects_jpki_ap(command):
            self.jpki_ap_selections.append(len(self.headers))
        self.headers.append(bytes(command[:4]))
        return self.card.execute(command)

    def reset(self) -> None:
        self.card.reset()

    def power_up(self) -> None:
        self.card.power_up()

    def power_down(self) -> None:
        self.card.power_down()

    def clear(self) -> None:
        self.headers.clear()
        self.jpki_ap_selections.clear()

    @property
    def count(self) -> int:
        return len(self.headers)

    @property
    def count_after_detection(self) -> int:
        """APDUs from the first SELECT of the JPKI AP on (the driver has matched the card)."""
        if not self.jpki_ap_selections:
            return 0
        return self.count - self.jpki_ap_selections[0]


def _selects_jpki_ap(command: bytes) -> bool:
    # SELECT by DF name: INS A4, P1 04, Lc then the AID (ISO 7816-4 §11.2.2).
    return len(command) >= 5 + len(JPKI_AP_AID) and (
        command[1] == 0xA4 and command[2] == 0x04 and command[5 : 5 + command[4]] == JPKI_AP_AID
    )


def auth_pin_counter_full(card: VirtualCard) -> bool:
    record = card.state.pins[("jpki", 0x18)]
    return record.tries_left == record.max_tries


# -- the commands being compared ------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    mynakit: Path
    pkcs11_module: str
    work: Path
    auth_pin: str

    def mynakit_read_certificate(self) -> list[str]:
        target = self.work / "mynakit-auth.der"
        return [
            str(self.mynakit), "--reader", VPCD_READER,
            "jpki", "cert", "-t", "auth", "-f", "der", "-o", str(target),
        ]  # fmt: skip

    def mynakit_sign(self) -> list[str]:
        return [
            str(self.mynakit), "--reader", VPCD_READER,
            "jpki", "pkey", "sign", "-t", "auth", str(self.work / "challenge"),
            "-o", str(self.work / "mynakit.sig"),
        ]  # fmt: skip

    def mynakit_authenticate(self) -> list[str]:
        return [
            str(self.mynakit), "--reader", VPCD_READER, "--json",
            "jpki", "auth", "--revocation", "none",
        ]  # fmt: skip

    def opensc_read_certificate(self) -> list[str]:
        return ["pkcs15-tool", "--reader", VPCD_READER, "--read-certificate", "01"]

    def opensc_sign(self) -> list[str]:
        return [
            "pkcs11-tool", "--module", self.pkcs11_module, "--slot-index", AUTH_TOKEN_SLOT,
            "--login", "--pin", self.auth_pin,
            "--sign", "--mechanism", "SHA256-RSA-PKCS", "--id", "01",
            "-i", str(self.work / "challenge"), "-o", str(self.work / "opensc.sig"),
        ]  # fmt: skip

    def environment(self, *, with_pin: bool) -> dict[str, str]:
        environment = {**os.environ, "MYNAKIT_HOME": str(self.work)}
        if with_pin:
            environment["MYNAKIT_AUTH_PIN"] = self.auth_pin
        return environment


def describe(command: list[str], auth_pin: str) -> str:
    """The command line for the report, with the PIN masked."""
    return shlex.join("****" if part == auth_pin else part for part in command)


def run_process(command: list[str], environment: dict[str, str]) -> float:
    """Run one whole process; return its wall time in seconds. Fails loudly on any error."""
    started = time.perf_counter()
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkError(
            f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()[-400:]}"
        )
    return elapsed


def signing_guard(card: VirtualCard, run: Callable[[], float]) -> Callable[[], float]:
    """Refuse to run a signing command unless the auth PIN counter is full (see module doc)."""

    def guarded() -> float:
        if not auth_pin_counter_full(card):
            raise BenchmarkError("the auth PIN counter is not full: stopping before a block")
        elapsed = run()
        if not auth_pin_counter_full(card):
            raise BenchmarkError("a signing run spent a PIN try: stopping before a block")
        return elapsed

    return guarded


def median_seconds(run: Callable[[], float], runs: int) -> float:
    run()  # warm-up: page cache for the interpreter and the libraries, pcscd's first connect
    return statistics.median(run() for _ in range(runs))


def paired_median_seconds(
    first: Callable[[], float], second: Callable[[], float], runs: int
) -> tuple[float, float]:
    """Medians of ``first`` and ``second``, their runs alternating after one warm-up each."""
    first()
    second()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        samples[0].append(first())
        samples[1].append(second())
    return statistics.median(samples[0]), statistics.median(samples[1])


def compile_mynakit() -> None:
    """Write mynakit's bytecode, as installing a package does (see module doc)."""
    import compileall

    import mynakit

    compileall.compile_dir(Path(mynakit.__file__).parent, quiet=1)


# -- mynakit in one process -----------------------------------------------------------------------


def open_protocol(*, short_only: bool = False) -> tuple[TracingConnection, ApduProtocol]:
    """A traced connection to the virtual reader. ``short_only`` makes mynakit behave as with
    a reader that does not pass extended-length APDUs (vpcd does)."""
    connection = TracingConnection(PcscConnection.open(VPCD_READER))
    extended_length = False if short_only else connection.extended_length
    return connection, ApduProtocol(connection, extended_length=extended_length)


def library_read_certificate(*, short_only: bool = False) -> tuple[int, bytes]:
    """Connect, read the auth certificate, disconnect: (APDUs, certificate)."""
    connection, protocol = open_protocol(short_only=short_only)
    try:
        certificate = JpkiAp.open(protocol).read_certificate("auth")
        return len(connection.counter), certificate
    finally:
        connection.close()


def library_sign(auth_pin: str, digest_info_bytes: bytes) -> int:
    """Connect, VERIFY the auth PIN, sign a DigestInfo, disconnect: APDUs."""
    connection, protocol = open_protocol()
    try:
        session = JpkiAp.open(protocol)
        session.verify_auth_pin(auth_pin)
        session.sign("auth", digest_info_bytes)
        return len(connection.counter)
    finally:
        connection.close()


def library_authenticate(auth_pin: str, authenticator: Authenticator) -> int:
    """Token check, PIN status, VERIFY, sign, certificate (as ``mynakit jpki auth``): APDUs."""
    connection, protocol = open_protocol()
    try:
        challenge = authenticator.begin()
        card_respond(JpkiAp.open(protocol), challenge, auth_pin)
        return len(connection.counter)
    finally:
        connection.close()


def timed(operation: Callable[[], object]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        operation()
        return time.perf_counter() - started

    return run


# -- the benchmark --------------------------------------------------------------------------------


def find_pkcs11_module() -> str:
    for candidate in PKCS11_MODULE_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    raise BenchmarkError("OpenSC's PKCS#11 module is not installed: apt-get install opensc")


def count_process(card: CountingCard, run: Callable[[], float]) -> tuple[int, int]:
    card.clear()
    run()
    return card.count, card.count_after_detection


def benchmark(runs: int) -> dict[str, Any]:
    for tool in ("pkcs15-tool", "pkcs11-tool"):
        if shutil.which(tool) is None:
            raise BenchmarkError(f"{tool} is not installed: apt-get install opensc")
    mynakit_script = Path(sys.executable).with_name("mynakit")
    if not mynakit_script.exists():
        raise BenchmarkError(f"no installed mynakit script at {mynakit_script}: pip install -e .")

    work = Path(tempfile.mkdtemp(prefix="mynakit-bench-opensc-"))
    # The issuer lives in $MYNAKIT_HOME/issuer so that `mynakit jpki auth` finds it.
    issuer = SandboxIssuer.create(work / "issuer")
    virtual_card = new_virtual_card(issuer, seed=BENCH_SEED)
    card = CountingCard(virtual_card)
    auth_pin = virtual_card.state.persona.auth_pin
    challenge = b"nonce from the relying party"
    (work / "challenge").write_bytes(challenge)
    tools = Tools(mynakit_script, find_pkcs11_module(), work, auth_pin)
    authenticator = Authenticator(TrustStore.jlis().with_sandbox(issuer), revocation="none")
    digest_info_bytes = digest_info("sha256", hashlib.sha256(challenge).digest())

    def process(command: list[str], *, with_pin: bool = False) -> Callable[[], float]:
        return lambda: run_process(command, tools.environment(with_pin=with_pin))

    compile_mynakit()
    floor_command = [sys.executable, "-c", "from mynakit.transport.pyscard_binding import scard"]
    mynakit_read = process(tools.mynakit_read_certificate())
    opensc_read = process(tools.opensc_read_certificate())
    mynakit_sign = signing_guard(virtual_card, process(tools.mynakit_sign(), with_pin=True))
    opensc_sign = signing_guard(virtual_card, process(tools.opensc_sign()))

    session = ensure_pcscd(work / "pcscd")
    try:
        with card_in_virtual_reader(card):
            # (a) APDU counts.
            card.clear()
            library_read_count, certificate = library_read_certificate()
            library_read_card_count = card.count
            library_read_short_count, _ = library_read_certificate(short_only=True)
            card.clear()
            library_auth_count = library_authenticate(auth_pin, authenticator)
            library_auth_card_count = card.count
            if not auth_pin_counter_full(virtual_card):
                raise BenchmarkError("the in-library authentication spent a PIN try")
            counts = {
                "mynakit_process_read_certificate": count_process(card, mynakit_read),
                "opensc_read_certificate": count_process(card, opensc_read),
                "mynakit_process_sign": count_process(card, mynakit_sign),
                "opensc_sign": count_process(card, opensc_sign),
            }
            # `mynakit jpki auth` reads the PIN from MYNAKIT_AUTH_PIN like the other commands.
            auth_environment = tools.environment(with_pin=True)
            card.clear()
            signing_guard(
                virtual_card,
                lambda: run_process(tools.mynakit_authenticate(), auth_environment),
            )()
            counts["mynakit_process_authenticate"] = (card.count, card.count_after_detection)

            # (b) wall times.
            library_runs = runs * IN_LIBRARY_RUNS_FACTOR
            read_times = paired_median_seconds(mynakit_read, opensc_read, runs)
            sign_times = paired_median_seconds(mynakit_sign, opensc_sign, runs)
            times = {
                "mynakit_process_read_certificate": read_times[0],
                "opensc_read_certificate": read_times[1],
                "python_and_pyscard_floor": median_seconds(process(floor_command), runs),
                "mynakit_library_read_certificate": median_seconds(
                    timed(library_read_certificate), library_runs
                ),
                "mynakit_process_sign": sign_times[0],
                "opensc_sign": sign_times[1],
                "mynakit_library_sign": median_seconds(
                    signing_guard(
                        virtual_card, timed(lambda: library_sign(auth_pin, digest_info_bytes))
                    ),
                    library_runs,
                ),
            }
    finally:
        session.stop()
        shutil.rmtree(work, ignore_errors=True)

    return {
        "reader": VPCD_READER,
        "auth_certificate_bytes": len(certificate),
        "runs": runs,
        "in_library_runs": runs * IN_LIBRARY_RUNS_FACTOR,
        "apdus": {
            "read_auth_certificate": {
                "mynakit_library_trace_counter": library_read_count,
                "mynakit_library_card_side": library_read_card_count,
                "mynakit_library_short_apdus_only": library_read_short_count,
                "mynakit_process": counts["mynakit_process_read_certificate"][0],
                "opensc_pkcs15_tool_process": counts["opensc_read_certificate"][0],
                "opensc_pkcs15_tool_after_detection": counts["opensc_read_certificate"][1],
                "jpki_myna_published_sequence": jpki_myna_certificate_apdus(len(certificate)),
                "jpki_myna_sequence": list(JPKI_MYNA_CERTIFICATE_SEQUENCE),
            },
            "full_authentication": {
                "mynakit_library_trace_counter": library_auth_count,
                "mynakit_library_card_side": library_auth_card_count,
                "mynakit_process_jpki_auth": counts["mynakit_process_authenticate"][0],
                "opensc_pkcs11_tool_sign_process": counts["opensc_sign"][0],
                "opensc_pkcs11_tool_sign_after_detection": counts["opensc_sign"][1],
            },
            "sign_only_process": {
                "mynakit_pkey_sign_process": counts["mynakit_process_sign"][0],
                "opensc_pkcs11_tool_sign_process": counts["opensc_sign"][0],
            },
        },
        "median_seconds": {key: round(value, 4) for key, value in times.items()},
        "ratios_mynakit_to_opensc": {
            "read_certificate_process": round(
                times["mynakit_process_read_certificate"] / times["opensc_read_certificate"], 2
            ),
            "read_certificate_library": round(
                times["mynakit_library_read_certificate"] / times["opensc_read_certificate"], 3
            ),
            "floor_python_and_pyscard_to_read_certificate": round(
                times["python_and_pyscard_floor"] / times["opensc_read_certificate"], 2
            ),
            "sign_process": round(times["mynakit_process_sign"] / times["opensc_sign"], 2),
            "sign_library": round(times["mynakit_library_sign"] / times["opensc_sign"], 3),
        },
        "targets": {
            "process_ratio_at_most": TARGET_PROCESS_RATIO,
            "read_certificate_process_met": times["mynakit_process_read_certificate"]
            <= TARGET_PROCESS_RATIO * times["opensc_read_certificate"],
            "sign_process_met": times["mynakit_process_sign"]
            <= TARGET_PROCESS_RATIO * times["opensc_sign"],
        },
        "commands": {
            "mynakit_read_certificate": describe(tools.mynakit_read_certificate(), auth_pin),
            "opensc_read_certificate": describe(tools.opensc_read_certificate(), auth_pin),
            "mynakit_sign": "MYNAKIT_AUTH_PIN=**** " + describe(tools.mynakit_sign(), auth_pin),
            "opensc_sign": describe(tools.opensc_sign(), auth_pin),
            "python_and_pyscard_floor": describe(floor_command, auth_pin),
            "mynakit_authenticate": "MYNAKIT_AUTH_PIN=**** "
            + describe(tools.mynakit_authenticate(), auth_pin),
        },
    }


def render(report: dict[str, Any]) -> str:
    apdus = report["apdus"]
    read = apdus["read_auth_certificate"]
    auth = apdus["full_authentication"]
    times = report["median_seconds"]
    ratios = report["ratios_mynakit_to_opensc"]
    milliseconds = {key: value * 1000 for key, value in times.items()}
    lines = [
        f"Virtual card in {report['reader']!r}; auth certificate "
        f"{report['auth_certificate_bytes']} bytes",
        "",
        "APDUs to read the auth certificate",
        f"  mynakit, in-library (TracingConnection)    {read['mynakit_library_trace_counter']:>4}"
        f"   (card side {read['mynakit_library_card_side']})",
        f"  mynakit, in-library, short APDUs only      "
        f"{read['mynakit_library_short_apdus_only']:>4}",
        f"  mynakit jpki cert, whole process           {read['mynakit_process']:>4}",
        f"  OpenSC pkcs15-tool, whole process          {read['opensc_pkcs15_tool_process']:>4}",
        f"  OpenSC pkcs15-tool, after card detection   "
        f"{read['opensc_pkcs15_tool_after_detection']:>4}",
        f"  jpki/myna published sequence               {read['jpki_myna_published_sequence']:>4}"
        "   (5 + ceil((N-7)/256))",
        "APDUs for a full authentication (token, PIN status, VERIFY, sign, certificate)",
        f"  mynakit, in-library (TracingConnection)    {auth['mynakit_library_trace_counter']:>4}"
        f"   (card side {auth['mynakit_library_card_side']})",
        f"  mynakit jpki auth, whole process           {auth['mynakit_process_jpki_auth']:>4}",
        f"  OpenSC pkcs11-tool --sign, whole process   "
        f"{auth['opensc_pkcs11_tool_sign_process']:>4}",
        f"  OpenSC pkcs11-tool --sign, after detection "
        f"{auth['opensc_pkcs11_tool_sign_after_detection']:>4}",
        f"  (mynakit jpki pkey sign, whole process: "
        f"{apdus['sign_only_process']['mynakit_pkey_sign_process']})",
        "",
        f"Wall time, median of {report['runs']} processes "
        f"({report['in_library_runs']} in-library runs)",
        f"  {'':34s} {'mynakit':>10s} {'OpenSC':>10s} {'ratio':>8s}",
        f"  {'read auth certificate, processes':34s} "
        f"{milliseconds['mynakit_process_read_certificate']:>8.1f}ms "
        f"{milliseconds['opensc_read_certificate']:>8.1f}ms "
        f"{ratios['read_certificate_process']:>7.2f}x",
        f"  {'read auth certificate, in-library':34s} "
        f"{milliseconds['mynakit_library_read_certificate']:>8.1f}ms "
        f"{milliseconds['opensc_read_certificate']:>8.1f}ms "
        f"{ratios['read_certificate_library']:>7.3f}x",
        f"  {'floor: python + PC/SC extension':34s} "
        f"{milliseconds['python_and_pyscard_floor']:>8.1f}ms "
        f"{milliseconds['opensc_read_certificate']:>8.1f}ms "
        f"{ratios['floor_python_and_pyscard_to_read_certificate']:>7.2f}x",
        f"  {'sign (auth key), processes':34s} "
        f"{milliseconds['mynakit_process_sign']:>8.1f}ms "
        f"{milliseconds['opensc_sign']:>8.1f}ms "
        f"{ratios['sign_process']:>7.2f}x",
        f"  {'sign (auth key), in-library':34s} "
        f"{milliseconds['mynakit_library_sign']:>8.1f}ms "
        f"{milliseconds['opensc_sign']:>8.1f}ms "
        f"{ratios['sign_library']:>7.3f}x",
        "  (ratio = mynakit / OpenSC; OpenSC is always a whole process; in-library = connect,",
        "   JpkiAp.open, read or VERIFY + sign, disconnect, in this process)",
        f"Targets (whole processes, at most {TARGET_PROCESS_RATIO}x OpenSC, same run): "
        f"read {'met' if report['targets']['read_certificate_process_met'] else 'NOT met'}, "
        f"sign {'met' if report['targets']['sign_process_met'] else 'NOT met'}",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="processes per wall-time median")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args()
    # Its own pcscd in a private namespace where the machine allows it (docs/testing.md §3.2).
    reexec_in_private_namespace([sys.executable, *sys.argv])
    print(f"pcscd: {pcscd_arrangement()}", file=sys.stderr)
    runs = min(max(arguments.runs, 1), MAX_RUNS)
    report = benchmark(runs)
    print(json.dumps(report, indent=2) if arguments.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
