"""``mynakit demo``: the main job, end to end on the in-process virtual card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.cli import run_main

pytestmark = pytest.mark.emulator


def test_demo_authenticates_then_refuses_the_revoked_card(tmp_path: Path) -> None:
    result = run_main(["--json", "demo", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["authenticated"] is True
    assert report["revoked_card_refused"] is True
    steps = {step["step"]: step for step in report["steps"]}
    assert steps["identify card"]["apdus"] == 2  # SELECT AP + token (§7.1)
    assert steps["read authentication certificate"]["apdus"] == 1  # one extended READ BINARY
    assert steps["PIN status (no try spent)"]["tries_left"] == {"auth_pin": 3, "sign_password": 5}
    assert steps["relying party verified"]["revocation"] == "good (ocsp)"
    assert "revoked" in steps["after revocation"]["result"]
    # The PIN never reaches the output, even in JSON.
    assert 'auth_pin": "' not in result.stdout


def test_demo_text_output_for_people(tmp_path: Path) -> None:
    result = run_main(["demo", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "revoked card refused: yes" in result.stdout
    assert "The holder is asked for the 4-digit PIN" in result.stderr
