"""Ten processes with a wrong PIN on one virtual card, half through pcscd and half in-process:
exactly three are told wrong, seven blocked, and the counter ends at 0 (docs/card.md §7.5,
§11.1).

The card is served from its folder as ``mynakit emulator serve`` does (``load_card`` in the vpcd
bridge), and the in-process children open the same folder. Every child holds the card open
before any VERIFY is sent (``support.concurrent_verify``): without the per-card lock the bridge
kept its own counters in memory and more than three VERIFYs were answered "wrong".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.pcscd import PcscdSession, PcscdSetupError, card_in_virtual_reader
from mynakit.emulator.state import create_card, load_card, load_card_state
from support.concurrent_verify import (
    release,
    start_in_process,
    start_through_pcscd,
    wait_until_ready,
)

pytestmark = pytest.mark.pcsc

PROCESSES_EACH_WAY = 5
AUTH_PIN_QUERY = bytes.fromhex("00200098")


@pytest.fixture
def cards(tmp_path: Path) -> Path:
    base = tmp_path / "cards"
    create_card(base, "shared", seed="pcsc-concurrency")
    return base


@pytest.fixture
def served_card(pcscd: PcscdSession, cards: Path) -> Iterator[tuple[VirtualCard, str]]:
    card = load_card(cards, "shared")
    try:
        with card_in_virtual_reader(card) as bridge:
            yield card, bridge.reader_name
    except PcscdSetupError as error:
        pytest.fail(str(error), pytrace=False)


def test_wrong_pins_through_pcscd_and_in_process_spend_exactly_three_tries(
    cards: Path, served_card: tuple[VirtualCard, str]
) -> None:
    card, reader = served_card
    right = load_card_state(cards, "shared").persona.auth_pin
    wrong = "0000" if right != "0000" else "1111"
    children = [
        *start_through_pcscd(reader, wrong, PROCESSES_EACH_WAY),
        *start_in_process(cards, "shared", wrong, PROCESSES_EACH_WAY),
    ]
    wait_until_ready(children)
    answers = release(children)
    assert sorted(answer for answer in answers if answer != "6984") == ["63c0", "63c1", "63c2"]
    assert answers.count("6984") == 2 * PROCESSES_EACH_WAY - 3
    # The served card and the card on disk agree: the PIN is blocked.
    assert card.execute(AUTH_PIN_QUERY) == b"\x63\xc0"
    on_disk = load_card(cards, "shared")
    on_disk.execute(bytes.fromhex("00A4040C0AD392F000260100000001"))
    assert on_disk.execute(AUTH_PIN_QUERY) == b"\x63\xc0"
