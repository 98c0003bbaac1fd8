"""The real contact ATRs offered as card-profile choices (docs/card.md §1) go through pcscd and
vpcd unchanged, and the card is still found by SELECT of the JPKI AP, whatever its ATR."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mynakit.card.detect import CardKind, identify
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.pcscd import PcscdSession, card_in_virtual_reader
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.profiles import load_profile, with_choices
from mynakit.transport.pcsc import PcscConnection

pytestmark = pytest.mark.pcsc


@pytest.mark.parametrize(
    ("choice", "atr"),
    [
        ("jpki-02", "3BDA13FF8131FB468012392F31C173C601C03B"),
        ("jpki-03", "3BC5FF8131FB458073C6010000"),
    ],
)
def test_a_real_contact_atr_reaches_pcsc_clients(
    pcscd: PcscdSession,
    make_virtual_card: Callable[..., VirtualCard],
    choice: str,
    atr: str,
) -> None:
    card = make_virtual_card(profile=with_choices(load_profile(), atr=choice))
    with (
        card_in_virtual_reader(card) as bridge,
        PcscConnection.open(bridge.reader_name) as connection,
    ):
        assert connection.atr == bytes.fromhex(atr)
        identity = identify(ApduProtocol(connection), connection.atr)
        assert identity.kind is CardKind.MY_NUMBER_CARD
