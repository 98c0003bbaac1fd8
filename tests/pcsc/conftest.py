"""The pcsc tier: pcscd + vpcd + a card served by the vpcd bridge.

The fixtures live in ``mynakit.emulator.pcsc_fixtures`` (the ``mynakit_pcsc`` pytest plugin);
registered here too, so the tier runs whether or not the entry point is installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pcsc_scripted_card import ScriptedCard

import mynakit.emulator.pcsc_fixtures as pcsc_fixtures
from mynakit.emulator.pcsc_fixtures import PcscdSession, card_in_virtual_reader
from mynakit.emulator.vpcd import VpcdBridge


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.is_registered(pcsc_fixtures):
        config.pluginmanager.register(pcsc_fixtures, "mynakit_pcsc")


@pytest.fixture
def scripted_card() -> ScriptedCard:
    return ScriptedCard()


@pytest.fixture
def scripted_bridge(pcscd: PcscdSession, scripted_card: ScriptedCard) -> Iterator[VpcdBridge]:
    """``scripted_card`` in ``Virtual PCD 00 00``, present in pcscd."""
    with card_in_virtual_reader(scripted_card) as bridge:
        yield bridge
