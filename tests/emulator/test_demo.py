"""``mynakit demo``: the whole counter flow on the in-process virtual card (docs/services.md §A.2):
the terminal's states, the eligibility result, the files for the receipt computer
(docs/services.md §A.4), the revoked card refused; and never the PIN in the output."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from mynakit.emulator.personas import generate_persona
from support.cli import run_main

pytestmark = pytest.mark.emulator

SEED = "demo"


def _standalone(digits: str, text: str) -> bool:
    return re.search(rf"(?<!\d){re.escape(digits)}(?!\d)", text) is not None


def test_demo_runs_the_counter_flow_and_leaves_the_result_files(tmp_path: Path) -> None:
    result = run_main(["--json", "demo", "--home", str(tmp_path), "--seed", SEED])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    first, second = report["visits"]
    assert first["states"][-4:] == [
        "querying",
        "showing_result",
        "waiting_for_removal",
        "waiting_for_card",
    ]
    assert "entering_pin" in first["states"] and "taking_consents" in first["states"]
    # SELECT + token, one extended READ BINARY, retry query, VERIFY, signature
    # (docs/card.md §7.1-§7.7).
    assert first["apdus"] == 7
    assert report["result"]["qualification_validity"] == "1"
    assert report["result"]["consents"] == ["PharmacistsInfo", "SpecificHealthCheckupsInfo"]
    assert "certificate_revoked" in second["states"]
    assert report["revoked_card_refused"] is True

    face = Path(report["face_file"])
    response = Path(report["response_file"])
    assert face.parent == tmp_path / "oqs" / "face"
    assert response.parent == tmp_path / "oqs" / "res"
    for path in (face, response):
        root = ElementTree.fromstring(path.read_bytes())
        assert root.findtext("MessageHeader/SegmentOfResult") == "1"
        assert root.findtext("MessageBody/QualificationValidity") == "1"
    assert (
        ElementTree.fromstring(face.read_bytes()).findtext("MessageHeader/ReferenceClassification")
        == "1"
    )
    assert report["response_accepted"] is True

    # The holder's actual PIN appears nowhere: not in the report, not in the progress lines.
    pin = generate_persona(SEED).auth_pin
    assert not _standalone(pin, result.stdout)
    assert not _standalone(pin, result.stderr)


def test_demo_text_output_for_people(tmp_path: Path) -> None:
    result = run_main(["demo", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Revoked card refused: yes" in result.stdout
    assert f"Its response (res): {tmp_path}" in result.stdout
    assert "[entering_pin] 暗証番号（4桁）を入力してください" in result.stderr


def test_library_counter_resolves_the_card_through_mykey(tmp_path: Path) -> None:
    result = run_main(["--json", "demo", "--library", "--home", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["counter"] == "library"
    assert report["result"]["library_user_number"] == "L-2026-000123"
    assert report["result"]["assurance"] == "pin"
    assert "showing_result" in report["visits"][0]["states"]
    assert "taking_consents" not in report["visits"][0]["states"]  # no consents at a library
    assert "certificate_revoked" in report["visits"][1]["states"]
    assert "図書館カードを確認しました" in result.stderr


def test_kiosk_demo_serves_the_page(tmp_path: Path) -> None:
    import subprocess
    import sys
    import urllib.request

    script = Path(sys.executable).with_name("mynakit")
    process = subprocess.Popen(
        [str(script), "demo", "--kiosk", "--kiosk-seconds", "60", "--home", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Kiosk page: http://127.0.0.1:"), line
        url = line.removeprefix("Kiosk page: ").strip()
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Cache-Control"] == "no-store"
            assert "資格確認" in response.read().decode("utf-8")
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("reveal", [False, True])
def test_kiosk_demo_prints_the_pin_only_when_asked(tmp_path: Path, reveal: bool) -> None:
    arguments = ["demo", "--kiosk", "--kiosk-seconds", "0.2", "--home", str(tmp_path)]
    result = run_main([*arguments, "--reveal-pin"] if reveal else arguments)
    assert result.exit_code == 0, result.output
    pin = generate_persona(SEED).auth_pin
    assert not _standalone(pin, result.stdout)
    assert _standalone(pin, result.stderr) is reveal
    if not reveal:
        assert "start the demo with --reveal-pin to see it" in result.stderr
