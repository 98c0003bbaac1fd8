"""Transcripts made from the virtual card itself: nothing personal or secret is in them (raw,
hex and spaced hex), and a card built from one answers every read with the same status words
and lengths as the original."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from mynakit.card.readout import ReadoutSecrets, standard_readout
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import CardState
from mynakit.emulator.transcripts import (
    Exchange,
    RecordingConnection,
    _leaves,
    make_transcript,
    persona_card_state,
    virtual_card_from_transcript,
)
from mynakit.profiles import load_profile
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.limits import protocol_for

pytestmark = pytest.mark.emulator


def record(
    card: VirtualCard, persona: Persona | None
) -> tuple[list[Exchange], RecordingConnection]:
    recording = RecordingConnection(InProcessConnection(card))
    secrets = (
        ReadoutSecrets(persona.auth_pin, persona.sign_password, persona.text_pin)
        if persona
        else None
    )
    standard_readout(protocol_for(recording), secrets)
    return recording.exchanges, recording


@pytest.fixture(scope="module")
def redaction_state(sandbox_issuer: SandboxIssuer) -> CardState:
    return persona_card_state(load_profile(), sandbox_issuer, seed="transcript-redaction")


def transcript_of(
    card: VirtualCard, persona: Persona | None, redaction_state: CardState
) -> tuple[list[Exchange], dict[str, Any]]:
    """The card's standard read-out and its redacted transcript."""
    exchanges, recording = record(card, persona)
    transcript = make_transcript(
        exchanges, atr=recording.atr, profile=card.profile, persona_state=redaction_state
    )
    return exchanges, transcript


def personal_needles(card: VirtualCard, persona: Persona) -> dict[str, bytes]:
    """Everything personal or secret on ``card``, as bytes."""
    state = card.state
    info = persona.basic_info
    needles: dict[str, bytes] = {
        "my_number": persona.my_number.encode(),
        "auth_pin_verify": b"\x04" + persona.auth_pin.encode(),
        "sign_password": persona.sign_password.encode(),
        "text_pin_verify": b"\x04" + persona.text_pin.encode(),
        "name": info.name.encode("utf-8"),
        "address": info.address.encode("utf-8"),
    }
    for (application, key_id), key in state.card_keys.items():
        modulus = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
        needles[f"key {application}/{key_id:04X}"] = modulus[20:52]
    face = state.files[("visual", 0x0002)]
    needles["card face middle"] = face[len(face) // 2 : len(face) // 2 + 24]
    image = state.files[("visual", 0x0005)]
    needles["my number image"] = image[len(image) // 2 : len(image) // 2 + 24]
    auth = state.files[("jpki", 0x000A)]
    needles["auth certificate signature"] = auth[-32:]
    needles["card serial"] = state.records[("common", 0x0001)][0][2:18]
    # Every basic-4 value as the card stores it (name, address, birth date), and check code B.
    basic_info = state.files[("text", 0x0002)]
    for _path, tag, start, end in _leaves(basic_info):
        if end - start >= 8 and tag != 0xDF21:  # DF21: the offset table (lengths only)
            needles[f"basic-4 {tag:X}"] = basic_info[start:end]
    needles["check code B"] = persona.check_code_b.encode()
    needles["sign certificate key"] = state.files[("jpki", 0x0001)][-64:-32]
    return needles


def forms(needle: bytes) -> list[str]:
    return [
        needle.decode("latin-1"),
        needle.hex(),
        needle.hex().upper(),
        needle.hex(" "),
        needle.hex(" ").upper(),
    ]


def test_transcript_holds_no_personal_data_or_secret(
    virtual_card: VirtualCard, persona: Persona, redaction_state: CardState
) -> None:
    exchanges, transcript = transcript_of(virtual_card, persona, redaction_state)
    text = json.dumps(transcript)
    for what, needle in personal_needles(virtual_card, persona).items():
        for form in forms(needle):
            assert form not in text, what
    # Kept: the ATR, every status word, every response length, the timings.
    assert transcript["atr"] == virtual_card.atr.hex().upper()
    assert len(transcript["exchanges"]) == len(exchanges)
    for entry, exchange in zip(transcript["exchanges"], exchanges, strict=True):
        assert entry["sw"] == exchange.response[-2:].hex().upper()
        assert len(bytes.fromhex(entry["response"])) == len(exchange.response)
        assert entry["ms"] >= 0
    removed = [entry for entry in transcript["exchanges"] if entry.get("secret_removed")]
    assert len(removed) == 4  # auth PIN, sign password, text PIN, check code A
    assert all(len(entry["command"]) == 8 for entry in removed)


@pytest.mark.parametrize("with_pins", [True, False], ids=["with PINs", "no PIN"])
def test_replayed_card_answers_every_read_alike(
    make_virtual_card: Callable[..., VirtualCard],
    persona: Persona,
    sandbox_issuer: SandboxIssuer,
    redaction_state: CardState,
    with_pins: bool,
    tmp_path: Path,
) -> None:
    original = make_virtual_card()
    exchanges, transcript = transcript_of(original, persona if with_pins else None, redaction_state)
    replayed = virtual_card_from_transcript(
        json.loads(json.dumps(transcript)), sandbox_issuer, tmp_path, seed="replay"
    )
    assert replayed.atr == original.atr
    replay_exchanges, _ = record(replayed, replayed.state.persona if with_pins else None)

    def shape(items: list[Exchange]) -> list[tuple[str, str, int]]:
        return [
            (item.command[:2].hex(), item.response[-2:].hex(), len(item.response)) for item in items
        ]

    assert shape(replay_exchanges) == shape(exchanges)
    if with_pins:
        # The replaced basic-4 values still parse: text stays text, of the same byte length.
        from mynakit.card.text import TextAp

        text = TextAp(protocol_for(InProcessConnection(replayed)))
        info = text.basic_info(replayed.state.persona.text_pin)
        assert info.name and info.name != persona.basic_info.name
    # Same file sizes, and the non-personal files byte for byte.
    for (application, file_id), content in original.state.files.items():
        if (application, file_id) in (("jpki", 0x000B), ("jpki", 0x0002)):
            assert replayed.state.files[(application, file_id)] == content


def test_replayed_card_signs_under_its_certificate(
    virtual_card: VirtualCard,
    persona: Persona,
    sandbox_issuer: SandboxIssuer,
    redaction_state: CardState,
    tmp_path: Path,
) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    from mynakit.card.jpki import JpkiAp

    _, transcript = transcript_of(virtual_card, persona, redaction_state)
    replayed = virtual_card_from_transcript(transcript, sandbox_issuer, tmp_path, seed="replay")
    jpki = JpkiAp.open(protocol_for(InProcessConnection(replayed)))
    jpki.verify_auth_pin(replayed.state.persona.auth_pin)
    signature = jpki.sign_digest("auth", "sha256", bytes(32))
    certificate = jpki.read_certificate("auth")
    key = replayed.state.card_keys[("jpki", 0x0017)].public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signature, bytes(32), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
    # The certificate the replayed card hands out carries that very key.
    key_der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    assert key_der in certificate
