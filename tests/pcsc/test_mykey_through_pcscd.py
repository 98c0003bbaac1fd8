"""The MyKey platform with the card in pcscd's vpcd reader (PC/SC all the way): register,
renew at the issuer, revoke, tap mode (docs/services.md §B.2-§B.5)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509

from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.pcscd import PcscdSession
from mynakit.services.errors import ForbiddenError, NotAuthenticatedError
from mynakit.services.store import sqlite_url
from support.mykey import new_card, running_platform

pytestmark = pytest.mark.pcsc


def test_mykey_journey_through_pcscd(
    pcscd: PcscdSession, sandbox_issuer: SandboxIssuer, tmp_path: Path
) -> None:
    cards = tmp_path / "cards"
    card = replace(new_card(cards, sandbox_issuer, "pcsc-holder"), through_pcscd=True)
    with running_platform(
        sqlite_url(tmp_path / "services.sqlite3"), sandbox_issuer, cards
    ) as platform:
        holder = platform.holder
        _, library = platform.service_client("Library")
        registered = holder.register(card.pin(holder), presence=card.enrolment(holder))
        assert registered["tap_enabled"]
        library.link(card.pin(holder), "LIB-PCSC")
        before = library.resolve(card.pin(holder))

        certificate, challenge_id, proof = card.tap(holder)
        tapped = library.resolve_tap(certificate, challenge_id, proof)
        assert tapped["assurance"] == "tap" and tapped["ppid"] == before["ppid"]
        with pytest.raises(NotAuthenticatedError):
            library.resolve_tap(certificate, challenge_id, proof)  # replayed
        _, fresh_challenge, _ = card.tap(holder)
        with pytest.raises(ForbiddenError):
            library.resolve_tap(certificate, fresh_challenge, proof)  # answer to another nonce

        old = card.pin(holder)
        card.renew()
        after = library.resolve(card.pin(holder))
        assert after["service_user_id"] == "LIB-PCSC" and after["ppid"] == before["ppid"]
        assert holder.show(card.pin(holder))["mykey_id"] == registered["mykey_id"]
        with pytest.raises(ForbiddenError):
            library.resolve(old)  # the old serial no longer resolves

        sandbox_issuer.revoke(card.auth_serial, x509.ReasonFlags.key_compromise)
        with pytest.raises(ForbiddenError) as refused:
            library.resolve(card.pin(holder))
        assert "keyCompromise" in str(refused.value)
