"""TextAp, VisualAp and CommonAp on the in-process virtual card (docs/card.md §6.2-§6.11,
§7.9-§7.14): access rules per credential, integrity and signature checks, PIN safety."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from mynakit.card.common import CommonAp
from mynakit.card.cv_certificate import CardCaKeys
from mynakit.card.errors import (
    LastTryRefusedError,
    PinBlockedError,
    PinRequiredError,
    WrongPinError,
)
from mynakit.card.text import TextAp
from mynakit.card.visual import JP2_SIGNATURE, PNG_SIGNATURE, VisualAp
from mynakit.emulator.card_files import CARD_CA_TEXT_KEY_NUMBER, CARD_CA_VISUAL_KEY_NUMBER, key_id
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.errors import UsageError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.transport.in_process import InProcessConnection
from mynakit.transport.trace import REDACTED, TracingConnection

pytestmark = pytest.mark.emulator


def wrong(value: str) -> str:
    return value[:-1] + ("0" if value[-1] != "0" else "1")


@pytest.fixture
def protocol(virtual_card_connection: InProcessConnection) -> ApduProtocol:
    return ApduProtocol(virtual_card_connection, extended_length=True)


@pytest.fixture
def sandbox_card_ca(virtual_card: VirtualCard) -> CardCaKeys:
    key = virtual_card.state.card_ca_public_key()
    assert key is not None
    return {key_id(CARD_CA_TEXT_KEY_NUMBER): [key], key_id(CARD_CA_VISUAL_KEY_NUMBER): [key]}


def counters(card: VirtualCard) -> dict[tuple[str, int], int]:
    return {ref: record.tries_left for ref, record in card.state.pins.items()}


# -- text AP --------------------------------------------------------------------------------------


def test_my_number_with_the_text_pin(protocol: ApduProtocol, persona: Persona) -> None:
    assert TextAp(protocol).my_number(persona.text_pin) == persona.my_number


def test_my_number_with_check_code_a(protocol: ApduProtocol, persona: Persona) -> None:
    session = TextAp(protocol)
    assert session.unlock(persona.check_code_a) == "check_code_a"
    assert session.my_number() == persona.my_number


def test_basic_info_with_the_text_pin_and_with_check_code_b(
    protocol: ApduProtocol, persona: Persona
) -> None:
    assert TextAp(protocol).basic_info(persona.text_pin) == persona.basic_info
    assert TextAp(protocol).basic_info(persona.check_code_b) == persona.basic_info


def test_check_code_a_does_not_open_basic_info_and_costs_nothing(
    protocol: ApduProtocol, persona: Persona, virtual_card: VirtualCard
) -> None:
    before = counters(virtual_card)
    with pytest.raises(UsageError, match="opens with"):
        TextAp(protocol).basic_info(persona.check_code_a)
    with pytest.raises(UsageError, match="opens with"):
        TextAp(protocol).my_number(persona.check_code_b)
    assert counters(virtual_card) == before


def test_reading_without_a_credential_is_refused_up_front(protocol: ApduProtocol) -> None:
    session = TextAp(protocol)
    with pytest.raises(PinRequiredError, match="text PIN"):
        session.my_number()
    with pytest.raises(PinRequiredError):
        session.basic_info()


def test_malformed_check_code_a_costs_nothing(
    protocol: ApduProtocol, persona: Persona, virtual_card: VirtualCard
) -> None:
    before = counters(virtual_card)
    with pytest.raises(UsageError, match="check digit"):
        TextAp(protocol).unlock(wrong(persona.check_code_a))
    with pytest.raises(UsageError, match="text PIN"):
        TextAp(protocol).unlock("12345")
    assert counters(virtual_card) == before


def test_text_pin_status_spends_nothing(protocol: ApduProtocol, virtual_card: VirtualCard) -> None:
    before = counters(virtual_card)
    statuses = {status.key_name: status for status in TextAp(protocol).pin_status()}
    assert set(statuses) == {"text_pin", "check_code_a", "check_code_b"}
    assert statuses["text_pin"].tries_left == statuses["text_pin"].max_tries
    assert counters(virtual_card) == before


def test_text_pin_counts_down_and_refuses_the_last_try(
    protocol: ApduProtocol, persona: Persona
) -> None:
    session = TextAp(protocol)
    remaining = [
        _wrong_attempt(session, persona.text_pin)
        for _ in range(session.application.key("text_pin").tries - 1)
    ]
    assert remaining == list(range(len(remaining), 0, -1))
    with pytest.raises(LastTryRefusedError):
        session.my_number(persona.text_pin)
    assert session.my_number(persona.text_pin, force=True) == persona.my_number


def _wrong_attempt(session: TextAp, pin: str) -> int:
    with pytest.raises(WrongPinError) as raised:
        session.unlock(wrong(pin))
    return raised.value.tries_left


def test_integrity_verifies_with_the_text_pin(
    protocol: ApduProtocol, persona: Persona, sandbox_card_ca: CardCaKeys
) -> None:
    check = TextAp(protocol).verify_integrity(persona.text_pin, trusted_card_ca=sandbox_card_ca)
    assert check.ok and check.signature_valid and check.chain_verified
    assert check.my_number_digest_matches is True
    assert check.basic_info_digest_matches is True
    assert check.to_dict()["ok"] is True


def test_integrity_without_a_trusted_card_ca_says_chain_not_verified(
    protocol: ApduProtocol, persona: Persona
) -> None:
    check = TextAp(protocol).verify_integrity(persona.text_pin)
    assert check.ok and not check.chain_verified
    assert "chain not verified" in check.note


def test_integrity_with_check_code_a_checks_only_the_my_number(
    protocol: ApduProtocol, persona: Persona
) -> None:
    check = TextAp(protocol).verify_integrity(persona.check_code_a)
    assert check.my_number_digest_matches is True
    assert check.basic_info_digest_matches is None  # check code A does not open EF 0002


def test_integrity_detects_a_changed_basic_info_file(
    virtual_card: VirtualCard, persona: Persona, sandbox_card_ca: CardCaKeys
) -> None:
    ref = ("text", 0x0002)
    data = bytearray(virtual_card.state.files[ref])
    position = data.index(b"\xdf\x25\x01") + 3
    data[position] = ord("2" if data[position] != ord("2") else "1")  # another sex code
    virtual_card.state.files[ref] = bytes(data)
    protocol = ApduProtocol(InProcessConnection(virtual_card), extended_length=True)
    check = TextAp(protocol).verify_integrity(persona.text_pin, trusted_card_ca=sandbox_card_ca)
    assert check.basic_info_digest_matches is False
    assert check.my_number_digest_matches is True
    assert not check.ok


def test_text_ap_basic_info_and_certificate(protocol: ApduProtocol) -> None:
    session = TextAp(protocol)
    info = session.ap_basic_info()
    assert (info.spec_version, info.extended_length) == (1, 3)
    certificate = session.ap_certificate()
    assert certificate.issuer_key_id == key_id(CARD_CA_TEXT_KEY_NUMBER)


def test_change_text_pin(protocol: ApduProtocol, persona: Persona) -> None:
    session = TextAp(protocol)
    session.change_pin(persona.text_pin, "9876" if persona.text_pin != "9876" else "6789")
    session.select()
    with pytest.raises(WrongPinError):
        session.unlock(persona.text_pin)


# -- visual AP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["check_code_a", "check_code_b"])
def test_card_face_with_either_check_code(
    protocol: ApduProtocol, persona: Persona, sandbox_card_ca: CardCaKeys, code: str
) -> None:
    session = VisualAp(protocol)
    face = session.entries(getattr(persona, code))
    assert face.birth_date == persona.birth_date
    assert face.sex is persona.sex
    assert face.expiry_date == persona.card_expiry
    assert face.photo.startswith(JP2_SIGNATURE)
    assert face.name_image.startswith(PNG_SIGNATURE)
    assert face.address_image.startswith(PNG_SIGNATURE)
    assert face.security_code_image.startswith(PNG_SIGNATURE)
    check = session.verify_face_signature(face, trusted_card_ca=sandbox_card_ca)
    assert check.signature_valid and check.chain_verified


def test_card_face_signature_fails_on_a_changed_photo(
    protocol: ApduProtocol, persona: Persona
) -> None:
    session = VisualAp(protocol)
    face = session.entries(persona.check_code_a)
    groups = (face.signed_groups[0], face.signed_groups[1], face.signed_groups[2] + b"\x00")
    check = session.verify_face_signature(replace(face, signed_groups=groups))
    assert not check.signature_valid


def test_card_face_needs_a_check_code(protocol: ApduProtocol, persona: Persona) -> None:
    session = VisualAp(protocol)
    with pytest.raises(PinRequiredError):
        session.entries()
    with pytest.raises(UsageError):
        session.entries(persona.text_pin)  # 4 digits: not a visual AP credential


def test_age_record(protocol: ApduProtocol, persona: Persona, sandbox_card_ca: CardCaKeys) -> None:
    session = VisualAp(protocol)
    record = session.age_record(persona.birth_date_code)
    assert record.birth_date == persona.birth_date
    check = session.verify_age_record(record, trusted_card_ca=sandbox_card_ca)
    assert check.signature_valid and check.chain_verified


def test_wrong_birth_date_code_counts_down(protocol: ApduProtocol, persona: Persona) -> None:
    session = VisualAp(protocol)
    maximum = session.application.key("birth_date_code").tries
    with pytest.raises(WrongPinError) as raised:
        session.age_record(wrong(persona.birth_date_code))
    assert raised.value.tries_left == maximum - 1


def test_visual_pin_status_and_basic_info(
    protocol: ApduProtocol, persona: Persona, virtual_card: VirtualCard
) -> None:
    session = VisualAp(protocol)
    before = counters(virtual_card)
    assert {status.key_id for status in session.pin_status()} == {0x13, 0x12}
    assert counters(virtual_card) == before
    info = session.ap_basic_info()
    assert info.municipality_code == persona.municipality_code
    assert info.ap_id == bytes.fromhex("06030E01")


def test_blocked_check_code_b(
    make_virtual_card: Callable[..., VirtualCard], persona: Persona
) -> None:
    card = make_virtual_card()
    card.state.block("visual", "check_code_b")
    session = VisualAp(ApduProtocol(InProcessConnection(card), extended_length=True))
    with pytest.raises(PinBlockedError):
        session.entries(persona.check_code_b)


# -- common AP ------------------------------------------------------------------------------------


def test_common_card_info(protocol: ApduProtocol, persona: Persona) -> None:
    info = CommonAp(protocol).card_info()
    assert info.serial == persona.card_serial
    assert info.municipality_code == persona.municipality_code
    assert info.expiry_date == persona.card_expiry
    assert info.manufacture_number == persona.card_serial[2:15]


def test_change_card_pin_uses_change_key(virtual_card: VirtualCard, persona: Persona) -> None:
    traced = TracingConnection(InProcessConnection(virtual_card))
    session = CommonAp(ApduProtocol(traced, extended_length=True))
    assert session.pin_status()[0].tries_left == session.application.key("card_pin").tries
    new = wrong(persona.card_pin)
    session.change_pin(persona.card_pin, new)
    last = traced.counter.commands[-1]
    assert not isinstance(last, bytes) and (last.cla, last.ins, last.p1, last.p2) == (
        0x80,
        0x32,
        0x00,
        0x80,
    )
    assert virtual_card.state.pins[("common", 0x1C)].value == new.encode()


# -- the trace never shows personal data ----------------------------------------------------------


def test_extended_reads_of_personal_files_are_redacted(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    lines: list[str] = []
    traced = TracingConnection(InProcessConnection(virtual_card), sink=lines.append)
    protocol = ApduProtocol(traced, extended_length=True)
    TextAp(protocol).basic_info(persona.text_pin)
    text = "\n".join(lines)
    assert REDACTED in text
    assert persona.name.encode("utf-8").hex(" ").upper()[:20] not in text
    assert persona.text_pin.encode().hex(" ").upper() not in text


def test_short_reads_of_the_card_face_are_redacted(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    lines: list[str] = []
    traced = TracingConnection(InProcessConnection(virtual_card), sink=lines.append)
    face = VisualAp(ApduProtocol(traced, extended_length=False)).entries(persona.check_code_a)
    text = "\n".join(lines)
    assert face.photo[300:320].hex(" ").upper() not in text
