"""``mynakit demo --pcsc``: the same flow with the card in pcscd's vpcd reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mynakit.emulator.pcscd import PcscdSession

pytestmark = pytest.mark.pcsc


def test_demo_through_pcscd(pcscd: PcscdSession, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("mynakit")
    result = subprocess.run(
        [str(script), "--json", "demo", "--pcsc", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reader"] == "Virtual PCD 00 00"
    assert report["authenticated"] and report["revoked_card_refused"]
