"""``mynakit eligibility`` on the embedded database with an in-process virtual card: generate
and load records, register the card, check by card and by card data, consents, history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mynakit.emulator.state import load_card_state
from support.cli import invoke, ok_json

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    assert invoke(home, None, "emulator", "create", "alice", "--seed", "11").exit_code == 0
    return home


def test_counter_flow(home: Path, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'eligibility.sqlite3'}"
    generated = tmp_path / "population.csv"
    made = ok_json(invoke(home, None, "eligibility", "generate", "300", "-o", str(generated)))
    assert made["generated"] == 300
    loaded = ok_json(
        invoke(home, None, "eligibility", "load", str(generated), "--database", database)
    )
    assert loaded["loaded"] == 300
    # Loading the same file again is refused as a whole: nothing is added twice.
    again = invoke(home, None, "eligibility", "load", str(generated), "--database", database)
    assert again.exit_code == 2 and "already loaded" in again.error_line
    alice = {
        "person_key": "person-alice-01",
        "insurer_number": "138057",
        "insurer_name": "砂場区国民健康保険",
        "card_symbol": "",
        "card_number": "4242",
        "branch_number": "00",
        "personal_family": "1",
        "name": "見本 アリス",
        "name_kana": "ﾐﾎﾝ ｱﾘｽ",
        "birth_date": "1990-02-03",
        "sex1": "2",
        "qualification_date": "2021-04-01",
    }
    own = tmp_path / "alice.jsonl"
    own.write_text(json.dumps(alice, ensure_ascii=False) + "\n", encoding="utf-8")
    assert (
        ok_json(invoke(home, None, "eligibility", "load", str(own), "--database", database))[
            "loaded"
        ]
        == 1
    )
    insurers = ok_json(invoke(home, None, "eligibility", "insurers", "--database", database))
    assert sum(row["records"] for row in insurers["insurers"]) == 301

    persona = load_card_state(home / "cards", "alice").persona
    env = {"MYNAKIT_AUTH_PIN": persona.auth_pin, "MYNAKIT_BIRTH_DATE_CODE": persona.birth_date_code}
    card_data = ["--insurer", "138057", "--number", "4242", "--branch", "00", "--birth", "19900203"]
    registered = ok_json(
        invoke(home, "virtual:alice", "eligibility", "register", "--database", database,
               *card_data, "--enable-face", env=env)
    )  # fmt: skip
    assert registered["already_registered"] is False
    assert registered["face_confirmation_enrolled"] is True
    checked = ok_json(
        invoke(home, "virtual:alice", "eligibility", "check", "--database", database,
               "--consent", "medication", env=env)
    )  # fmt: skip
    body = checked["XmlMsg"]["MessageBody"]
    assert body["QualificationValidity"] == "1"
    entry = body["ResultList"][0]["ResultOfQualificationConfirmation"]
    assert entry["InsurerNumber"] == "00138057" and entry["PharmacistsInfoConsFlg"] == "1"
    check_id = checked["check"]["check_id"]
    consented = ok_json(
        invoke(home, None, "eligibility", "consents", check_id, "limit_certificate",
               "--database", database)
    )  # fmt: skip
    assert consented["XmlMsg"]["MessageBody"]["QualificationValidity"] == "1"
    by_data = ok_json(
        invoke(home, None, "eligibility", "check", "--database", database, *card_data)
    )
    assert by_data["XmlMsg"]["MessageHeader"]["ReferenceClassification"] == "2"
    visual = ok_json(
        invoke(home, "virtual:alice", "eligibility", "check", "--database", database,
               "--visual", "staff-1", env=env)
    )  # fmt: skip
    assert visual["XmlMsg"]["MessageBody"]["QualificationValidity"] == "1"
    assert visual["check"]["confirmation_method"] == "visual"
    history = ok_json(
        invoke(home, "virtual:alice", "eligibility", "history", "--database", database, env=env)
    )
    methods = [row["method"] for row in history["access_records"]]
    assert methods == ["pin", "pin", "insurance-card-data", "visual (confirmed by staff-1)"]
    mine = ok_json(
        invoke(home, "virtual:alice", "eligibility", "consents", "--mine", "--database", database,
               env=env)
    )  # fmt: skip
    assert {row["scope"] for row in mine["consents"]} == {"medication", "limit_certificate"}
    text = invoke(home, None, "eligibility", "check", "--database", database, *card_data,
                  as_json=False)  # fmt: skip
    assert text.exit_code == 0 and "有効" in text.stdout


def test_bad_input_is_one_line(home: Path, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'bad.sqlite3'}"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"person_key": "x"}\n', encoding="utf-8")
    result = invoke(home, None, "eligibility", "load", str(bad), "--database", database)
    assert result.exit_code == 2
    assert result.error_line.startswith("Error: line 1:")
    missing = invoke(home, None, "eligibility", "check", "--database", database, "--insurer", "1")
    assert missing.exit_code == 2 and "--insurer" in missing.error_line
