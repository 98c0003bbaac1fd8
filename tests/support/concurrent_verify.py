"""Child processes that each send one VERIFY to the same card at the same moment.

Every child first opens the card (in-process from its folder, or through pcscd) and selects the
JPKI AP, prints ``ready``, and waits for a line on stdin; only when every child is ready does
the test release them all. So each child holds the card open before any VERIFY is sent: a card
whose counters are not read-modify-written under a lock loses tries here, whatever the timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

JPKI_AID = "D392F000260100000001"  # docs/card.md §2

_OPEN_IN_PROCESS = """
from mynakit.emulator.state import load_card
card = load_card(sys.argv[1], sys.argv[2])
send = card.execute
"""
_OPEN_THROUGH_PCSCD = """
from mynakit.transport.pcsc import PcscConnection
connection = PcscConnection.open(sys.argv[1], exclusive=False)
send = connection.transmit
"""
_VERIFY = """
aid = bytes.fromhex(sys.argv[3])
assert send(bytes((0, 0xA4, 4, 0x0C, len(aid))) + aid) == b"\\x90\\x00"
wrong = sys.argv[4].encode()
print("ready", flush=True)
sys.stdin.readline()
# docs/card.md §7.6: VERIFY with the key's SFI (0x80 | 0x18, the auth PIN).
print(send(bytes((0, 0x20, 0, 0x98, len(wrong))) + wrong)[-2:].hex(), flush=True)
"""


def start_in_process(
    base: Path, name: str, wrong_pin: str, count: int
) -> list[subprocess.Popen[str]]:
    """``count`` children that open card ``name`` from ``base`` with ``load_card``."""
    script = "import sys\n" + _OPEN_IN_PROCESS + _VERIFY
    return [_start(script, [str(base), name, JPKI_AID, wrong_pin]) for _ in range(count)]


def start_through_pcscd(reader: str, wrong_pin: str, count: int) -> list[subprocess.Popen[str]]:
    """``count`` children that reach the card through pcscd (shared connections)."""
    script = "import sys\n" + _OPEN_THROUGH_PCSCD + _VERIFY
    return [_start(script, [reader, "-", JPKI_AID, wrong_pin]) for _ in range(count)]


def wait_until_ready(children: list[subprocess.Popen[str]]) -> None:
    for child in children:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        assert line == "ready", (line, child.stderr.read() if child.stderr else "")


def release(children: list[subprocess.Popen[str]]) -> list[str]:
    """Let every (ready) child send its VERIFY; the status words they were told, as hex."""
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    answers = []
    for child in children:
        output, errors = child.communicate(timeout=120)
        assert child.returncode == 0, errors
        answers.append(output.strip())
    return answers


def _start(script: str, arguments: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),  # the test's environment, PYTHONDONTWRITEBYTECODE included
    )
