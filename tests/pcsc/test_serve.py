"""``serve()``: a stored virtual card in pcscd until SIGINT/SIGTERM (``mynakit emulator serve``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mynakit.emulator.pcscd import VPCD_READER, PcscdSession, wait_for_empty_reader
from mynakit.emulator.state import create_card
from mynakit.transport.pcsc import PcscConnection
from mynakit.transport.readers import wait_for_card

pytestmark = pytest.mark.pcsc

SERVE = (
    "import sys; from pathlib import Path; from mynakit.emulator.vpcd import serve; "
    "serve(sys.argv[1], Path(sys.argv[2]), announce=lambda line: print(line, flush=True))"
)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_serve_puts_the_stored_card_in_the_reader_until_a_signal(
    pcscd: PcscdSession, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    create_card(tmp_path, "alice", seed="serve-test")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "alice", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for_card(VPCD_READER, timeout=15).card_present
        with PcscConnection.open(VPCD_READER) as connection:
            select_jpki_ap = bytes.fromhex("00A4040C0AD392F000260100000001")
            assert connection.transmit(select_jpki_ap) == b"\x90\x00"
        process.send_signal(stop_signal)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "serving card 'alice' in reader 'Virtual PCD 00 00'" in stdout
    assert "removed" in stdout
    assert wait_for_empty_reader(VPCD_READER)


def test_serve_refuses_an_unknown_card(pcscd: PcscdSession, tmp_path: Path) -> None:
    from mynakit.emulator.vpcd import serve
    from mynakit.errors import UsageError

    with pytest.raises(UsageError, match="no virtual card named 'nobody'"):
        serve("nobody", tmp_path)


def test_cli_serve_then_card_info_through_pcscd(pcscd: PcscdSession, tmp_path: Path) -> None:
    """The whole user path: create, insert, serve, and any PC/SC client sees a My Number card."""
    mynakit = str(Path(sys.executable).with_name("mynakit"))
    environment = {"MYNAKIT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def run(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [mynakit, *arguments], env=environment, capture_output=True, text=True, timeout=60
        )

    assert run("emulator", "create", "bob", "--seed", "cli-serve").returncode == 0
    assert run("emulator", "insert", "bob").returncode == 0
    server = subprocess.Popen(
        [mynakit, "emulator", "serve"], env=environment, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for_card(VPCD_READER, timeout=15).card_present
        info = run("--json", "--reader", VPCD_READER, "card", "info")
        assert info.returncode == 0, info.stderr
        assert '"kind": "my_number_card"' in info.stdout
        server.send_signal(signal.SIGINT)
        _, stderr = server.communicate(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0, stderr
    assert "serving card 'bob'" in stderr
    assert wait_for_empty_reader(VPCD_READER)
