"""Renewing a virtual card's JPKI certificate as a municipal office does (docs/card.md §9):
a new key pair on the card, a new certificate from the sandbox issuer, the certificate EF
rewritten."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mynakit.emulator.card_keys import CardKey
from mynakit.emulator.card_layout import load_card_state, save_card_state
from mynakit.errors import UsageError

if TYPE_CHECKING:
    from mynakit.emulator.issuer import SandboxIssuer


def renew_card_certificate(
    base_dir: str | os.PathLike[str], name: str, kind: str, issuer: SandboxIssuer
) -> tuple[int, x509.Certificate]:
    """Renew the card's ``kind`` ("auth"/"sign") certificate; the issuer revokes the old one
    (superseded) and refuses a revoked one. Returns (old serial, new certificate)."""
    state = load_card_state(base_dir, name)
    jpki = state.card_profile().application("jpki")
    key = jpki.key(f"{kind}_key")
    file = jpki.file(f"{kind}_certificate")
    old_serial = state.serials.get(kind)
    if old_serial is None:
        raise UsageError(f"card {name!r} holds no {kind} certificate")
    new_key = CardKey.generate()
    # Under the card's lock: no command runs on the card while its key and EF change.
    with state.command():
        certificate = issuer.renew(old_serial, new_key.public_key())
        state.card_keys[("jpki", key.key_id)] = new_key
        state.files[("jpki", file.file_id)] = certificate.public_bytes(serialization.Encoding.DER)
        state.serials[kind] = certificate.serial_number
        save_card_state(state)
    return old_serial, certificate
