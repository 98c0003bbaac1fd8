"""The card-presence challenge (docs/card.md §7.13) from the visual AP session to the virtual
card: the exact APDUs, and what the relying party's check accepts and refuses."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import replace

import pytest

from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.presence import (
    PresenceProof,
    PresenceProofError,
    ap_key_fingerprint,
    prove_presence,
    verify_presence,
)
from mynakit.card.visual import VisualAp
from mynakit.emulator.card_files import CARD_CA_TEXT_KEY_NUMBER, CARD_CA_VISUAL_KEY_NUMBER, key_id
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.transport.in_process import InProcessConnection

pytestmark = pytest.mark.emulator


class Recorder:
    """A transmitter that keeps every command it passes on."""

    def __init__(self, connection: InProcessConnection) -> None:
        self.connection = connection
        self.commands: list[bytes] = []

    def transmit(self, command: bytes) -> bytes:
        self.commands.append(command)
        return self.connection.transmit(command)


def _trusted(card: VirtualCard) -> CardCaKeys:
    key = card.state.card_ca_public_key()
    assert key is not None
    return {key_id(CARD_CA_TEXT_KEY_NUMBER): [key], key_id(CARD_CA_VISUAL_KEY_NUMBER): [key]}


def test_visual_ap_proves_presence(
    virtual_card: VirtualCard, virtual_card_connection: InProcessConnection, persona: Persona
) -> None:
    recorder = Recorder(virtual_card_connection)
    visual = VisualAp(ApduProtocol(recorder, extended_length=True))
    nonce = secrets.token_bytes(32)
    recorder.commands.clear()
    proof = prove_presence(visual, nonce, persona.birth_date_code)
    # The guarded VERIFY (retry query, then the code), then the three commands of
    # docs/card.md §7.13.
    verifies = [command for command in recorder.commands if command[1] == 0x20]
    assert len(verifies) == 2
    get_challenge, signature_command, *reads = recorder.commands[len(verifies) :]
    assert get_challenge == bytes.fromhex("0084000010")
    digest = hashlib.sha256(nonce + proof.card_challenge).digest()
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + digest
    assert signature_command[:5] == bytes.fromhex("802A000033")
    assert signature_command[5:-1] == digest_info
    assert {read[1] for read in reads} == {0xB0}  # EF 0004 and EF 0001 by SFI
    key = verify_presence(proof, nonce, _trusted(virtual_card))
    record = visual.age_record(persona.birth_date_code)
    assert ap_key_fingerprint(key) == ap_key_fingerprint(record.public_key)
    assert persona.birth_date_code not in repr(proof)


def test_replayed_forged_and_untrusted_answers_are_refused(
    virtual_card: VirtualCard, virtual_card_connection: InProcessConnection, persona: Persona
) -> None:
    visual = VisualAp(ApduProtocol(virtual_card_connection, extended_length=True))
    nonce = secrets.token_bytes(32)
    proof = prove_presence(visual, nonce, persona.birth_date_code)
    trusted = _trusted(virtual_card)
    with pytest.raises(PresenceProofError, match="does not verify"):
        verify_presence(proof, secrets.token_bytes(32), trusted)  # replayed for another nonce
    forged = replace(proof, signature=bytes(len(proof.signature)))
    with pytest.raises(PresenceProofError, match="does not verify"):
        verify_presence(forged, nonce, trusted)
    other_challenge = replace(proof, card_challenge=secrets.token_bytes(16))
    with pytest.raises(PresenceProofError):
        verify_presence(other_challenge, nonce, trusted)
    with pytest.raises(PresenceProofError, match="not trusted"):
        verify_presence(proof, nonce, {})
    assert PresenceProof.from_dict(proof.to_dict()) == proof
