"""The pcscd lifecycle: a private namespace with a pcscd of its own where the machine allows it,
else one pcscd per machine, reused when it has vpcd, stopped only if ours (docs/testing.md §3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mynakit.emulator.pcscd import (
    NAMESPACE_ENV,
    NAMESPACE_MARK,
    VPCD_READER,
    PcscdSession,
    ensure_pcscd,
    in_private_namespace,
    namespace_wanted,
    pcscd_arrangement,
    private_namespace_command,
    private_namespace_possible,
    reexec_in_private_namespace,
)

pytestmark = pytest.mark.pcsc


def test_session_pcscd_lists_both_vpcd_readers(pcscd: PcscdSession) -> None:
    assert VPCD_READER in pcscd.readers
    assert "Virtual PCD 00 01" in pcscd.readers


def test_a_running_pcscd_is_reused_not_restarted(pcscd: PcscdSession, tmp_path: Path) -> None:
    again = ensure_pcscd(tmp_path)
    assert not again.started_by_us
    assert again.process is None
    assert VPCD_READER in again.readers
    again.stop()  # stopping a reused pcscd must leave it running
    assert VPCD_READER in ensure_pcscd(tmp_path).readers


def test_a_pcscd_we_started_runs_in_the_foreground_as_our_child(pcscd: PcscdSession) -> None:
    if not pcscd.started_by_us:
        pytest.skip("this session reused a pcscd that was already running")
    assert pcscd.process is not None and pcscd.process.poll() is None
    assert "--foreground" in pcscd.process.args  # type: ignore[operator]


# --- the private namespace (docs/testing.md §3.2) ------------------------------------------------


def test_where_a_namespace_can_be_made_the_tier_runs_in_one_with_its_own_pcscd(
    pcscd: PcscdSession,
) -> None:
    if not private_namespace_possible() or os.environ.get(NAMESPACE_ENV, "").lower() == "off":
        pytest.skip(f"no private namespace on this run: {pcscd_arrangement()}")
    assert in_private_namespace()
    assert os.path.ismount("/run/pcscd")
    # A fresh /run/pcscd holds no other pcscd's socket, so the session's pcscd is our own child.
    assert pcscd.started_by_us


PROBE = (
    "import os, socket\n"
    "from mynakit.emulator.pcscd import in_private_namespace\n"
    "print(os.path.ismount('/run/pcscd'), os.listdir('/run/pcscd'), in_private_namespace())\n"
    "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen()\n"
    "print(socket.create_connection(server.getsockname()).fileno() > 0)\n"
)


def test_a_wrapped_command_gets_an_empty_run_pcscd_and_a_working_loopback() -> None:
    command = private_namespace_command([sys.executable, "-c", PROBE])
    if command is None:
        pytest.skip("this machine cannot make a private namespace (not root, no user namespaces)")
    environment = {**os.environ, NAMESPACE_ENV: ""}
    result = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["True [] True", "True"]


def test_no_namespace_is_made_when_turned_off_or_already_in_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(NAMESPACE_ENV, "off")
    assert not namespace_wanted()
    reexec_in_private_namespace(["/bin/false"])  # returns: nothing to do
    monkeypatch.setenv(NAMESPACE_ENV, NAMESPACE_MARK)
    assert in_private_namespace()
    assert not namespace_wanted()
    assert pcscd_arrangement().startswith("private mount + network namespace")


def test_without_unshare_the_old_rule_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.delenv(NAMESPACE_ENV, raising=False)
    private_namespace_possible.cache_clear()
    try:
        assert private_namespace_command(["true"]) is None
        reexec_in_private_namespace(["/bin/false"])  # returns: falls back to reuse or start
    finally:
        private_namespace_possible.cache_clear()
