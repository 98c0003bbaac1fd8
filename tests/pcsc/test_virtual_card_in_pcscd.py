"""The virtual My Number card behind pcscd: what pyscard and OpenSC see of it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from smartcard.System import readers as pyscard_readers

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.faults import Faults
from mynakit.emulator.pcscd import VPCD_READER, card_in_virtual_reader
from mynakit.emulator.vpcd import VpcdBridge
from mynakit.profiles import load_profile
from mynakit.transport.base import CardRemovedError
from mynakit.transport.pcsc import PcscConnection
from mynakit.transport.readers import CardEventKind, CardMonitor

pytestmark = pytest.mark.pcsc

SELECT_JPKI_AP = bytes.fromhex("00A4040C0AD392F000260100000001")  # docs/card.md §7.1
SELECT_TOKEN_EF = bytes.fromhex("00A4020C020006")
READ_TOKEN_LABEL = bytes.fromhex("00B0000020")
PLASTIC_CARD_LABEL = b"JPKIAPICCTOKEN2".ljust(32)  # docs/card.md §6.10


def test_pyscard_sees_the_virtual_card_with_the_profile_atr(pcsc_virtual_reader: str) -> None:
    assert pcsc_virtual_reader == VPCD_READER
    reader = next(r for r in pyscard_readers() if str(r) == VPCD_READER)
    connection = reader.createConnection()
    connection.connect()
    try:
        assert bytes(connection.getATR()) == load_profile().atr
    finally:
        connection.disconnect()


def test_select_jpki_ap_and_read_the_token_through_pcscd(
    pcsc_connection: PcscConnection,
) -> None:
    assert pcsc_connection.transmit(SELECT_JPKI_AP) == b"\x90\x00"
    assert pcsc_connection.transmit(SELECT_TOKEN_EF) == b"\x90\x00"
    assert pcsc_connection.transmit(READ_TOKEN_LABEL) == PLASTIC_CARD_LABEL + b"\x90\x00"


def test_removal_fault_mid_command_reaches_the_application(
    pcscd: object, make_virtual_card: Callable[..., VirtualCard]
) -> None:
    card = make_virtual_card(faults=Faults(remove_after=1, remove_mid_command=True))
    with card_in_virtual_reader(card) as bridge, PcscConnection.open(VPCD_READER) as connection:
        assert connection.transmit(SELECT_JPKI_AP) == b"\x90\x00"
        with pytest.raises(CardRemovedError):
            connection.transmit(SELECT_TOKEN_EF)
        assert bridge.card is None


def test_a_quick_pull_and_reinsert_is_seen_as_both_events(
    pcsc_vpcd_bridge: VpcdBridge, virtual_card: VirtualCard
) -> None:
    # Faster than pcscd's 0.4 s presence poll: the bridge must still let pcscd see the removal.
    with CardMonitor(initial_events=False) as monitor:
        pcsc_vpcd_bridge.remove_card()
        pcsc_vpcd_bridge.insert_card(virtual_card)
        removed, inserted = monitor.get(timeout=5), monitor.get(timeout=5)
    assert removed is not None and removed.kind is CardEventKind.CARD_REMOVED
    assert inserted is not None and inserted.kind is CardEventKind.CARD_INSERTED
    with PcscConnection.open(VPCD_READER) as connection:
        assert connection.transmit(SELECT_JPKI_AP) == b"\x90\x00"


def run_tool(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(arguments, capture_output=True, text=True, timeout=60, check=False)


def test_opensc_lists_the_virtual_reader_with_a_card(pcsc_virtual_reader: str) -> None:
    result = run_tool("opensc-tool", "--list-readers")
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if VPCD_READER in line)
    assert "Yes" in line.split()  # the "Card" column


def test_opensc_names_the_card_jpki(pcsc_virtual_reader: str) -> None:
    result = run_tool("opensc-tool", "--reader", pcsc_virtual_reader, "--name")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "jpki"
