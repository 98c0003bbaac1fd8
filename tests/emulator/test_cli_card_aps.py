"""``mynakit text``, ``visual`` and ``common`` against a persistent virtual card, through click's
``main()`` with ``--reader virtual:NAME`` and ``MYNAKIT_HOME`` in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynakit.card.errors import PinRequiredError
from mynakit.card.visual import JP2_SIGNATURE, PNG_SIGNATURE
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card_state
from mynakit.errors import UsageError
from support.cli import fails_with, invoke, ok_json

pytestmark = pytest.mark.emulator

READER = "virtual:carol"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mynakit-home")
    create_card(directory / "cards", "carol", seed="cli-carol")
    return directory


@pytest.fixture(scope="module")
def carol(home: Path) -> Persona:
    return load_card_state(home / "cards", "carol").persona


@pytest.fixture(scope="module")
def pins(carol: Persona) -> dict[str, str]:
    return {
        "MYNAKIT_TEXT_PIN": carol.text_pin,
        "MYNAKIT_CHECK_CODE_A": carol.check_code_a,
        "MYNAKIT_CHECK_CODE_B": carol.check_code_b,
    }


# -- text -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", ["pin", "a"])
def test_text_mynumber(home: Path, carol: Persona, pins: dict[str, str], credential: str) -> None:
    data = ok_json(invoke(home, READER, "text", "mynumber", "-c", credential, env=pins))
    assert data == {"my_number": carol.my_number}


def test_text_mynumber_plain_output(home: Path, carol: Persona, pins: dict[str, str]) -> None:
    result = invoke(home, READER, "text", "mynumber", env=pins, as_json=False)
    assert result.exit_code == 0 and result.stdout.strip() == carol.my_number


@pytest.mark.parametrize(("command", "credential"), [("basic-info", "pin"), ("attrs", "b")])
def test_text_basic_info(
    home: Path, carol: Persona, pins: dict[str, str], command: str, credential: str
) -> None:
    data = ok_json(invoke(home, READER, "text", command, "-c", credential, env=pins))
    assert data["name"] == carol.name
    assert data["address"] == carol.address
    assert data["birth_date"] == carol.birth_date.isoformat()
    assert data["sex"] == carol.sex.value


def test_text_credential_not_allowed_for_the_file(home: Path, pins: dict[str, str]) -> None:
    result = invoke(home, READER, "text", "basic-info", "-c", "a", env=pins)
    assert result.exit_code == 2  # click refuses the choice: A does not open EF 0002


def test_text_without_a_pin_source_is_a_usage_error(home: Path) -> None:
    result = invoke(home, READER, "text", "mynumber")
    assert "MYNAKIT_TEXT_PIN" in fails_with(result, UsageError)


def test_text_info(home: Path) -> None:
    data = ok_json(invoke(home, READER, "text", "info"))
    assert data["spec_version"] == 1 and data["extended_length"] == 3
    assert str(data["certificate_issuer_key_id"]).startswith("39303030303333")  # "9000033"


@pytest.mark.parametrize(("credential", "basic_checked"), [("pin", True), ("a", None), ("b", True)])
def test_text_verify(
    home: Path, pins: dict[str, str], credential: str, basic_checked: bool | None
) -> None:
    data = ok_json(invoke(home, READER, "text", "verify", "-c", credential, env=pins))
    assert data["ok"] is True and data["signature_valid"] is True
    assert data["chain_verified"] is True  # the virtual card's sandbox card-CA key
    assert data["basic_info_digest_matches"] is basic_checked
    text = invoke(home, READER, "text", "verify", "-c", credential, env=pins, as_json=False)
    assert text.exit_code == 0 and "signature: valid" in text.stdout


# -- visual ---------------------------------------------------------------------------------------


def test_visual_info(home: Path, carol: Persona) -> None:
    data = ok_json(invoke(home, READER, "visual", "info"))
    assert data["municipality_code"] == carol.municipality_code
    assert data["ap_id"] == "06030E01"


@pytest.mark.parametrize("credential", ["pin", "a", "b"])
def test_visual_entries(
    home: Path, carol: Persona, pins: dict[str, str], credential: str, tmp_path: Path
) -> None:
    data = ok_json(
        invoke(home, READER, "visual", "entries", "-c", credential, "-o", str(tmp_path), env=pins)
    )
    assert data["birth_date"] == carol.birth_date.isoformat()
    assert data["expiry_date"] == carol.card_expiry.isoformat()
    assert data["sex"] == carol.sex.value
    signature = data["signature"]
    assert isinstance(signature, dict)
    assert signature["signature_valid"] is True and signature["chain_verified"] is True
    images = data["images"]
    assert isinstance(images, dict) and images["photo.jp2"]["format"] == "jp2"
    assert (tmp_path / "photo.jp2").read_bytes().startswith(JP2_SIGNATURE)
    assert (tmp_path / "name.png").read_bytes().startswith(PNG_SIGNATURE)


def test_visual_photo_and_images_to_files(home: Path, pins: dict[str, str], tmp_path: Path) -> None:
    photo = tmp_path / "face.jp2"
    data = ok_json(invoke(home, READER, "visual", "photo", "-o", str(photo), env=pins))
    assert data["format"] == "jp2" and photo.read_bytes().startswith(JP2_SIGNATURE)
    for command in ("name", "address", "addr", "security-code"):
        target = tmp_path / f"{command}.png"
        ok_json(invoke(home, READER, "visual", command, "-c", "b", "-o", str(target), env=pins))
        assert target.read_bytes().startswith(PNG_SIGNATURE)


def test_visual_image_to_stdout(home: Path, pins: dict[str, str]) -> None:
    result = invoke(home, READER, "visual", "name", "-c", "a", "-o", "-", env=pins, as_json=False)
    assert result.exit_code == 0 and result.stdout_bytes.startswith(PNG_SIGNATURE)


def test_visual_birth_and_sex(home: Path, carol: Persona, pins: dict[str, str]) -> None:
    birth = ok_json(invoke(home, READER, "visual", "birth", "-c", "b", env=pins))
    assert birth["birth_date"] == carol.birth_date.isoformat()
    sex = invoke(home, READER, "visual", "sex", "-c", "a", env=pins, as_json=False)
    assert sex.exit_code == 0 and sex.stdout.strip() == carol.sex.value


def test_visual_without_a_check_code_source(home: Path) -> None:
    result = invoke(home, READER, "visual", "birth", "-c", "b")
    fails_with(result, UsageError, PinRequiredError)


# -- common ---------------------------------------------------------------------------------------


def test_common_info_and_manufacture(home: Path, carol: Persona) -> None:
    data = ok_json(invoke(home, READER, "common", "info"))
    assert data["serial"] == carol.card_serial
    assert data["municipality_code"] == carol.municipality_code
    assert data["expiry_date"] == carol.card_expiry.isoformat()
    manufacture = invoke(home, READER, "common", "manufacture", as_json=False)
    assert manufacture.exit_code == 0
    assert manufacture.stdout.strip() == carol.card_serial[2:15]
