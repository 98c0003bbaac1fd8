"""pcscd for developing and testing with the virtual card (vpcd), outside pytest.

    .venv/bin/python tools/pcscd_manager.py status     # is pcscd up, with vpcd? which readers?
    .venv/bin/python tools/pcscd_manager.py run        # reuse it, or run one until Ctrl-C
    .venv/bin/python tools/pcscd_manager.py isolate -- CMD [ARGS...]   # CMD with its own pcscd

``run`` follows the same rules as the pcsc test tier (mynakit.emulator.pcsc_fixtures): one pcscd
per machine, reused when it has vpcd loaded, otherwise ``pcscd --foreground`` as our child,
stopped on exit; ``--install`` (as root) installs the Debian packages if they are missing.
``isolate`` runs CMD in a private mount + network namespace (its own empty /run/pcscd and
loopback, docs/testing.md §3.2) where the machine allows it, else as it is; inside, the first
program that needs pcscd starts one (``run`` in the background, the test suite, a benchmark), and
the machine's pcscd is never touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path

from mynakit.emulator.pcscd import (
    READER_CONF_DIR,
    VPCD_READER,
    PcscdSetupError,
    PcscdUnavailableError,
    ensure_pcscd,
    missing_packages,
    pcscd_arrangement,
    reexec_in_private_namespace,
    running_pcscd_readers,
    vpcd_configured,
)
from mynakit.transport.readers import list_readers


def status() -> int:
    print(f"arrangement: {pcscd_arrangement()}")
    missing = missing_packages()
    print(f"packages missing: {', '.join(missing) if missing else 'none'}")
    print(f"vpcd configured in {READER_CONF_DIR}: {'yes' if vpcd_configured() else 'no'}")
    readers = running_pcscd_readers()
    if readers is None:
        print("pcscd: not running")
        return 1
    print(f"pcscd: running, vpcd loaded: {'yes' if VPCD_READER in readers else 'no'}")
    for info in list_readers():
        card = f"card, ATR {info.atr_hex}" if info.card_present else "no card"
        print(f"  {info.name}: {card}")
    return 0 if VPCD_READER in readers else 1


def run(install: bool) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="mynakit-pcscd-"))
    try:
        session = ensure_pcscd(log_dir, allow_install=install)
    except (PcscdUnavailableError, PcscdSetupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not session.started_by_us:
        print(f"pcscd is already running with vpcd ({', '.join(session.readers)}); reusing it")
        return 0
    assert session.process is not None
    print(f"pcscd started (pid {session.process.pid}, log {session.log_path}); Ctrl-C stops it")
    finished = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda number, frame: finished.set())
    try:
        while not finished.wait(0.5):
            if session.process.poll() is not None:
                print(f"pcscd exited ({session.process.returncode}):\n{session.log_tail()}")
                return 1
    finally:
        session.stop()
    print("pcscd stopped")
    return 0


def isolate(command: list[str]) -> int:
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("error: isolate needs a command: isolate -- CMD [ARGS...]", file=sys.stderr)
        return 2
    executable = shutil.which(command[0])
    if executable is None:
        print(f"error: no such command: {command[0]}", file=sys.stderr)
        return 127
    reexec_in_private_namespace([executable, *command[1:]])
    # No namespace here (or one is in place already): run the command as it is.
    print(f"pcscd: {pcscd_arrangement()}", file=sys.stderr)
    os.execv(executable, [executable, *command[1:]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="report pcscd, vpcd and the readers")
    run_parser = commands.add_parser("run", help="reuse pcscd or run one in the foreground")
    run_parser.add_argument(
        "--install", action="store_true", help="apt-get install missing packages (root only)"
    )
    isolate_parser = commands.add_parser(
        "isolate", help="run a command in a private namespace with its own pcscd, where possible"
    )
    isolate_parser.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    arguments = parser.parse_args()
    if arguments.command == "status":
        return status()
    if arguments.command == "isolate":
        return isolate(arguments.cmd)
    return run(arguments.install)


if __name__ == "__main__":
    sys.exit(main())
