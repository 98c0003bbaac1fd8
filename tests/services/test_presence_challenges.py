"""Card-presence challenges of the services layer (docs/card.md §7.13): one answer per nonce,
refused when unknown, replayed, expired, forged or from an untrusted card CA."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from mynakit.card.presence import ap_key_fingerprint, prove_presence
from mynakit.card.visual import VisualAp
from mynakit.emulator.card_files import CARD_CA_TEXT_KEY_NUMBER, CARD_CA_VISUAL_KEY_NUMBER, key_id
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.jpki.authentication import (
    ExpiredNonceError,
    InMemoryNonceStore,
    ReplayedNonceError,
    UnknownNonceError,
)
from mynakit.services.auth.presence import PresenceChallenges, PresenceRefusedError
from mynakit.transport.in_process import InProcessConnection
from support.clocks import FixedClock

pytestmark = pytest.mark.services


def _challenges(
    card: VirtualCard, clock: FixedClock, *, trusted: bool = True
) -> PresenceChallenges:
    key = card.state.card_ca_public_key()
    assert key is not None
    keys = [key] if trusted else []
    card_ca = {key_id(CARD_CA_TEXT_KEY_NUMBER): keys, key_id(CARD_CA_VISUAL_KEY_NUMBER): keys}
    return PresenceChallenges(InMemoryNonceStore(clock), card_ca, clock=clock)


def test_one_answer_per_challenge(virtual_card: VirtualCard, persona: Persona) -> None:
    clock = FixedClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    challenges = _challenges(virtual_card, clock)
    visual = VisualAp(ApduProtocol(InProcessConnection(virtual_card), extended_length=True))
    challenge = challenges.begin()
    proof = prove_presence(visual, challenge.nonce, persona.birth_date_code)
    fingerprint = challenges.verify(challenge.challenge_id, proof)
    record = visual.age_record(persona.birth_date_code)
    assert fingerprint == ap_key_fingerprint(record.public_key)
    with pytest.raises(ReplayedNonceError):
        challenges.verify(challenge.challenge_id, proof)
    with pytest.raises(UnknownNonceError):
        challenges.verify("never-issued", proof)
    # An answer for one challenge does not fit another.
    other = challenges.begin()
    with pytest.raises(PresenceRefusedError, match="does not verify"):
        challenges.verify(other.challenge_id, proof)
    late = challenges.begin()
    late_proof = prove_presence(visual, late.nonce, persona.birth_date_code)
    clock.now += dt.timedelta(minutes=6)
    with pytest.raises(ExpiredNonceError):
        challenges.verify(late.challenge_id, late_proof)


def test_forged_and_untrusted_answers(virtual_card: VirtualCard, persona: Persona) -> None:
    clock = FixedClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    visual = VisualAp(ApduProtocol(InProcessConnection(virtual_card), extended_length=True))
    challenges = _challenges(virtual_card, clock)
    challenge = challenges.begin()
    proof = prove_presence(visual, challenge.nonce, persona.birth_date_code)
    forged = replace(proof, signature=bytes(len(proof.signature)))
    with pytest.raises(PresenceRefusedError):
        challenges.verify(challenge.challenge_id, forged)
    untrusting = _challenges(virtual_card, clock, trusted=False)
    fresh = untrusting.begin()
    answer = prove_presence(visual, fresh.nonce, persona.birth_date_code)
    with pytest.raises(PresenceRefusedError, match="not trusted"):
        untrusting.verify(fresh.challenge_id, answer)
