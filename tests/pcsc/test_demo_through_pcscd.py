"""``mynakit demo --pcsc``: the same counter flow with the card in pcscd's vpcd reader, driven
by PC/SC card events (the terminal's CardMonitor)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mynakit.emulator.pcscd import PcscdSession
from mynakit.emulator.personas import generate_persona

pytestmark = pytest.mark.pcsc


def test_demo_through_pcscd(pcscd: PcscdSession, tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("mynakit")
    result = subprocess.run(
        [str(script), "--json", "demo", "--pcsc", "--home", str(tmp_path), "--seed", "pcsc-demo"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["reader"] == "Virtual PCD 00 00"
    assert report["result"]["qualification_validity"] == "1"
    assert report["revoked_card_refused"]
    assert Path(report["response_file"]).is_file()
    assert Path(report["face_file"]).is_file()
    pin = generate_persona("pcsc-demo").auth_pin
    for text in (result.stdout, result.stderr):
        assert re.search(rf"(?<!\d){pin}(?!\d)", text) is None
