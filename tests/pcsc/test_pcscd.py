"""The pcscd lifecycle: one pcscd per machine, reused when it has vpcd, stopped only if ours."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynakit.emulator.pcscd import VPCD_READER, PcscdSession, ensure_pcscd

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
