"""``mynakit jpki cert``, ``jpki pkey`` and ``pin`` against a persistent virtual card, through
``main()`` with ``--reader virtual:NAME`` and ``MYNAKIT_HOME`` in a temporary directory."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mynakit.card.errors import LastTryRefusedError, PinRequiredError, WrongPinError
from mynakit.card.jpki import digest_info
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import create_card, load_card_state
from mynakit.errors import UsageError
from mynakit.jpki.certificates import CertificateKind, parse_certificate
from support.cli import fails_with, invoke, ok_json

pytestmark = pytest.mark.emulator

# --reader values of the cards the fixtures below create (bob: ``own_card``, one per test).
ALICE = "virtual:alice"
PHONE = "virtual:phone"
BOB = "virtual:bob"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MYNAKIT_HOME with one plastic card and one smartphone token (read-only tests)."""
    directory = tmp_path_factory.mktemp("mynakit-home")
    create_card(directory / "cards", "alice", seed="cli-alice")
    create_card(directory / "cards", "phone", seed="cli-phone", profile="smartphone-jpki-token")
    return directory


@pytest.fixture(scope="module")
def alice(home: Path) -> Persona:
    return load_card_state(home / "cards", "alice").persona


def tries(home: Path, card: str) -> dict[tuple[str, int], int]:
    return {
        ref: record.tries_left for ref, record in load_card_state(home / "cards", card).pins.items()
    }


# -- jpki cert ------------------------------------------------------------------------------------


def test_auth_certificate_as_json(home: Path) -> None:
    data = ok_json(invoke(home, ALICE, "jpki", "cert", "-t", "auth"))
    serial = load_card_state(home / "cards", "alice").serials["auth"]
    assert data["kind"] == "auth" and data["serial"] == serial
    assert len(str(data["random_string"])) == 14 and len(str(data["terminal_code"])) == 9
    assert data["sandbox"] is True
    assert "basic_info" not in data


def test_auth_certificate_as_text_pem_and_der(home: Path, tmp_path: Path) -> None:
    text = invoke(home, ALICE, "jpki", "cert", as_json=False)
    assert text.exit_code == 0 and "random string:" in text.stdout
    pem = invoke(home, ALICE, "jpki", "cert", "-t", "auth", "-f", "pem", as_json=False)
    assert pem.stdout.startswith("-----BEGIN CERTIFICATE-----")
    target = tmp_path / "auth.der"
    written = ok_json(
        invoke(home, ALICE, "jpki", "cert", "-t", "auth", "-f", "der", "-o", str(target))
    )
    assert written["written"] == str(target)
    assert parse_certificate(target.read_bytes()).kind is CertificateKind.AUTH


@pytest.mark.parametrize(("kind", "expected"), [("auth_ca", "auth_ca"), ("sign-ca", "sign_ca")])
def test_ca_certificates(home: Path, kind: str, expected: str) -> None:
    assert ok_json(invoke(home, ALICE, "jpki", "cert", "-t", kind))["kind"] == expected


def test_sign_certificate_asks_for_the_password(home: Path, alice: Persona) -> None:
    env = {"MYNAKIT_SIGN_PASSWORD": alice.sign_password}
    hidden = ok_json(invoke(home, ALICE, "jpki", "cert", "-t", "sign", env=env))
    assert hidden["kind"] == "sign" and "basic_info" not in hidden
    shown = ok_json(invoke(home, ALICE, "jpki", "cert", "-t", "sign", "--show-personal", env=env))
    basic = shown["basic_info"]
    assert isinstance(basic, dict) and basic["name"] == alice.name
    piped = ok_json(
        invoke(
            home,
            ALICE,
            "jpki",
            "cert",
            "-t",
            "signature",
            "--pin-stdin",
            stdin=alice.sign_password + "\n",
        )
    )
    assert piped["serial"] == hidden["serial"]


def test_sign_certificate_without_a_password_source_spends_nothing(home: Path) -> None:
    before = tries(home, "alice")
    result = invoke(home, ALICE, "jpki", "cert", "-t", "sign")
    assert "MYNAKIT_SIGN_PASSWORD" in fails_with(result, UsageError)
    assert tries(home, "alice") == before


def test_smartphone_token_auth_certificate_needs_the_pin(home: Path) -> None:
    phone = load_card_state(home / "cards", "phone").persona
    refused = invoke(home, PHONE, "jpki", "cert", "-t", "auth")
    fails_with(refused, UsageError)  # no PIN source: nothing sent
    data = ok_json(
        invoke(home, PHONE, "jpki", "cert", "-t", "auth", env={"MYNAKIT_AUTH_PIN": phone.auth_pin})
    )
    assert data["kind"] == "auth"


# -- jpki pkey ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "variable"), [("auth", "MYNAKIT_AUTH_PIN"), ("sign", "MYNAKIT_SIGN_PASSWORD")]
)
def test_pkey_sign_then_verify(
    home: Path, alice: Persona, tmp_path: Path, key: str, variable: str
) -> None:
    secret = alice.auth_pin if key == "auth" else alice.sign_password
    document = tmp_path / "document.txt"
    document.write_bytes(b"an application form")
    signature = tmp_path / "document.sig"
    env = {variable: secret}
    signed = ok_json(
        invoke(
            home,
            ALICE,
            "jpki",
            "pkey",
            "sign",
            "-t",
            key,
            str(document),
            "-o",
            str(signature),
            env=env,
        )
    )
    assert signed["digest"] == "sha256" and signed["bytes"] == 256
    assert len(signature.read_bytes()) == 256
    verify_args = ["jpki", "pkey", "verify", "-t", key, str(document), str(signature)]
    verified = ok_json(invoke(home, ALICE, *verify_args, env=env))
    assert verified == {"key": key, "valid": True, "digest": "sha256"}
    document.write_bytes(b"an application form, altered")
    altered = invoke(home, ALICE, *verify_args, env=env)
    assert altered.exit_code == 7
    assert json.loads(altered.stdout)["result"]["valid"] is False


def test_pkey_sign_raw_digest_info_and_sha512(home: Path, alice: Persona, tmp_path: Path) -> None:
    env = {"MYNAKIT_AUTH_PIN": alice.auth_pin}
    document = tmp_path / "data.bin"
    document.write_bytes(b"challenge")
    sha512 = ok_json(
        invoke(
            home,
            ALICE,
            "jpki",
            "pkey",
            "sign",
            "-t",
            "auth",
            "-d",
            "sha512",
            str(document),
            env=env,
        )
    )
    assert sha512["digest"] == "sha512"
    prebuilt = tmp_path / "digest_info.der"
    prebuilt.write_bytes(digest_info("sha256", hashlib.sha256(b"challenge").digest()))
    raw = ok_json(
        invoke(home, ALICE, "jpki", "pkey", "sign", "-t", "auth", "--raw", str(prebuilt), env=env)
    )
    hashed = ok_json(
        invoke(home, ALICE, "jpki", "pkey", "sign", "-t", "auth", str(document), env=env)
    )
    assert raw["signature"] == hashed["signature"]  # PKCS#1 v1.5 is deterministic
    signature = tmp_path / "raw.sig"
    signature.write_bytes(bytes.fromhex(str(raw["signature"])))
    check = ok_json(
        invoke(
            home,
            ALICE,
            "jpki",
            "pkey",
            "verify",
            "-t",
            "auth",
            "--raw",
            str(prebuilt),
            str(signature),
        )
    )
    assert check["valid"] is True


# -- pin ------------------------------------------------------------------------------------------


def test_pin_status_lists_every_key_and_spends_nothing(home: Path) -> None:
    before = tries(home, "alice")
    data = ok_json(invoke(home, ALICE, "pin", "status"))
    keys = data["keys"]
    assert isinstance(keys, list)
    found = {(item["application"], item["key_id"]) for item in keys}
    assert found == {
        ("jpki", "0018"),
        ("jpki", "001B"),
        ("text", "0011"),
        ("text", "0014"),
        ("text", "0015"),
        ("visual", "0013"),
        ("visual", "0012"),
        ("common", "001C"),
    }
    assert all(item["tries_left"] == item["max_tries"] for item in keys)
    assert tries(home, "alice") == before
    text = invoke(home, ALICE, "pin", "status", as_json=False)
    assert text.exit_code == 0 and "0018" in text.stdout and "3/3" in text.stdout


def test_pin_status_of_a_smartphone_token_has_only_the_jpki_keys(home: Path) -> None:
    data = ok_json(invoke(home, PHONE, "pin", "status"))
    card = data["card"]
    assert isinstance(card, dict) and card["kind"] == "smartphone_token_android"
    keys = data["keys"]
    assert isinstance(keys, list)
    assert {item["key_id"] for item in keys} == {"0018", "001B"}


@pytest.fixture
def own_card(tmp_path: Path) -> tuple[Path, Persona]:
    """A card of its own, for tests that spend or change PINs."""
    create_card(tmp_path / "cards", "bob", seed="cli-bob")
    return tmp_path, load_card_state(tmp_path / "cards", "bob").persona


def test_pin_change_from_environment_and_from_stdin(own_card: tuple[Path, Persona]) -> None:
    home, bob = own_card
    env = {"MYNAKIT_AUTH_PIN": bob.auth_pin, "MYNAKIT_NEW_PIN": "2468"}
    changed = ok_json(invoke(home, BOB, "pin", "change", "auth", env=env))
    assert changed["changed"] is True and changed["key_id"] == "0018"
    state = load_card_state(home / "cards", "bob")
    assert state.pins[("jpki", 0x18)].value == b"2468"
    ok_json(
        invoke(home, BOB, "pin", "change", "text", "--pin-stdin", stdin=f"{bob.text_pin}\n1357\n")
    )
    assert load_card_state(home / "cards", "bob").pins[("text", 0x11)].value == b"1357"
    ok_json(
        invoke(
            home,
            BOB,
            "pin",
            "change",
            "card",
            env={"MYNAKIT_CARD_PIN": bob.card_pin, "MYNAKIT_NEW_PIN": "8642"},
        )
    )
    assert load_card_state(home / "cards", "bob").pins[("common", 0x1C)].value == b"8642"


def test_pin_change_with_a_wrong_current_pin(own_card: tuple[Path, Persona]) -> None:
    home, bob = own_card
    wrong = "0000" if bob.auth_pin != "0000" else "1111"
    result = invoke(
        home,
        BOB,
        "pin",
        "change",
        "auth",
        env={"MYNAKIT_AUTH_PIN": wrong, "MYNAKIT_NEW_PIN": "2468"},
    )
    line = fails_with(result, WrongPinError)
    assert "2 tries left" in line
    assert wrong not in result.output


def test_cli_refuses_the_last_try_without_force(
    own_card: tuple[Path, Persona], tmp_path: Path
) -> None:
    home, bob = own_card
    state = load_card_state(home / "cards", "bob")
    state.pins[("jpki", 0x18)].tries_left = 1
    state.save_pins()
    document = tmp_path / "challenge"
    document.write_bytes(b"nonce")
    env = {"MYNAKIT_AUTH_PIN": bob.auth_pin}
    refused = invoke(home, BOB, "jpki", "pkey", "sign", "-t", "auth", str(document), env=env)
    assert "only one try is left" in fails_with(refused, LastTryRefusedError)
    assert tries(home, "bob")[("jpki", 0x18)] == 1
    forced = invoke(
        home, BOB, "jpki", "pkey", "sign", "-t", "auth", "--force", str(document), env=env
    )
    assert forced.exit_code == 0
    assert tries(home, "bob")[("jpki", 0x18)] == 3


def test_sign_key_needs_its_password_not_the_auth_pin(
    own_card: tuple[Path, Persona], tmp_path: Path
) -> None:
    home, bob = own_card
    document = tmp_path / "doc"
    document.write_bytes(b"doc")
    result = invoke(
        home,
        BOB,
        "jpki",
        "pkey",
        "sign",
        "-t",
        "sign",
        str(document),
        env={"MYNAKIT_AUTH_PIN": bob.auth_pin},
    )
    fails_with(result, UsageError, PinRequiredError)
