"""``mynakit mykey`` against the embedded platform (SQLite under the test's home) and a virtual
card in-process: every command with --json, secrets only from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from mynakit.emulator.state import load_card_state
from mynakit.errors import UsageError
from mynakit.services.errors import NotFoundError
from support.cli import fails_with, invoke, ok_json

pytestmark = pytest.mark.services

READER = "virtual:alice"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    ok_json(invoke(home, None, "emulator", "create", "alice"))
    return home


def test_the_whole_journey(home: Path) -> None:
    persona = load_card_state(home / "cards", "alice").persona
    holder_env = {"MYNAKIT_AUTH_PIN": persona.auth_pin}

    added = ok_json(invoke(home, None, "mykey", "service", "add", "City library"))
    assert added["credential"].startswith(added["client_id"] + ".")
    service_env = {**holder_env, "MYNAKIT_MYKEY_CREDENTIAL": added["credential"]}

    registered = ok_json(
        invoke(
            home,
            READER,
            "mykey",
            "register",
            "--enable-tap",
            env={**holder_env, "MYNAKIT_BIRTH_DATE_CODE": persona.birth_date_code},
        )
    )
    assert registered["created"] and registered["tap_enabled"]
    mykey_id = registered["mykey_id"]

    linked = ok_json(invoke(home, READER, "mykey", "link", "LIB-42", env=service_env))
    assert linked["service_user_id"] == "LIB-42"
    resolved = ok_json(invoke(home, READER, "mykey", "resolve", env=service_env))
    assert resolved["service_user_id"] == "LIB-42" and resolved["assurance"] == "pin"
    assert mykey_id not in str(resolved)
    tapped = ok_json(
        invoke(
            home,
            READER,
            "mykey",
            "resolve",
            "--tap",
            env={
                "MYNAKIT_MYKEY_CREDENTIAL": added["credential"],
                "MYNAKIT_BIRTH_DATE_CODE": persona.birth_date_code,
            },
        )
    )
    assert tapped["assurance"] == "tap" and tapped["ppid"] == resolved["ppid"]

    shown = ok_json(invoke(home, READER, "mykey", "show", env=holder_env))
    assert shown["mykey_id"] == mykey_id and shown["links"][0]["service"] == "City library"

    # Renewal at the issuer: same MyKey ID and link with the new certificate.
    serial = str(load_card_state(home / "cards", "alice").serials["auth"])
    ok_json(invoke(home, None, "issuer", "renew", serial))
    after = ok_json(invoke(home, READER, "mykey", "resolve", env=service_env))
    assert after["service_user_id"] == "LIB-42" and after["ppid"] == resolved["ppid"]

    records = ok_json(invoke(home, READER, "mykey", "history", env=holder_env))["records"]
    assert {"register", "link", "resolve", "renewal", "history"} <= {
        record["purpose"] for record in records
    }

    changed = ok_json(invoke(home, READER, "mykey", "change", "--random", env=holder_env))
    assert changed["changed"] and changed["mykey_id"] != mykey_id
    unlinked = ok_json(invoke(home, READER, "mykey", "unlink", added["client_id"], env=holder_env))
    assert unlinked["links"] == []
    revoked = ok_json(invoke(home, READER, "mykey", "revoke", "--yes", env=holder_env))
    assert revoked["status"] == "revoked"


def test_errors_are_one_line_and_secrets_are_not_arguments(home: Path) -> None:
    # ``main()`` turns these into one line on stderr and the exit code of their class.
    result = invoke(home, READER, "mykey", "link", "LIB-1")
    assert "MYNAKIT_MYKEY_CREDENTIAL" in fails_with(result, UsageError)
    fails_with(invoke(home, READER, "mykey", "change"), UsageError)
    persona = load_card_state(home / "cards", "alice").persona
    result = invoke(home, READER, "mykey", "show", env={"MYNAKIT_AUTH_PIN": persona.auth_pin})
    assert "not registered" in fails_with(result, NotFoundError)
