"""NfcConnection over nfcpy's real frontend and ISO-DEP code, with a radio that reaches the
virtual card (docs/readers.md §2: the RC-S380 on Linux)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mynakit.card.jpki import JpkiAp
from mynakit.card.readout import ReadoutSecrets, standard_readout
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.errors import UsageError
from mynakit.transport.base import CardRemovedError, NoCardError
from mynakit.transport.limits import protocol_for
from mynakit.transport.nfc import NfcConnection, nfc_path, synthesised_atr
from mynakit.transport.readers import CardEventKind
from support.nfc_radio import EXPECTED_ATR, SENSB_RES, VirtualCardRadio, frontend_with

pytestmark = pytest.mark.emulator


def test_reader_paths() -> None:
    assert nfc_path("nfc:usb") == "usb"
    assert nfc_path("nfc:") == "usb"
    assert nfc_path("nfc:usb:054c:06c1") == "usb:054c:06c1"
    with pytest.raises(UsageError):
        nfc_path("nfc:tty:S0")


def test_atr_is_synthesised_from_atqb_as_pc_sc_part_3_readers_do() -> None:
    assert synthesised_atr(SENSB_RES) == EXPECTED_ATR


def test_connects_and_carries_long_apdus_with_iso_dep_chaining(virtual_card: VirtualCard) -> None:
    radio = VirtualCardRadio(virtual_card)
    with NfcConnection.on_frontend(frontend_with(radio)) as connection:
        assert connection.atr == EXPECTED_ATR
        jpki = JpkiAp.open(protocol_for(connection))
        certificate = jpki.read_certificate("auth")
    # One extended READ BINARY brought the whole certificate, in chained 253-byte frames.
    reads = [apdu for apdu in radio.apdus if apdu[1] == 0xB0]
    assert len(reads) == 2  # token, then the certificate whole
    chained = [frame for frame in radio.frames if frame[0] & 0xF6 == 0xA2]
    assert len(chained) == -(-(len(certificate) + 2) // 253) - 1


def test_no_card_is_a_clear_error(virtual_card: VirtualCard) -> None:
    radio = VirtualCardRadio(None)
    with pytest.raises(NoCardError, match="place the My Number card"):
        NfcConnection.on_frontend(frontend_with(radio), timeout=0)


def test_removal_mid_operation_is_card_removed(virtual_card: VirtualCard) -> None:
    radio = VirtualCardRadio(virtual_card)
    connection = NfcConnection.on_frontend(frontend_with(radio))
    jpki = JpkiAp.open(protocol_for(connection))
    radio.remove()
    with pytest.raises(CardRemovedError):
        jpki.read_certificate("auth")
    assert not connection.card_present()


def test_presence_and_removal_events(make_virtual_card: Callable[..., VirtualCard]) -> None:
    card = make_virtual_card()
    radio = VirtualCardRadio(card)
    connection = NfcConnection.on_frontend(frontend_with(radio))
    events = connection.events(poll_seconds=0)
    radio.remove()
    removed = next(events)
    assert removed.kind is CardEventKind.CARD_REMOVED
    radio.insert(card)
    inserted = next(events)
    assert inserted.kind is CardEventKind.CARD_INSERTED
    assert inserted.atr == EXPECTED_ATR
    # The card was powered up again: a fresh session works on it.
    assert JpkiAp.open(protocol_for(connection)).token().label == "JPKIAPICCTOKEN2"


def test_reset_reactivates_the_card(virtual_card: VirtualCard) -> None:
    radio = VirtualCardRadio(virtual_card)
    connection = NfcConnection.on_frontend(frontend_with(radio))
    JpkiAp.open(protocol_for(connection))
    assert connection.reset() == EXPECTED_ATR
    assert connection.transmit(bytes.fromhex("00B0860004"))[-2:] != b"\x90\x00"  # no AP selected


def test_standard_readout_over_nfc_takes_the_fewest_apdus(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    radio = VirtualCardRadio(virtual_card)
    connection = NfcConnection.on_frontend(frontend_with(radio))
    secrets = ReadoutSecrets(persona.auth_pin, persona.sign_password, persona.text_pin)
    readout = standard_readout(protocol_for(connection), secrets)
    assert not readout.skipped
    assert len(radio.apdus) == 35  # README: readers table, nfc:usb row
