"""The cards in a base folder: listing, lookup by certificate serial, removal.

Listing reads only each card's ``card.json``; a card whose ``card.json`` is broken is listed with
the problem, so one damaged card never hides the others.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mynakit.emulator.card_layout import CARD_FILE, CardLayout, read_card_record
from mynakit.emulator.virtual_reader import eject_card, inserted_card
from mynakit.errors import DataError, UsageError


@dataclass(frozen=True)
class CardListing:
    """One card of a base folder; ``problem`` says what is wrong with a damaged card."""

    name: str
    profile: str
    created: str
    serials: dict[str, int] = field(default_factory=dict)
    directory: Path = Path()
    problem: str | None = None


def list_cards(base_dir: str | os.PathLike[str]) -> list[CardListing]:
    """Every complete card in ``base_dir``, by folder name, damaged ones included."""
    base = Path(base_dir)
    if not base.is_dir():
        return []
    listings = []
    for entry in sorted(base.iterdir()):
        if entry.name.startswith(".") or not (entry / CARD_FILE).is_file():
            continue
        try:
            card = read_card_record(CardLayout(entry))
        except DataError as error:
            listings.append(
                CardListing(
                    name=entry.name, profile="", created="", directory=entry, problem=str(error)
                )
            )
            continue
        listings.append(
            CardListing(
                name=card.name,
                profile=card.profile,
                created=card.created,
                serials=dict(card.serials),
                directory=entry,
            )
        )
    return listings


def card_ca_public_keys(base_dir: str | os.PathLike[str]) -> list[rsa.RSAPublicKey]:
    """The card-CA public keys of every card in ``base_dir`` (``card-ca.pem`` only: no private
    key is loaded), for verifiers that trust the sandbox (``--sandbox``). Damaged cards are
    left out."""
    keys = []
    for listing in list_cards(base_dir):
        path = CardLayout(listing.directory).card_ca_public_file
        if listing.problem is not None or not path.is_file():
            continue
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(key, rsa.RSAPublicKey):
            keys.append(key)
    return keys


def find_card_by_serial(base_dir: str | os.PathLike[str], serial: int) -> tuple[str, str] | None:
    """(card name, "auth" or "sign") of the card holding certificate ``serial``, if any."""
    for listing in list_cards(base_dir):
        for kind, card_serial in listing.serials.items():
            if card_serial == serial:
                return listing.name, kind
    return None


def remove_card(base_dir: str | os.PathLike[str], name: str) -> None:
    """Delete card ``name`` (keys included), damaged or not. Ejects it first if it is in the
    virtual reader."""
    layout = CardLayout.of(base_dir, name)
    if not layout.exists():
        raise UsageError(f"no virtual card named {name!r} in {layout.directory.parent}")
    if inserted_card(base_dir) == name:
        eject_card(base_dir)
    shutil.rmtree(layout.directory)
