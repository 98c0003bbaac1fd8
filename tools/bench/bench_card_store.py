"""What the per-card lock costs: PIN commands on a card opened from its folder (flock, pins.json
re-read, and written after a change) against the same card held in memory only.

    .venv/bin/python tools/bench/bench_card_store.py [--rounds 2000] [--json]

Two loops, each timed on both cards in one run (so the machine's load cancels out in the
ratio): a PIN retry query (``00 20 00 98``: lock taken, pins.json re-read, nothing written,
docs/card.md §7.5), and a right VERIFY (lock, re-read, and two fsync'ed writes: the try spent
before the comparison, then the reset; the writes were there before the lock).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.state import create_card, load_card

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
RETRY_QUERY = bytes.fromhex("00200098")


def microseconds_per_command(card: VirtualCard, command: bytes, rounds: int) -> float:
    card.execute(SELECT_JPKI)
    start = time.perf_counter()
    for _ in range(rounds):
        if card.execute(command)[-2:] not in (b"\x90\x00", b"\x63\xc3"):
            raise SystemExit("unexpected answer: the benchmark must not spend tries")
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "cards"
        create_card(base, "bench", seed="bench")
        on_disk = load_card(base, "bench")
        in_memory = VirtualCard(on_disk.profile, on_disk.state.fork())
        pin = on_disk.state.persona.auth_pin.encode("ascii")
        verify = bytes((0x00, 0x20, 0x00, 0x98, len(pin))) + pin
        result: dict[str, float] = {}
        for label, command, rounds in (
            ("retry_query", RETRY_QUERY, options.rounds),
            ("verify", verify, max(options.rounds // 20, 10)),
        ):
            microseconds_per_command(on_disk, command, 10)  # warm-up
            stored = microseconds_per_command(on_disk, command, rounds)
            memory = microseconds_per_command(in_memory, command, rounds)
            result[f"{label}_stored_us"] = round(stored, 1)
            result[f"{label}_in_memory_us"] = round(memory, 1)
            result[f"{label}_ratio"] = round(stored / memory, 1)
    if options.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
