"""PcscConnection, reader discovery and card events against pcscd + vpcd + the vpcd bridge."""

from __future__ import annotations

import time

import pytest
from smartcard.System import readers as pyscard_readers

from mynakit.emulator.pcscd import VPCD_READER, wait_for_empty_reader
from mynakit.emulator.vpcd import VpcdBridge
from mynakit.transport.base import (
    CardRemovedError,
    NoCardError,
    ReaderBusyError,
    TransportTimeoutError,
)
from mynakit.transport.pcsc import PcscConnection
from mynakit.transport.readers import CardEventKind, CardMonitor, list_readers, wait_for_card
from support.scripted_card import SCRIPTED_ATR, ScriptedCard

pytestmark = pytest.mark.pcsc

SELECT_JPKI_AP = bytes.fromhex("00A4040C0AD392F000260100000001")


def test_pyscard_sees_the_card_in_the_virtual_reader(scripted_bridge: VpcdBridge) -> None:
    reader = next(r for r in pyscard_readers() if str(r) == VPCD_READER)
    connection = reader.createConnection()
    connection.connect()
    try:
        assert bytes(connection.getATR()) == SCRIPTED_ATR
    finally:
        connection.disconnect()


def test_list_readers_reports_the_card_and_its_atr(scripted_bridge: VpcdBridge) -> None:
    by_name = {info.name: info for info in list_readers()}
    assert by_name[VPCD_READER].card_present
    assert by_name[VPCD_READER].atr_hex == SCRIPTED_ATR.hex().upper()
    assert not by_name["Virtual PCD 00 01"].card_present
    assert by_name["Virtual PCD 00 01"].atr is None


def test_apdus_round_trip_through_pcscd(
    scripted_bridge: VpcdBridge, scripted_card: ScriptedCard
) -> None:
    with PcscConnection.open(VPCD_READER) as connection:
        assert connection.atr == SCRIPTED_ATR
        assert connection.protocol == "T=1"  # vpcd always reports T=1 (docs/testing.md §5.1)
        assert connection.exclusive
        # Debian's vpcd 3.3 answers no control codes; newer vpcd reports 0x10000.
        assert connection.max_apdu_data_size in (None, 0x10000)
        assert connection.transmit(SELECT_JPKI_AP) == b"\x90\x00"
        assert connection.transmit(bytes.fromhex("00CA0101")) == b"\x6d\x00"
    assert scripted_card.commands == [SELECT_JPKI_AP, bytes.fromhex("00CA0101")]


def test_open_without_a_name_picks_the_reader_with_a_card(scripted_bridge: VpcdBridge) -> None:
    with PcscConnection.open() as connection:
        assert connection.reader_name == VPCD_READER


def test_open_by_name_fragment(scripted_bridge: VpcdBridge) -> None:
    with PcscConnection.open("pcd 00 00") as connection:
        assert connection.reader_name == VPCD_READER


def test_empty_reader_gives_no_card_error(pcscd: object) -> None:
    with pytest.raises(NoCardError, match="insert"):
        PcscConnection.open("Virtual PCD 00 01")


def test_card_pulled_mid_command_gives_card_removed(
    scripted_bridge: VpcdBridge, scripted_card: ScriptedCard
) -> None:
    with PcscConnection.open(VPCD_READER) as connection:
        scripted_card.pull_on_command = True
        with pytest.raises(CardRemovedError, match="removed"):
            connection.transmit(SELECT_JPKI_AP)
    assert scripted_bridge.card is None  # the fault took the card out of the bridge too


def test_card_pulled_between_commands_gives_card_removed(scripted_bridge: VpcdBridge) -> None:
    with PcscConnection.open(VPCD_READER) as connection:
        scripted_bridge.remove_card()
        assert wait_for_empty_reader(VPCD_READER)
        with pytest.raises(CardRemovedError):
            connection.transmit(SELECT_JPKI_AP)


def test_reinserted_card_can_be_opened_again(
    scripted_bridge: VpcdBridge, scripted_card: ScriptedCard
) -> None:
    scripted_bridge.remove_card()
    assert wait_for_empty_reader(VPCD_READER)
    scripted_bridge.insert_card(scripted_card)
    assert wait_for_card(VPCD_READER, timeout=5).card_present
    with PcscConnection.open(VPCD_READER) as connection:
        assert connection.transmit(SELECT_JPKI_AP) == b"\x90\x00"


def test_second_exclusive_user_is_told_the_reader_is_busy(scripted_bridge: VpcdBridge) -> None:
    with PcscConnection.open(VPCD_READER), pytest.raises(ReaderBusyError, match="another program"):
        PcscConnection.open(VPCD_READER)


def test_exclusive_falls_back_to_shared_with_a_note(scripted_bridge: VpcdBridge) -> None:
    with PcscConnection.open(VPCD_READER, exclusive=False) as first:
        with PcscConnection.open(VPCD_READER) as second:
            assert not second.exclusive
            assert second.notes and "shared" in second.notes[0]
            assert second.transmit(SELECT_JPKI_AP) == b"\x90\x00"
        assert first.transmit(SELECT_JPKI_AP) == b"\x90\x00"


def test_reset_returns_the_atr(scripted_bridge: VpcdBridge, scripted_card: ScriptedCard) -> None:
    with PcscConnection.open(VPCD_READER) as connection:
        assert connection.reset() == SCRIPTED_ATR
        assert scripted_card.resets >= 1


def test_wait_for_card_times_out_on_an_empty_reader(pcscd: object) -> None:
    started = time.monotonic()
    with pytest.raises(TransportTimeoutError, match=r"0\.3 s"):
        wait_for_card("Virtual PCD 00 01", timeout=0.3)
    assert time.monotonic() - started < 2


def test_wait_for_card_returns_when_the_card_goes_in(pcscd: object) -> None:
    card = ScriptedCard()
    bridge = VpcdBridge(None)
    bridge.start()
    try:
        # Insert after the wait has begun, from another thread's point of view.
        started = time.monotonic()
        timer = __import__("threading").Timer(0.3, bridge.insert_card, args=(card,))
        timer.start()
        info = wait_for_card(VPCD_READER, timeout=5)
        assert info.card_present and info.atr == SCRIPTED_ATR
        assert time.monotonic() - started >= 0.3
    finally:
        bridge.stop()
        wait_for_empty_reader(VPCD_READER)


def test_card_monitor_reports_insert_and_remove(pcscd: object) -> None:
    card = ScriptedCard()
    bridge = VpcdBridge(None)
    bridge.start()
    seen: list[tuple[CardEventKind, str]] = []
    try:
        with CardMonitor() as monitor:
            monitor.subscribe(lambda event: seen.append((event.kind, event.reader)))
            initial = list(monitor.events(timeout=0.2))
            assert {(e.kind, e.reader) for e in initial} >= {
                (CardEventKind.READER_ADDED, VPCD_READER)
            }
            bridge.insert_card(card)
            inserted = monitor.get(timeout=5)
            assert inserted is not None
            assert (inserted.kind, inserted.reader) == (CardEventKind.CARD_INSERTED, VPCD_READER)
            assert inserted.atr == SCRIPTED_ATR
            bridge.remove_card()
            removed = monitor.get(timeout=5)
            assert removed is not None
            assert (removed.kind, removed.reader) == (CardEventKind.CARD_REMOVED, VPCD_READER)
        assert not monitor.running
        assert (CardEventKind.CARD_INSERTED, VPCD_READER) in seen
        assert (CardEventKind.CARD_REMOVED, VPCD_READER) in seen
    finally:
        bridge.stop()
        wait_for_empty_reader(VPCD_READER)


def test_card_monitor_reports_a_card_already_present(scripted_bridge: VpcdBridge) -> None:
    with CardMonitor() as monitor:
        events = list(monitor.events(timeout=0.2))
    assert any(
        event.kind is CardEventKind.CARD_INSERTED and event.reader == VPCD_READER
        for event in events
    )


def test_card_monitor_stops_promptly(pcscd: object) -> None:
    monitor = CardMonitor()
    monitor.start()
    started = time.monotonic()
    monitor.stop()
    assert not monitor.running
    assert time.monotonic() - started < 1.5


def test_round_trips_are_fast_thanks_to_quickack(scripted_bridge: VpcdBridge) -> None:
    # docs/testing.md: without TCP_QUICKACK each APDU through vpcd stalls about 48 ms.
    with PcscConnection.open(VPCD_READER) as connection:
        started = time.monotonic()
        for _ in range(100):
            connection.transmit(SELECT_JPKI_AP)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"100 APDUs took {elapsed:.2f} s; the latency fix is not working"
