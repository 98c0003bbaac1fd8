"""PEM decoding time per input size: linear means the 4 MiB / 1 MiB ratio stays near 4.

Run: .venv/bin/python tools/bench/bench_pem.py [--json]

Compares mynakit.jpki.inputs.decode_pem with asn1crypto's unarmor (which the CMS loader used
before, and which slows down faster than the input grows) on the same PEM bodies, in one run.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from collections.abc import Callable

from asn1crypto import pem as asn1_pem

from mynakit.jpki.inputs import decode_pem

MIB = 1024 * 1024


def body(size: int) -> bytes:
    der = bytes(range(256)) * (size // 256)
    return b"-----BEGIN CMS-----\n" + base64.encodebytes(der) + b"-----END CMS-----\n"


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    results: dict[str, dict[str, float]] = {}
    for name, decoder in (
        ("mynakit decode_pem", lambda data: decode_pem(data)),
        ("asn1crypto unarmor", lambda data: asn1_pem.unarmor(data)),
    ):
        one = seconds(lambda: decoder(body(MIB)))  # noqa: B023 - used at once
        four = seconds(lambda: decoder(body(4 * MIB)))  # noqa: B023
        results[name] = {"1 MiB s": one, "4 MiB s": four, "ratio": four / one}
    if "--json" in sys.argv:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        print(
            f"{name:20} 1 MiB {figures['1 MiB s']:.3f} s, 4 MiB {figures['4 MiB s']:.3f} s, "
            f"ratio {figures['ratio']:.1f}"
        )


if __name__ == "__main__":
    main()
