"""Transcripts made from the virtual card itself: nothing personal or secret is in them (raw,
hex and spaced hex), and a card built from one answers every read with the same status words
and lengths as the original."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

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
    transcript_authorities,
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
    for label, file_id in (("auth", 0x000A), ("sign", 0x0001)):
        needles.update(certificate_needles(label, state.files[("jpki", file_id)]))
    needles["card serial"] = state.records[("common", 0x0001)][0][2:18]
    # Every basic-4 value as the card stores it (name, address, birth date), and check code B.
    basic_info = state.files[("text", 0x0002)]
    for _path, tag, start, end in _leaves(basic_info):
        if end - start >= 8 and tag != 0xDF21:  # DF21: the offset table (lengths only)
            needles[f"basic-4 {tag:X}"] = basic_info[start:end]
    needles["check code B"] = persona.check_code_b.encode()
    return needles


def certificate_needles(label: str, der: bytes) -> dict[str, bytes]:
    """What identifies a certificate: its public key, signature, key identifier, serial and
    subject CN (the random string)."""
    certificate = x509.load_der_x509_certificate(der)
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    modulus = key.public_numbers().n.to_bytes(key.key_size // 8, "big")
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(common_name, str)
    serial = certificate.serial_number
    return {
        f"{label} certificate public key": modulus[:24],
        f"{label} certificate public key end": modulus[-24:],
        f"{label} certificate signature": certificate.signature[:24],
        f"{label} certificate signature end": certificate.signature[-24:],
        f"{label} certificate key identifier": x509.SubjectKeyIdentifier.from_public_key(
            key
        ).digest,
        f"{label} certificate serial": serial.to_bytes((serial.bit_length() + 7) // 8, "big"),
        f"{label} certificate random string": common_name[:14].encode(),
    }


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


def test_replayed_card_authenticates_under_the_transcript_ca(
    virtual_card: VirtualCard,
    persona: Persona,
    sandbox_issuer: SandboxIssuer,
    redaction_state: CardState,
    tmp_path: Path,
) -> None:
    """The replayed card's certificates are well-formed X.509 of the original's length that
    chain to the transcript's CA, and its keys sign under them (JPKI authentication)."""
    from mynakit.card.jpki import JpkiAp
    from mynakit.jpki.authentication import Authenticator, card_respond
    from mynakit.jpki.certificates import parse_certificate
    from mynakit.jpki.trust import TrustStore
    from mynakit.jpki.validation import CertificateValidationError, validate_path

    _, transcript = transcript_of(virtual_card, persona, redaction_state)
    authorities = transcript_authorities(transcript)
    assert len(authorities) == 2  # one per recorded issuer: the auth and the sign root
    replayed = virtual_card_from_transcript(transcript, sandbox_issuer, tmp_path, seed="replay")
    transcript_trust = TrustStore().with_sandbox(authorities)
    jpki = JpkiAp.open(protocol_for(InProcessConnection(replayed)))
    jpki.verify_sign_password(replayed.state.persona.sign_password)
    for kind, file_id in (("auth", 0x000A), ("sign", 0x0001)):
        der = jpki.read_certificate(kind)  # type: ignore[arg-type]
        assert len(der) == len(virtual_card.state.files[("jpki", file_id)])
        certificate = parse_certificate(der)
        assert certificate.kind.value == kind
        validate_path(certificate, transcript_trust, purpose=certificate.kind)
        with pytest.raises(CertificateValidationError):
            validate_path(
                certificate, TrustStore().with_sandbox(sandbox_issuer), purpose=certificate.kind
            )
        redaction_certificate = parse_certificate(redaction_state.files[("jpki", file_id)])
        assert certificate.subject_common_name == redaction_certificate.subject_common_name
    # The persona's basic-4 information, fitted to the recorded lengths, still parses.
    sign = parse_certificate(jpki.read_certificate("sign"))
    assert sign.basic_info.birth_date == redaction_state.persona.basic_info.birth_date

    authenticator = Authenticator(transcript_trust, revocation="none")
    challenge = authenticator.begin()
    fresh = JpkiAp.open(protocol_for(InProcessConnection(replayed)))
    response = card_respond(fresh, challenge, replayed.state.persona.auth_pin)
    identity = authenticator.complete(
        response.challenge_id, response.signature, response.certificate_der
    )
    assert not identity.production
    assert "transcript" in identity.issuer_root
