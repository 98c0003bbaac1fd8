#!/usr/bin/env python3
"""Fuzz the relying side's certificate parsing and path validation with seeded mutants.

    .venv/bin/python tools/fuzz_certificates.py --count 100000 [--seed 1] [--save-escapes DIR]

Mutants of the bundled J-LIS roots and sandbox-issued certificates (tests/support/certificates)
go through parsing, every accessor, trust-anchor loading and path validation
(tests/support/certificate_fuzz.py). Prints the inputs and the outcomes by error type; exits 1
if any error other than the library's documented ones (MynakitError) escaped. The test suite
runs the same harness with a bounded count (tests/unit/test_certificate_fuzz.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "tests"))

from support.certificate_fuzz import run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="mutants to try")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same mutants")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--save-escapes", type=Path, help="write escaping mutants here as DER")
    arguments = parser.parse_args()
    if arguments.count < 1:
        parser.error("--count must be positive")

    def progress(done: int) -> None:
        if done % 10_000 == 0:
            print(f"{done}/{arguments.count} mutants", file=sys.stderr)

    report = run(arguments.count, arguments.seed, progress=progress)
    if arguments.save_escapes is not None and report.escapes:
        arguments.save_escapes.mkdir(parents=True, exist_ok=True)
        for index, (_, mutant) in enumerate(report.escapes):
            (arguments.save_escapes / f"escape-{index:05d}.der").write_bytes(mutant)
    escaped = len(report.escapes)
    if arguments.json:
        print(
            json.dumps(
                {
                    "inputs": report.inputs,
                    "seed": arguments.seed,
                    "outcomes": dict(report.outcomes.most_common()),
                    "escaped": escaped,
                },
                indent=2,
            )
        )
    else:
        print(f"inputs: {report.inputs} (seed {arguments.seed})")
        for outcome, count in report.outcomes.most_common():
            print(f"  {count:7d}  {outcome}")
        print(f"escaped: {escaped}")
        for error, _ in report.escapes[:10]:
            print(f"  {error}")
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main())
