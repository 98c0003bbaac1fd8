"""``mynakit terminal`` on a PC/SC reader: the virtual card in pcscd's vpcd reader, the
eligibility HTTP API on loopback, the holder at the console (PIN from stdin)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mynakit.cli.demo import SandboxCounter
from mynakit.emulator.pcscd import VPCD_READER, PcscdSession, card_in_virtual_reader

pytestmark = pytest.mark.pcsc


def test_terminal_command_runs_one_holder_through_pcscd(
    pcscd: PcscdSession, tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("mynakit")
    with SandboxCounter(tmp_path / "counter") as world:
        holder = world.new_holder("cli-terminal")
        # A request the receipt computer left while the terminal was off (docs/services.md §A.4).
        request = tmp_path / "oqs" / "req"
        request.mkdir(parents=True)
        (request / "OQSsiquc01req_20261201090000.xml").write_text(
            "<?xml version='1.0' encoding='UTF-8'?><XmlMsg><MessageHeader>"
            "<QualificationConfirmationDate>20261201</QualificationConfirmationDate>"
            f"<MedicalInstitutionCode>{world.institution_code}</MedicalInstitutionCode>"
            "</MessageHeader><MessageBody><QualificationConfirmSearchInfo>"
            f"<InsurerNumber>{holder.records[0].insurer_number}</InsurerNumber>"
            f"<InsuredCardSymbol>{holder.records[0].card_symbol}</InsuredCardSymbol>"
            f"<InsuredIdentificationNumber>{holder.records[0].card_number}"
            "</InsuredIdentificationNumber>"
            f"<InsuredBranchNumber>{holder.records[0].branch_number}</InsuredBranchNumber>"
            f"<Birthdate>{holder.records[0].birth_date:%Y%m%d}</Birthdate>"
            "</QualificationConfirmSearchInfo></MessageBody></XmlMsg>",
            encoding="utf-8",
        )
        with card_in_virtual_reader(holder.card) as bridge:
            process = subprocess.Popen(
                [
                    str(script),
                    "--json",
                    "--reader",
                    VPCD_READER,
                    "terminal",
                    "--url",
                    world.service_url,
                    "--institution",
                    world.institution_code,
                    "--oqs",
                    str(tmp_path / "oqs"),
                    "--consent",
                    "PharmacistsInfo",
                    "--pin-stdin",
                    "--once",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={"MYNAKIT_ELIGIBILITY_CREDENTIAL": str(world.credential), "PATH": ""},
            )
            assert process.stdin is not None and process.stderr is not None
            process.stdin.write(holder.persona.auth_pin + "\n")
            process.stdin.flush()
            progress = []
            for line in process.stderr:
                progress.append(line)
                if '"state": "waiting_for_removal"' in line:
                    bridge.remove_card()  # the holder takes the card
                    break
            stdout, rest = process.communicate(timeout=60)
            progress.append(rest)
    assert process.returncode == 0, "".join(progress)
    [visit] = json.loads(stdout)["visits"]
    assert visit["result"]["qualification_validity"] == "1"
    assert visit["result"]["consents"] == ["PharmacistsInfo"]
    assert visit["states"][-1] == "waiting_for_card"
    assert len(list((tmp_path / "oqs" / "face").glob("OQSsiquc01res_*.xml"))) == 1
    response = tmp_path / "oqs" / "res" / "OQSsiquc01res_20261201090000.xml"
    assert b"<QualificationValidity>1</QualificationValidity>" in response.read_bytes()
    output = stdout + "".join(progress)
    assert re.search(rf"(?<!\d){holder.persona.auth_pin}(?!\d)", output) is None
