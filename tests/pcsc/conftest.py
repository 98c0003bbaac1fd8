"""The pcsc tier: pcscd + vpcd + a card served by the vpcd bridge.

The shared fixtures come from ``mynakit.emulator.pcsc_fixtures`` (the ``mynakit_pcsc`` pytest
plugin entry point); this file adds the scripted card used by the transport tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mynakit.emulator.pcscd import PcscdSession, card_in_virtual_reader
from mynakit.emulator.vpcd import VpcdBridge
from support.scripted_card import ScriptedCard


@pytest.fixture
def scripted_card() -> ScriptedCard:
    return ScriptedCard()


@pytest.fixture
def scripted_bridge(pcscd: PcscdSession, scripted_card: ScriptedCard) -> Iterator[VpcdBridge]:
    """``scripted_card`` in ``Virtual PCD 00 00``, present in pcscd."""
    with card_in_virtual_reader(scripted_card) as bridge:
        yield bridge
