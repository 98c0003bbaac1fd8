"""APDU and TLV encode/decode rates (issue: foundation).

Run: .venv/bin/python tools/bench/bench_apdu.py [--json]

Prints operations per second for the hot paths every card exchange takes; bounded to about
half a second per measurement.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from mynakit.iso7816 import tlv
from mynakit.iso7816.apdu import CommandApdu, ResponseApdu

SELECT = bytes.fromhex("00A4040C0AD392F000260100000001")
SIGN = CommandApdu(0x80, 0x2A, 0x00, 0x97, bytes(51), 256)
EXTENDED_READ = bytes.fromhex("00B08A00000000")
RESPONSE = bytes(256) + b"\x90\x00"
BASIC_INFO = tlv.encode(
    0xFF20,
    tlv.encode(0xDF21, bytes(8))
    + tlv.encode(0xDF22, "黒桐　幹也".encode())
    + tlv.encode(0xDF23, "東京都千代田区千代田１－１".encode())
    + tlv.encode(0xDF24, b"19800217")
    + tlv.encode(0xDF25, b"1"),
)


def rate(operation: Callable[[], object], seconds: float = 0.5) -> float:
    count = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(200):
            operation()
        count += 200
    return count / (time.perf_counter() - start)


def main() -> None:
    results = {
        "decode_select_per_second": rate(lambda: CommandApdu.decode(SELECT)),
        "decode_extended_read_per_second": rate(lambda: CommandApdu.decode(EXTENDED_READ)),
        "encode_sign_per_second": rate(SIGN.encode),
        "decode_response_256_per_second": rate(lambda: ResponseApdu.decode(RESPONSE)),
        "parse_basic_info_tlv_per_second": rate(
            lambda: tlv.parse_single(BASIC_INFO, 0xFF20).children()
        ),
    }
    if "--json" in sys.argv:
        print(json.dumps({key: round(value) for key, value in results.items()}, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:36s} {value:>12,.0f}")


if __name__ == "__main__":
    main()
