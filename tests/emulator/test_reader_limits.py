"""Readers with the documented limits of docs/readers.md §2 (RC-S300, ACR122U, the ACR1251
contact slot, a PIN pad): limits are learnt before the first large read, every card command
works, and every certificate and image comes in the fewest APDUs that reader allows."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mynakit.card.errors import LastTryRefusedError, PinBlockedError, WrongPinError
from mynakit.card.jpki import JpkiAp
from mynakit.card.readout import ReadoutSecrets, standard_readout
from mynakit.card.text import TextAp
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.errors import TransportError, UsageError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.transport.limits import ReaderLimits, limits_of, protocol_for
from mynakit.transport.trace import TracingConnection
from support.scripted_readers import (
    ACS_ACR122U,
    ACS_ACR1251_CONTACT,
    ACS_ACR1251_CONTACT_SILENT,
    MODELS,
    PIN_PAD_READER,
    SONY_RC_S300,
    ReaderModel,
    ScriptedReader,
    fewest_reads,
)

pytestmark = pytest.mark.emulator

# Files the read-out reads with a READ BINARY loop (certificates and images); the others have a
# profile size or are records.
LARGE_FILES = (
    "jpki/auth_certificate",
    "jpki/auth_ca_certificate",
    "jpki/sign_ca_certificate",
    "jpki/sign_certificate",
    "visual/card_face",
    "visual/my_number_image",
)

# APDUs of the whole standard read-out with every PIN given, per reader (README table).
EXPECTED_READOUT_APDUS = {
    SONY_RC_S300.name: 50,
    ACS_ACR122U.name: 71,
    ACS_ACR1251_CONTACT.name: 71,
    PIN_PAD_READER.name: 35,
}


def secrets_of(persona: Persona) -> ReadoutSecrets:
    return ReadoutSecrets(persona.auth_pin, persona.sign_password, persona.text_pin)


@pytest.mark.parametrize(
    ("model", "max_response", "extended"),
    [
        (SONY_RC_S300, 510, True),  # 522-byte CCID message - 10 header - 2 SW
        (ACS_ACR122U, 256, False),
        (ACS_ACR1251_CONTACT, 256, False),
        (PIN_PAD_READER, 65536, True),
    ],
)
def test_limits_are_learnt_when_the_connection_opens(
    virtual_card: VirtualCard, model: ReaderModel, max_response: int, extended: bool
) -> None:
    reader = ScriptedReader(model, virtual_card)
    assert reader.limits.max_response_data == max_response
    assert reader.extended_length is extended
    protocol = protocol_for(TracingConnection(reader))
    assert protocol.extended_length is extended
    assert protocol.max_response_length == max_response
    assert reader.exchanges == []  # learnt without a single APDU


def test_silent_reader_has_unknown_limits(virtual_card: VirtualCard) -> None:
    reader = ScriptedReader(ACS_ACR1251_CONTACT_SILENT, virtual_card)
    assert reader.limits == ReaderLimits(source="unknown")
    assert reader.extended_length is None


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.name)
def test_readout_in_the_fewest_apdus_the_reader_allows(
    make_virtual_card: Callable[..., VirtualCard], persona: Persona, model: ReaderModel
) -> None:
    reader = ScriptedReader(model, make_virtual_card(), typed_pin=persona.auth_pin)
    traced = TracingConnection(reader)
    readout = standard_readout(protocol_for(traced), secrets_of(persona))
    assert reader.failed_exchanges == []  # nothing was sent that the reader cannot carry
    assert not readout.skipped
    # Each large file took exactly as many READ BINARY commands as its size needs here.
    reads: dict[str, int] = {}
    current: str | None = None
    application = ""
    by_aid = {app.aid: app for app in reader.card.profile.applications.values()}
    for command in reader.exchanges:
        if command[1] == 0xA4 and command[2] == 0x04:
            application = by_aid[command[5 : 5 + command[4]]].name
        elif command[1] == 0xB0:
            if command[2] & 0x80:
                file = by_aid_file(reader, application, command[2] & 0x1F)
                current = f"{application}/{file}"
            assert current is not None
            reads[current] = reads.get(current, 0) + 1
    for name in LARGE_FILES:
        assert reads[name] == fewest_reads(readout.files[name], reader.limits), name
    assert len(reader.exchanges) == EXPECTED_READOUT_APDUS[model.name]


def by_aid_file(reader: ScriptedReader, application: str, file_id: int) -> str:
    profile = reader.card.profile
    return str(profile.application(application).files[file_id].name)


def test_every_card_command_works_on_each_reader(
    make_virtual_card: Callable[..., VirtualCard], persona: Persona
) -> None:
    for model in MODELS:
        reader = ScriptedReader(model, make_virtual_card())
        jpki = JpkiAp.open(protocol_for(reader))
        jpki.verify_auth_pin(persona.auth_pin)
        signature = jpki.sign_digest("auth", "sha256", bytes(32))
        assert len(signature) == 256
        jpki.verify_sign_password(persona.sign_password)
        assert jpki.read_certificate("sign")
        jpki.change_pin(persona.auth_pin, "9876", key="auth_pin")
        assert reader.failed_exchanges == [], model.name


def test_transport_error_on_an_extended_read_falls_back_to_short_apdus(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    reader = ScriptedReader(ACS_ACR1251_CONTACT_SILENT, virtual_card)
    protocol = protocol_for(reader)
    jpki = JpkiAp.open(protocol)
    certificate = jpki.read_certificate("auth")
    assert len(reader.failed_exchanges) == 1  # the one extended probe, never sent again
    assert reader.failed_exchanges[0][1] == 0xB0
    assert protocol.extended_length is False
    reads = [command for command in reader.exchanges if command[1] == 0xB0]
    # token (1) + the certificate in 256-byte reads, the failed probe resent once as short
    assert len(reads) == 1 + fewest_reads(len(certificate), ReaderLimits(max_apdu_data=0))
    assert jpki.read_certificate("auth_ca")
    assert len(reader.failed_exchanges) == 1


def test_silent_reader_readout_costs_one_failed_probe(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    reader = ScriptedReader(ACS_ACR1251_CONTACT_SILENT, virtual_card)
    readout = standard_readout(protocol_for(reader), secrets_of(persona))
    assert not readout.skipped
    assert len(reader.failed_exchanges) == 1
    assert len(reader.exchanges) + len(reader.failed_exchanges) == 72  # README table


def test_transport_error_on_an_extended_non_read_is_not_resent(virtual_card: VirtualCard) -> None:
    reader = ScriptedReader(ACS_ACR1251_CONTACT_SILENT, virtual_card)
    protocol = ApduProtocol(reader, extended_length=None)
    JpkiAp(protocol)  # SELECT
    with pytest.raises(TransportError):
        # An extended signature command (300 data bytes): refused by the reader, not resent.
        protocol.send(0x80, 0x2A, 0x00, 0x97, bytes(300), 256)
    assert [command[1] for command in reader.failed_exchanges] == [0x2A]
    assert all(command[1] != 0x2A for command in reader.exchanges)
    assert protocol.extended_length is False


def test_limits_of_a_connection_without_reader_facts(virtual_card: VirtualCard) -> None:
    from mynakit.transport.in_process import InProcessConnection

    assert limits_of(InProcessConnection(virtual_card)).extended_length is True


# -- PIN pad (PC/SC part 10 FEATURE_VERIFY_PIN_DIRECT) -----------------------------------------


def test_pin_pad_verify_sends_a_well_formed_structure_and_never_the_pin_through_the_host(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    reader = ScriptedReader(PIN_PAD_READER, virtual_card, typed_pin=persona.auth_pin)
    lines: list[str] = []
    traced = TracingConnection(reader, sink=lines.append)
    jpki = JpkiAp.open(protocol_for(traced))
    assert traced.pin_pad is not None
    jpki.verify_on_pin_pad("auth_pin", traced.pin_pad)
    assert reader.structure_errors == []
    assert reader.pin_structures == [
        bytes.fromhex("1E 00 82 00 00 04 04 02 01 11 04 00 000000 05000000 00 20 00 98 00")
    ]
    # The host sent the retry query (empty VERIFY) and nothing with the PIN in it.
    pin_bytes = persona.auth_pin.encode("ascii")
    verifies = [command for command in reader.exchanges if command[1] == 0x20]
    assert verifies == [bytes.fromhex("00 20 00 98")]
    assert all(pin_bytes not in command[4:] for command in reader.exchanges)
    assert jpki.is_verified("auth_pin")
    assert "> 00 20 00 98 (PIN typed on the reader's keypad)" in lines
    assert "< 9000" in lines
    assert len(jpki.sign_digest("auth", "sha256", bytes(32))) == 256


def test_pin_pad_wrong_pin_counts_down_and_the_last_try_is_guarded(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    wrong_pin = "0000" if persona.auth_pin != "0000" else "1111"
    reader = ScriptedReader(PIN_PAD_READER, virtual_card, typed_pin=wrong_pin)
    jpki = JpkiAp.open(protocol_for(reader))
    pin_pad = reader.pin_pad
    assert pin_pad is not None
    with pytest.raises(WrongPinError) as first:
        jpki.verify_on_pin_pad("auth_pin", pin_pad)
    assert first.value.tries_left == 2
    with pytest.raises(WrongPinError):
        jpki.verify_on_pin_pad("auth_pin", pin_pad)
    structures = len(reader.pin_structures)
    with pytest.raises(LastTryRefusedError):
        jpki.verify_on_pin_pad("auth_pin", pin_pad)
    assert len(reader.pin_structures) == structures  # the keypad was not even asked
    reader.typed_pin = persona.auth_pin
    jpki.verify_on_pin_pad("auth_pin", pin_pad, force=True)
    assert jpki.is_verified("auth_pin")


def test_pin_pad_refuses_a_blocked_key_before_asking(
    make_virtual_card: Callable[..., VirtualCard], persona: Persona
) -> None:
    from mynakit.emulator.faults import Faults

    card = make_virtual_card(faults=Faults(blocked=(("jpki", "auth_pin"),)))
    reader = ScriptedReader(PIN_PAD_READER, card, typed_pin=persona.auth_pin)
    jpki = JpkiAp.open(protocol_for(reader))
    assert reader.pin_pad is not None
    with pytest.raises(PinBlockedError):
        jpki.verify_on_pin_pad("auth_pin", reader.pin_pad)
    assert reader.pin_structures == []


def test_pin_pad_is_not_used_for_a_password_with_letters(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    reader = ScriptedReader(PIN_PAD_READER, virtual_card, typed_pin=persona.text_pin)
    jpki = JpkiAp.open(protocol_for(reader))
    assert reader.pin_pad is not None
    with pytest.raises(UsageError, match="letters"):
        jpki.verify_on_pin_pad("sign_password", reader.pin_pad)
    text = TextAp(protocol_for(reader))
    text.verify_on_pin_pad("text_pin", reader.pin_pad)
    assert text.my_number() == persona.my_number


def test_readers_without_a_keypad_offer_none(virtual_card: VirtualCard) -> None:
    for model in (SONY_RC_S300, ACS_ACR122U, ACS_ACR1251_CONTACT):
        assert ScriptedReader(model, virtual_card).pin_pad is None


def test_cli_verify_uses_the_pin_pad_when_the_reader_has_one(
    virtual_card: VirtualCard, persona: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mynakit.cli.util import verify_from_user

    monkeypatch.delenv("MYNAKIT_AUTH_PIN", raising=False)
    reader = ScriptedReader(PIN_PAD_READER, virtual_card, typed_pin=persona.auth_pin)
    jpki = JpkiAp.open(protocol_for(TracingConnection(reader)))
    verify_from_user(jpki, "auth_pin", from_stdin=False, force=False)
    assert jpki.is_verified("auth_pin")
    assert len(reader.pin_structures) == 1  # typed on the keypad, no prompt on the host


def test_cli_verify_prefers_a_pin_given_by_a_script(
    virtual_card: VirtualCard, persona: Persona, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mynakit.cli.util import verify_from_user

    monkeypatch.setenv("MYNAKIT_AUTH_PIN", persona.auth_pin)
    reader = ScriptedReader(PIN_PAD_READER, virtual_card, typed_pin="0000")
    jpki = JpkiAp.open(protocol_for(reader))
    verify_from_user(jpki, "auth_pin", from_stdin=False, force=False)
    assert jpki.is_verified("auth_pin")
    assert reader.pin_structures == []
