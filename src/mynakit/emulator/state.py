"""A virtual card's state, in memory and on disk: the one import for code outside the emulator.

Each job lives in its own module; this module only names them together, so callers (the CLI,
tests, benchmarks) need one import line:

    card_keys        the card's private keys (sign only)
    pin_records      PIN counters, ``pins.json`` and the per-card lock
    card_state       what a card holds in memory
    card_layout      the on-disk layout, used by both save and load; load checks every file
    virtual_cards    making and opening cards (certificates from the sandbox issuer)
    card_list        listing, lookup by serial, removal
    card_renewal     certificate renewal (new key on the card)
    virtual_reader   which card is in the virtual reader
"""

from __future__ import annotations

from mynakit.emulator.card_keys import CardKey
from mynakit.emulator.card_layout import (
    CARD_FILE,
    PERSONA_FILE,
    PINS_FILE,
    STATE_FORMAT,
    CardLayout,
    check_card_name,
    load_card_state,
    save_card_state,
)
from mynakit.emulator.card_list import (
    CardListing,
    card_ca_public_keys,
    find_card_by_serial,
    list_cards,
    remove_card,
)
from mynakit.emulator.card_renewal import renew_card_certificate
from mynakit.emulator.card_state import CardState
from mynakit.emulator.pin_records import KeyRef, PinRecord
from mynakit.emulator.virtual_cards import (
    build_card_state,
    create_card,
    default_issuer_directory,
    install_card_state,
    load_card,
    new_virtual_card,
)
from mynakit.emulator.virtual_reader import INSERTED_FILE, eject_card, insert_card, inserted_card

__all__ = [
    "CARD_FILE",
    "INSERTED_FILE",
    "PERSONA_FILE",
    "PINS_FILE",
    "STATE_FORMAT",
    "CardKey",
    "CardLayout",
    "CardListing",
    "CardState",
    "KeyRef",
    "PinRecord",
    "build_card_state",
    "card_ca_public_keys",
    "check_card_name",
    "create_card",
    "default_issuer_directory",
    "eject_card",
    "find_card_by_serial",
    "insert_card",
    "inserted_card",
    "install_card_state",
    "list_cards",
    "load_card",
    "load_card_state",
    "new_virtual_card",
    "remove_card",
    "renew_card_certificate",
    "save_card_state",
]
