"""Card detection (``mynakit card info``): what the card is, from SELECT and the token file."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mynakit.card.detect import CardKind, identify, token_kind
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.state import new_virtual_card
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.profiles import CardProfile, load_profile
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.trace import TracingConnection

pytestmark = pytest.mark.emulator

MakeCard = Callable[..., VirtualCard]


def changed_profile(profile: CardProfile, **changes: Any) -> CardProfile:
    """A copy of ``profile`` with some fields changed (the constructor's parameters are its
    slots)."""
    fields = {name: getattr(profile, name) for name in profile.__slots__}
    return CardProfile(**{**fields, **changes})


def identify_card(card: VirtualCard) -> tuple[CardKind, str | None, bool, int]:
    connection = TracingConnection(InProcessConnection(card))
    identity = identify(ApduProtocol(connection, extended_length=True), connection.atr)
    return identity.kind, identity.token_label, identity.atr_known, len(connection.counter)


def test_my_number_card_in_two_apdus(make_virtual_card: MakeCard) -> None:
    kind, label, atr_known, apdus = identify_card(make_virtual_card())
    assert (kind, label, atr_known) == (CardKind.MY_NUMBER_CARD, "JPKIAPICCTOKEN2", True)
    assert apdus == 2  # SELECT JPKI AP, READ BINARY of the token by SFI (docs/card.md §7.1)


def test_smartphone_token(sandbox_issuer: SandboxIssuer) -> None:
    card = new_virtual_card(sandbox_issuer, profile="smartphone-jpki-token", seed="phone")
    kind, label, atr_known, _ = identify_card(card)
    assert (kind, label) == (CardKind.SMARTPHONE_TOKEN_ANDROID, "JPKIAPGPSETOKEN")
    assert not atr_known  # a synthesised ATR: identification never relies on it


def test_juki_card(sandbox_issuer: SandboxIssuer) -> None:
    # No Juki card profile ships (the Juki card is out of scope); its token label is the
    # difference detection looks at (docs/card.md §6.10).
    juki = changed_profile(load_profile(), token_label="JPKIAPICCTOKEN")
    kind, label, _, _ = identify_card(new_virtual_card(sandbox_issuer, profile=juki, seed="juki"))
    assert (kind, label) == (CardKind.JUKI_CARD, "JPKIAPICCTOKEN")


def test_a_card_without_the_jpki_ap_is_unknown(make_virtual_card: MakeCard) -> None:
    profile = load_profile()
    without_jpki = changed_profile(
        profile,
        applications={name: ap for name, ap in profile.applications.items() if name != "jpki"},
    )
    kind, label, _, apdus = identify_card(make_virtual_card(profile=without_jpki))
    assert (kind, label, apdus) == (CardKind.UNKNOWN, None, 1)  # SELECT answered 6A82


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("JPKIAPICCTOKEN2                 ", CardKind.MY_NUMBER_CARD),
        # NUL padding (docs/card.md §11.8)
        ("JPKIAPICCTOKEN2\x00\x00\x00", CardKind.MY_NUMBER_CARD),
        ("JPKIAPIOSTOKEN", CardKind.SMARTPHONE_TOKEN_IPHONE),
        ("SOMETHINGELSE", CardKind.UNKNOWN),
    ],
)
def test_token_labels(label: str, kind: CardKind) -> None:
    assert token_kind(label) is kind
