"""APDUs per second through pcscd + vpcd versus in-process, on the virtual card.

    .venv/bin/python tools/bench/bench_pcsc.py [--seconds 2]

Sends SELECT of the JPKI AP (protocol reference §7.1) in a loop for a fixed time over each
transport and prints the rate and the ratio. Bounded: a few seconds in all, plus start-up.
measured.md expects about 10,000 per second through pcscd with TCP_QUICKACK, 21 without.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mynakit.emulator.pcscd import VPCD_READER, card_in_virtual_reader, ensure_pcscd
from mynakit.emulator.state import create_card, load_card
from mynakit.transport.base import Connection
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.pcsc import PcscConnection

SELECT_JPKI_AP = bytes.fromhex("00A4040C0AD392F000260100000001")


def rate(connection: Connection, seconds: float) -> float:
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        if connection.transmit(SELECT_JPKI_AP) != b"\x90\x00":
            raise SystemExit("SELECT of the JPKI AP failed: the virtual card is not answering")
        count += 1
    return count / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per transport")
    seconds = min(parser.parse_args().seconds, 10.0)
    work = Path(tempfile.mkdtemp(prefix="mynakit-bench-"))
    create_card(work / "cards", "bench", seed="bench")
    session = ensure_pcscd(work / "pcscd")
    try:
        in_process = rate(InProcessConnection(load_card(work / "cards", "bench")), seconds)
        with (
            card_in_virtual_reader(load_card(work / "cards", "bench")),
            PcscConnection.open(VPCD_READER) as connection,
        ):
            through_pcscd = rate(connection, seconds)
    finally:
        session.stop()
    print(f"in-process:     {in_process:10.0f} APDUs/s")
    print(f"pcscd + vpcd:   {through_pcscd:10.0f} APDUs/s  ({1e6 / through_pcscd:.0f} µs each)")
    print(f"ratio:          {in_process / through_pcscd:10.1f}x slower through pcscd")
    return 0


if __name__ == "__main__":
    sys.exit(main())
