"""``mynakit record`` and ``mynakit emulator create --from-transcript`` end to end: a card
recorded, turned back into a card, recorded again: the same status words and lengths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mynakit.errors import UsageError
from support.cli import invoke, ok_json

pytestmark = pytest.mark.emulator


def pins_of(home: Path, name: str) -> dict[str, str]:
    holder = ok_json(invoke(home, None, "emulator", "show", name, "--reveal"))["holder"]
    assert isinstance(holder, dict)
    return {
        "MYNAKIT_AUTH_PIN": holder["auth_pin"],
        "MYNAKIT_SIGN_PASSWORD": holder["sign_password"],
        "MYNAKIT_TEXT_PIN": holder["text_pin"],
    }


def shape(transcript: dict[str, object]) -> list[tuple[str, str, int]]:
    exchanges = transcript["exchanges"]
    assert isinstance(exchanges, list)
    return [(entry["command"][:4], entry["sw"], len(entry["response"])) for entry in exchanges]


def test_record_then_replay(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ok_json(invoke(home, None, "emulator", "create", "alice", "--seed", "rec"))
    first = tmp_path / "alice.json"
    recorded = ok_json(
        invoke(
            home,
            "virtual:alice",
            "record",
            "-o",
            str(first),
            "--with",
            "auth,sign,text",
            env=pins_of(home, "alice"),
        )
    )
    assert recorded["skipped"] == []
    transcript = json.loads(first.read_text())
    holder = ok_json(invoke(home, None, "emulator", "show", "alice", "--reveal"))["holder"]
    assert isinstance(holder, dict)
    text = first.read_text()
    for secret in (holder["my_number"], holder["sign_password"]):
        assert secret not in text
        assert secret.encode().hex().upper() not in text

    ok_json(invoke(home, None, "emulator", "create", "bob", "--from-transcript", str(first)))
    second = tmp_path / "bob.json"
    ok_json(
        invoke(
            home,
            "virtual:bob",
            "record",
            "-o",
            str(second),
            "--with",
            "auth,sign,text",
            env=pins_of(home, "bob"),
        )
    )
    assert shape(json.loads(second.read_text())) == shape(transcript)


def test_record_refuses_an_existing_file_and_unknown_pins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    with pytest.raises(UsageError, match="exists"):
        invoke(home, "virtual:nobody", "record", "-o", str(existing), raise_errors=True)
    with pytest.raises(UsageError, match="--with takes"):
        invoke(
            home,
            "virtual:nobody",
            "record",
            "-o",
            str(tmp_path / "x"),
            "--with",
            "pin",
            raise_errors=True,
        )
