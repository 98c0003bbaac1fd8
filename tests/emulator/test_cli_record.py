"""``mynakit record`` and ``mynakit emulator create --from-transcript`` end to end: a card
recorded, turned back into a card, recorded again: the same status words and lengths."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mynakit.errors import DataError, UsageError
from support.cli import CliResult, fails_with, invoke, ok_json

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


@dataclass(frozen=True)
class Replay:
    home: Path
    transcript: dict[str, Any]
    transcript_text: str


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    """Card alice recorded with every PIN, and card bob made from the transcript."""
    tmp_path = tmp_path_factory.mktemp("record")
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
    ok_json(invoke(home, None, "emulator", "create", "bob", "--from-transcript", str(first)))
    text = first.read_text()
    return Replay(home, json.loads(text), text)


def test_record_then_replay(replay: Replay, tmp_path: Path) -> None:
    home = replay.home
    holder = ok_json(invoke(home, None, "emulator", "show", "alice", "--reveal"))["holder"]
    assert isinstance(holder, dict)
    for secret in (holder["my_number"], holder["sign_password"]):
        assert secret not in replay.transcript_text
        assert secret.encode().hex().upper() not in replay.transcript_text

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
    assert shape(json.loads(second.read_text())) == shape(replay.transcript)


def certificate_der(home: Path, card: str, kind: str) -> bytes:
    pem = ok_json(
        invoke(
            home,
            f"virtual:{card}",
            "jpki",
            "cert",
            "-t",
            kind,
            "-f",
            "pem",
            env=pins_of(home, card),
        )
    )["pem"]
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def test_replayed_card_answers_certificate_commands(replay: Replay) -> None:
    """``jpki cert``, ``jpki auth``, ``jpki verify-cert`` and ``card info`` work on a card made
    from a transcript, with certificates of the original's lengths; its certificates chain to
    the transcript CA, trusted with the sandbox, not to the sandbox issuer that made alice's."""
    home = replay.home
    for kind in ("auth", "sign"):
        original, replayed = (
            certificate_der(home, "alice", kind),
            certificate_der(home, "bob", kind),
        )
        assert len(replayed) == len(original) and replayed != original
    summary = ok_json(
        invoke(
            home,
            "virtual:bob",
            "jpki",
            "cert",
            "-t",
            "sign",
            "--show-personal",
            env=pins_of(home, "bob"),
        )
    )
    assert summary["sandbox"] is True
    assert summary["basic_info"]["name"]

    authenticated = ok_json(
        invoke(
            home, "virtual:bob", "jpki", "auth", "--revocation", "none", env=pins_of(home, "bob")
        )
    )
    assert authenticated["authenticated"] is True
    assert "transcript" in authenticated["issuer_root"]
    assert authenticated["production"] is False

    valid = ok_json(
        invoke(home, "virtual:bob", "jpki", "verify-cert", "--from-card", "auth", "--sandbox")
    )
    assert valid["valid"] is True and "transcript" in valid["root"]
    untrusted = invoke(home, "virtual:bob", "jpki", "verify-cert", "--from-card", "auth")
    assert untrusted.exit_code != 0
    refusal = json.loads(untrusted.stdout)["result"]  # inside the error object
    assert refusal["reason"] == "unknown_issuer" and "add --sandbox" in refusal["message"]

    infos = [ok_json(invoke(home, f"virtual:{card}", "card", "info")) for card in ("alice", "bob")]
    for info in infos:
        info.pop("reader")
    assert infos[0] == infos[1]
    # The same APDUs, status words and response lengths as on the original.
    for command in (("card", "info"), ("jpki", "cert", "-f", "pem")):
        alice, bob = (
            traced_shape(invoke(home, f"virtual:{card}", "--trace", *command))
            for card in ("alice", "bob")
        )
        assert alice == bob and alice


def traced_shape(result: CliResult) -> list[tuple[str, str, int]]:
    """(command header, status word, response length) of each APDU in a ``--trace``."""
    assert result.exit_code == 0, result.output
    shape: list[tuple[str, str, int]] = []
    header = ""
    for line in result.stderr.splitlines():
        if line.startswith("> "):
            header = "".join(line[2:].split()[:4])
        elif line.startswith("< "):
            response = line[2:].split()
            sw = response[-1]
            shape.append((header, sw, len(response) - 1 + len(sw) // 2))
    return shape


def test_record_refuses_an_existing_file_and_unknown_pins(tmp_path: Path) -> None:
    home = tmp_path / "home"
    existing = tmp_path / "exists.json"
    existing.write_text("{}")
    refused = invoke(home, "virtual:nobody", "record", "-o", str(existing))
    assert "exists" in fails_with(refused, UsageError)
    unknown = invoke(home, "virtual:nobody", "record", "-o", str(tmp_path / "x"), "--with", "pin")
    assert "--with takes" in fails_with(unknown, UsageError)


def test_an_older_transcript_is_refused_with_a_reason(replay: Replay, tmp_path: Path) -> None:
    older = tmp_path / "older.json"
    older.write_text(json.dumps({**replay.transcript, "format": "mynakit-transcript/1"}))
    refused = invoke(
        replay.home, None, "emulator", "create", "carol", "--from-transcript", str(older)
    )
    assert "record the card again" in fails_with(refused, DataError)
