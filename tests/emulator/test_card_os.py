"""The virtual card OS answers every command of docs/card.md §5/§7 with the status words
of docs/card.md §8, byte for byte."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.personas import Persona
from mynakit.emulator.state import CardState
from mynakit.profiles import load_profile, with_choices

pytestmark = pytest.mark.emulator

PROFILE = load_profile()
MakeCard = Callable[..., VirtualCard]
JPKI = PROFILE.application("jpki").aid
TEXT = PROFILE.application("text").aid
VISUAL = PROFILE.application("visual").aid
COMMON = PROFILE.application("common").aid
JUKI = PROFILE.application("juki").aid
ISD = bytes.fromhex("A0000001510000")
DIGEST_INFO = bytes.fromhex("3031300D060960864801650304020105000420") + bytes(range(32))


def send(card: VirtualCard, command: bytes | str) -> tuple[bytes, int]:
    raw = bytes.fromhex(command.replace(" ", "")) if isinstance(command, str) else command
    response = card.execute(raw)
    return response[:-2], int.from_bytes(response[-2:], "big")


def sw(card: VirtualCard, command: bytes | str) -> int:
    return send(card, command)[1]


def select_df(card: VirtualCard, aid: bytes) -> int:
    return sw(card, bytes((0x00, 0xA4, 0x04, 0x0C, len(aid))) + aid)


def select_ef(card: VirtualCard, file_id: int) -> int:
    return sw(card, bytes((0x00, 0xA4, 0x02, 0x0C, 0x02)) + file_id.to_bytes(2, "big"))


def verify(card: VirtualCard, value: str | None, p2: int = 0x80) -> int:
    if value is None:
        return sw(card, bytes((0x00, 0x20, 0x00, p2)))
    data = value.encode("ascii")
    return sw(card, bytes((0x00, 0x20, 0x00, p2, len(data))) + data)


# -- SELECT -----------------------------------------------------------------------------------


@pytest.mark.parametrize("aid", [JPKI, TEXT, VISUAL, COMMON, JUKI])
def test_select_each_ap_by_name(virtual_card: VirtualCard, aid: bytes) -> None:
    assert send(virtual_card, bytes((0x00, 0xA4, 0x04, 0x0C, len(aid))) + aid) == (b"", 0x9000)
    # P2=00 (FCI requested) is accepted too, still without data.
    assert send(virtual_card, bytes((0x00, 0xA4, 0x04, 0x00, len(aid))) + aid) == (b"", 0x9000)


def test_select_unknown_ap_is_6a82(virtual_card: VirtualCard) -> None:
    assert select_df(virtual_card, bytes.fromhex("D392F000260100000099")) == 0x6A82


def test_select_by_aid_prefix_per_jicsap(virtual_card: VirtualCard) -> None:
    assert select_df(virtual_card, JPKI[:6]) == 0x9000
    assert select_ef(virtual_card, 0x0006) == 0x9000  # the JPKI AP is current


def test_prefix_selection_can_be_switched_off(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(profile=with_choices(PROFILE, select_by_aid_prefix=False))
    assert select_df(card, JPKI[:6]) == 0x6A82


def test_select_mf_after_reset_is_6a86_then_9000_without_changing_df(
    virtual_card: VirtualCard,
) -> None:
    assert sw(virtual_card, "00 A4 00 00") == 0x6A86
    assert select_df(virtual_card, JPKI) == 0x9000
    assert sw(virtual_card, "00 A4 00 00") == 0x9000
    assert select_ef(virtual_card, 0x0006) == 0x9000  # still in the JPKI AP
    virtual_card.reset()
    assert sw(virtual_card, "00 A4 00 00") == 0x6A86


def test_select_3f00_is_6a82(virtual_card: VirtualCard) -> None:
    assert select_df(virtual_card, JPKI) == 0x9000
    assert sw(virtual_card, "00 A4 00 0C 02 3F 00") == 0x6A82
    assert select_ef(virtual_card, 0x3F00) == 0x6A82


def test_selecting_the_isd_restores_the_power_on_state(virtual_card: VirtualCard) -> None:
    assert select_df(virtual_card, JPKI) == 0x9000
    assert select_df(virtual_card, ISD) == 0x9000
    assert sw(virtual_card, "00 A4 00 00") == 0x6A86
    assert select_ef(virtual_card, 0x0006) == 0x6A82


def test_select_ef_absent_under_current_df_is_6a82(virtual_card: VirtualCard) -> None:
    assert select_ef(virtual_card, 0x0006) == 0x6A82  # no AP selected yet
    assert select_df(virtual_card, TEXT) == 0x9000
    assert select_ef(virtual_card, 0x0006) == 0x6A82  # the token is in the JPKI AP only
    assert select_ef(virtual_card, 0x0002) == 0x9000
    assert select_ef(virtual_card, 0x0011) == 0x9000  # key EFs are selectable


def test_select_bad_parameters(virtual_card: VirtualCard) -> None:
    assert sw(virtual_card, "00 A4 08 0C 02 00 06") == 0x6A86
    assert select_df(virtual_card, JPKI) == 0x9000
    assert sw(virtual_card, "00 A4 02 0C 03 00 06 00") == 0x6700
    assert sw(virtual_card, "00 A4 02 04 02 00 06") == 0x6A86


# -- READ BINARY ------------------------------------------------------------------------------


def test_read_token_label(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0006)
    data, status = send(virtual_card, "00 B0 00 00 20")
    assert status == 0x9000
    assert data == b"JPKIAPICCTOKEN2".ljust(32, b" ")


def test_read_returns_min_of_le_and_remaining(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0006)
    data, status = send(virtual_card, "00 B0 00 90 00")  # offset 144 of 160, Le 256
    assert (len(data), status) == (16, 0x9000)
    data, status = send(virtual_card, "00 B0 00 9F 05")
    assert (len(data), status) == (1, 0x9000)


def test_read_at_and_after_end_of_file_is_6b00(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0006)
    assert sw(virtual_card, "00 B0 00 A0 01") == 0x6B00  # offset 160 = EOF
    assert sw(virtual_card, "00 B0 7F FF 01") == 0x6B00  # largest 15-bit offset


def test_short_read_at_end_can_answer_6282(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(profile=with_choices(PROFILE, short_read_at_end_sw="6282"))
    select_df(card, JPKI)
    select_ef(card, 0x0006)
    data, status = send(card, "00 B0 00 9F 05")
    assert (len(data), status) == (1, 0x6282)


def test_read_whole_certificate_with_one_extended_sfi_read(
    virtual_card: VirtualCard,
) -> None:
    from cryptography import x509

    select_df(virtual_card, JPKI)
    # docs/card.md §1 jsapdu: Le 65536 by SFI 0A
    data, status = send(virtual_card, "00 B0 8A 00 00 00 00")
    assert status == 0x9000
    certificate = x509.load_der_x509_certificate(data)
    assert certificate.serial_number == virtual_card.state.serials["auth"]


def test_read_certificate_in_256_byte_chunks_with_15_bit_offsets(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x000A)
    header, status = send(virtual_card, "00 B0 00 00 07")
    assert status == 0x9000 and header[:2] == b"\x30\x82"
    total = int.from_bytes(header[2:4], "big") + 4
    content = bytearray(header)
    while len(content) < total:
        offset = len(content)
        chunk, status = send(virtual_card, bytes((0x00, 0xB0, offset >> 8, offset & 0xFF, 0x00)))
        assert status == 0x9000
        content += chunk
    assert bytes(content) == virtual_card.state.files[("jpki", 0x000A)]


def test_read_protected_file_without_pin_is_6982(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0001)  # sign certificate: sign password required (docs/card.md §11.4)
    assert sw(virtual_card, "00 B0 00 00 07") == 0x6982
    select_ef(virtual_card, 0x001B)
    assert verify(virtual_card, persona.sign_password) == 0x9000
    select_ef(virtual_card, 0x0001)
    data, status = send(virtual_card, "00 B0 00 00 04")
    assert (data[:2], status) == (b"\x30\x82", 0x9000)


def test_read_without_current_ef_is_6986(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    assert sw(virtual_card, "00 B0 00 00 10") == 0x6986
    assert sw(virtual_card, "00 B0 00 00 10") == 0x6986  # nothing selected at power-on either


def test_read_by_sfi_of_a_missing_file_is_6a82(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    assert sw(virtual_card, "00 B0 83 00 10") == 0x6A82


def test_read_binary_of_a_key_ef_is_6981(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    assert sw(virtual_card, "00 B0 00 00 10") == 0x6981


def test_read_binary_without_le_is_6700(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0006)
    assert sw(virtual_card, "00 B0 00 00") == 0x6700


def test_my_number_file_is_17_bytes_with_filler(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select_df(virtual_card, TEXT)
    select_ef(virtual_card, 0x0011)
    assert verify(virtual_card, persona.text_pin) == 0x9000
    select_ef(virtual_card, 0x0001)
    data, status = send(virtual_card, "00 B0 00 00 00")
    assert status == 0x9000
    assert data == b"\xff\x10\x0c" + persona.my_number.encode() + b"\xff\xff"


@pytest.mark.parametrize(
    ("key", "opens_my_number", "opens_basic_info"),
    [("text_pin", True, True), ("check_code_a", True, False), ("check_code_b", False, True)],
)
def test_text_ap_access_rules(
    virtual_card: VirtualCard,
    persona: Persona,
    key: str,
    opens_my_number: bool,
    opens_basic_info: bool,
) -> None:
    select_df(virtual_card, TEXT)
    select_ef(virtual_card, PROFILE.application("text").key(key).key_id)
    assert verify(virtual_card, persona.reference_data(key)) == 0x9000
    assert sw(virtual_card, "00 B0 81 00 00") == (0x9000 if opens_my_number else 0x6982)
    assert sw(virtual_card, "00 B0 82 00 00") == (0x9000 if opens_basic_info else 0x6982)
    assert sw(virtual_card, "00 B0 83 00 00") == 0x9000  # the integrity record opens for each


# -- READ RECORD ------------------------------------------------------------------------------


def test_read_common_ap_record_by_sfi(virtual_card: VirtualCard, persona: Persona) -> None:
    select_df(virtual_card, COMMON)
    data, status = send(virtual_card, "00 B2 01 0C 00")  # docs/card.md §7.14
    assert status == 0x9000
    expected = persona.card_serial + persona.municipality_code
    expected += persona.card_expiry.strftime("%Y%m%d")
    assert data == b"\x01\x1c" + expected.encode()


def test_read_record_of_current_ef_and_past_last(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, COMMON)
    select_ef(virtual_card, 0x0001)
    assert sw(virtual_card, "00 B2 01 04 00") == 0x9000
    assert sw(virtual_card, "00 B2 02 04 00") == 0x6A83
    assert sw(virtual_card, "00 B2 01 05 00") == 0x6A81  # P2=05 not supported (docs/card.md §8)


def test_read_record_on_a_binary_file_is_6981(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    assert sw(virtual_card, "00 B2 01 34 00") == 0x6981  # SFI 6, the token


# -- VERIFY -----------------------------------------------------------------------------------


def test_retry_query_does_not_spend_a_try(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    assert send(virtual_card, "00 20 00 80") == (b"", 0x63C3)
    assert verify(virtual_card, None) == 0x63C3


def test_auth_pin_lockout_sequence_byte_exact(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    responses = [virtual_card.execute(bytes.fromhex("00200080043030303F")) for _ in range(4)]
    assert responses == [b"\x63\xc2", b"\x63\xc1", b"\x63\xc0", b"\x69\x84"]
    assert verify(virtual_card, None) == 0x63C0


def test_blocked_pin_refuses_even_the_right_value(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    for _ in range(3):
        verify(virtual_card, "0000" if persona.auth_pin != "0000" else "1111")
    assert verify(virtual_card, persona.auth_pin) == 0x6984


def test_sign_password_has_five_tries(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    assert [verify(virtual_card, "WRONG1", p2=0x9B) for _ in range(6)] == [
        0x63C4,
        0x63C3,
        0x63C2,
        0x63C1,
        0x63C0,
        0x6984,
    ]


def test_success_resets_the_counter(virtual_card: VirtualCard, persona: Persona) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    wrong = "0000" if persona.auth_pin != "0000" else "1111"
    assert verify(virtual_card, wrong) == 0x63C2
    assert verify(virtual_card, wrong) == 0x63C1
    assert verify(virtual_card, persona.auth_pin) == 0x9000
    assert verify(virtual_card, None) == 0x63C3


def test_retry_query_after_verify_can_answer_9000(
    make_virtual_card: MakeCard, persona: Persona
) -> None:
    card = make_virtual_card(profile=with_choices(PROFILE, retry_query_after_verify="9000"))
    select_df(card, JPKI)
    select_ef(card, 0x0018)
    assert verify(card, None) == 0x63C3
    assert verify(card, persona.auth_pin) == 0x9000
    assert verify(card, None) == 0x9000


def test_verify_by_short_ef_id_without_select(virtual_card: VirtualCard, persona: Persona) -> None:
    select_df(virtual_card, JPKI)
    data = persona.auth_pin.encode()
    assert sw(virtual_card, bytes((0x00, 0x20, 0x00, 0x98, len(data))) + data) == 0x9000


def test_text_key_0012_is_blocked_from_issuance(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, TEXT)
    select_ef(virtual_card, 0x0012)
    assert verify(virtual_card, None) == 0x63C0
    assert verify(virtual_card, "1234") == 0x6984


def test_verify_without_current_ef_is_6986(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    assert verify(virtual_card, "1234") == 0x6986


def test_verify_against_a_data_file_or_unknown_key(virtual_card: VirtualCard) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0006)
    assert verify(virtual_card, "1234") == 0x6981
    assert verify(virtual_card, "1234", p2=0x85) == 0x6A88
    assert sw(virtual_card, "00 20 01 80 04 31 32 33 34") == 0x6A86
    assert verify(virtual_card, "1234", p2=0x00) == 0x6A86


@pytest.mark.parametrize(
    ("application", "key_name"),
    [
        ("text", "check_code_a"),
        ("text", "check_code_b"),
        ("visual", "check_code_a"),
        ("visual", "check_code_b"),
        ("visual", "birth_date_code"),
        ("common", "card_pin"),
        ("juki", "juki_pin"),
    ],
)
def test_every_pin_key_accepts_the_persona_value(
    virtual_card: VirtualCard, persona: Persona, application: str, key_name: str
) -> None:
    ap = PROFILE.application(application)
    key = ap.key(key_name)
    select_df(virtual_card, ap.aid)
    select_ef(virtual_card, key.key_id)
    assert verify(virtual_card, None) == 0x63C0 | key.tries
    assert verify(virtual_card, persona.reference_data(key_name)) == 0x9000


SIGN_WITH_CURRENT_KEY = b"\x80\x2a\x00\x80" + bytes((len(DIGEST_INFO),)) + DIGEST_INFO + b"\x00"


@pytest.mark.parametrize(
    ("setting", "after_reselect"),
    [(None, 0x6982), ("clears_verification", 0x6982), ("keeps_verification", 0x9000)],
)
def test_reselecting_the_current_df_follows_the_profile_choice(
    make_virtual_card: MakeCard, persona: Persona, setting: str | None, after_reselect: int
) -> None:
    """docs/card.md §12 (UNCONFIRMED): the default clears; pyjpki-style clients that re-select
    the AP between VERIFY and the signature need keeps_verification."""
    profile = PROFILE if setting is None else with_choices(PROFILE, reselect_current_df=setting)
    card = make_virtual_card(profile=profile)
    select_df(card, JPKI)
    select_ef(card, 0x0018)
    assert verify(card, persona.auth_pin) == 0x9000
    select_ef(card, 0x0017)
    assert sw(card, SIGN_WITH_CURRENT_KEY) == 0x9000
    assert select_df(card, JPKI) == 0x9000  # the same DF again
    select_ef(card, 0x0017)
    assert sw(card, SIGN_WITH_CURRENT_KEY) == after_reselect
    # Selecting another DF clears it whatever the setting.
    select_df(card, TEXT)
    select_df(card, JPKI)
    select_ef(card, 0x0017)
    assert sw(card, SIGN_WITH_CURRENT_KEY) == 0x6982


def test_an_unknown_reselect_setting_is_refused(make_virtual_card: MakeCard) -> None:
    from mynakit.errors import UsageError

    with pytest.raises(UsageError, match="reselect_current_df"):
        make_virtual_card(profile=with_choices(PROFILE, reselect_current_df="sometimes"))


def test_security_state_is_cleared_by_reset(virtual_card: VirtualCard, persona: Persona) -> None:
    select_df(virtual_card, TEXT)
    select_ef(virtual_card, 0x0011)
    assert verify(virtual_card, persona.text_pin) == 0x9000
    virtual_card.reset()
    select_df(virtual_card, TEXT)
    assert sw(virtual_card, "00 B0 81 00 00") == 0x6982


# -- CHANGE REFERENCE DATA / CHANGE KEY -------------------------------------------------------


def test_change_pin_needs_verify_and_checks_format(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    assert sw(virtual_card, "00 24 01 80 04 39 38 37 36") == 0x6982
    assert verify(virtual_card, persona.auth_pin) == 0x9000
    assert sw(virtual_card, "00 24 01 80 03 39 38 37") == 0x6A80  # 3 digits
    assert sw(virtual_card, "00 24 01 80 04 39 38 41 36") == 0x6A80  # a letter
    assert sw(virtual_card, "00 24 01 80") == 0x6700
    assert sw(virtual_card, "00 24 00 80 04 39 38 37 36") == 0x6A86
    assert sw(virtual_card, "00 24 01 80 04 39 38 37 36") == 0x9000
    select_df(virtual_card, JPKI)
    select_ef(virtual_card, 0x0018)
    if persona.auth_pin != "9876":
        assert verify(virtual_card, persona.auth_pin) == 0x63C2
    assert verify(virtual_card, "9876") == 0x9000


def test_change_sign_password_must_be_upper_alphanumeric(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select_df(virtual_card, JPKI)
    assert verify(virtual_card, persona.sign_password, p2=0x9B) == 0x9000
    assert sw(virtual_card, b"\x00\x24\x01\x9b\x06abc123") == 0x6A80
    assert sw(virtual_card, b"\x00\x24\x01\x9b\x06ABC123") == 0x9000
    select_df(virtual_card, JPKI)
    assert verify(virtual_card, "ABC123", p2=0x9B) == 0x9000


def test_jicsap_change_key_for_the_common_card_pin(
    virtual_card: VirtualCard, persona: Persona
) -> None:
    select_df(virtual_card, COMMON)
    select_ef(virtual_card, 0x001C)
    assert verify(virtual_card, persona.card_pin) == 0x9000
    assert sw(virtual_card, "00 24 01 80 04 35 36 37 38") == 0x6A81  # 001C changes with 80 32
    assert sw(virtual_card, "80 32 00 80 04 35 36 37 38") == 0x9000  # docs/card.md §7.12
    select_df(virtual_card, COMMON)
    select_ef(virtual_card, 0x001C)
    assert verify(virtual_card, "5678") == 0x9000


# -- GET CHALLENGE ----------------------------------------------------------------------------


def test_get_challenge(virtual_card: VirtualCard) -> None:
    first, status = send(virtual_card, "00 84 00 00 10")
    second, _ = send(virtual_card, "00 84 00 00 10")
    assert (len(first), status) == (16, 0x9000)
    assert first != second
    assert len(send(virtual_card, "00 84 00 00 00")[0]) == 256
    assert send(virtual_card, "00 84 00 00 01")[1] == 0x9000


def test_get_challenge_refusals(virtual_card: VirtualCard) -> None:
    assert sw(virtual_card, "00 84 00 00 00 00 10") == 0x6985  # extended form (docs/card.md §1)
    assert sw(virtual_card, "00 84 00 00") == 0x6700
    assert sw(virtual_card, "00 84 01 00 08") == 0x6A86


# -- class, instruction, malformed ------------------------------------------------------------


def test_unknown_instruction_is_6d00(virtual_card: VirtualCard) -> None:
    assert sw(virtual_card, "00 EE 00 00") == 0x6D00
    assert sw(virtual_card, "00 2A 00 80 01 00") == 0x6D00  # 2A is proprietary here (CLA 80)
    assert sw(virtual_card, "80 B0 00 00 01") == 0x6D00


def test_logical_channel_other_than_zero_is_6881(virtual_card: VirtualCard) -> None:
    command = bytes((0x01, 0xA4, 0x04, 0x0C, len(JPKI))) + JPKI
    assert sw(virtual_card, command) == 0x6881
    assert sw(virtual_card, "41 84 00 00 08") == 0x6881
    assert sw(virtual_card, "81 2A 00 80 01 00 00") == 0x6881


def test_secure_messaging_class_is_6882(virtual_card: VirtualCard) -> None:
    assert sw(virtual_card, bytes((0x0C, 0xA4, 0x04, 0x0C, len(JPKI))) + JPKI) == 0x6882


def test_invalid_class_is_6e00(virtual_card: VirtualCard) -> None:
    assert sw(virtual_card, "FF A4 04 0C 01 D3") == 0x6E00
    assert sw(virtual_card, "A0 A4 04 0C 01 D3") == 0x6E00


@pytest.mark.parametrize(
    "command",
    ["", "00", "00 A4 04", "00 A4 04 0C 05 D3 92", "00 A4 04 0C 00 00 05 D3", "00 B0 00 00 00 00"],
)
def test_malformed_apdu_is_6700(virtual_card: VirtualCard, command: str) -> None:
    assert virtual_card.execute(bytes.fromhex(command.replace(" ", ""))) == b"\x67\x00"


@pytest.fixture(scope="module")
def fuzz_card(virtual_card_template: CardState) -> VirtualCard:
    # hypothesis cannot take function-scoped fixtures: one card per module, which a random APDU
    # may lock; that only narrows what later examples reach, never hides an escaping exception.
    return VirtualCard(PROFILE, virtual_card_template.fork())


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=300))
def test_no_exception_escapes_execute(fuzz_card: VirtualCard, raw: bytes) -> None:
    for prefix in (b"", bytes((0x00, 0xA4, 0x04, 0x0C, len(JPKI))) + JPKI):
        if prefix:
            fuzz_card.execute(prefix)
        response = fuzz_card.execute(raw)
        assert len(response) >= 2


def test_power_down_then_execute_needs_a_reset(virtual_card: VirtualCard) -> None:
    from mynakit.errors import TransportError

    virtual_card.power_down()
    with pytest.raises(TransportError):
        virtual_card.execute(bytes.fromhex("0084000008"))
    virtual_card.power_up()
    assert sw(virtual_card, "00 84 00 00 08") == 0x9000


def test_atr_comes_from_the_profile(virtual_card: VirtualCard) -> None:
    assert virtual_card.atr == bytes.fromhex("3BE000FF8131FE4514")  # what OpenSC 0.23 matches


@pytest.mark.parametrize(
    ("choice", "atr"),
    [
        ("opensc-0.23", "3B E0 00 FF 81 31 FE 45 14"),
        ("jpki-02", "3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B"),
        ("jpki-03", "3B C5 FF 81 31 FB 45 80 73 C6 01 00 00"),
    ],
)
def test_real_contact_atrs_are_profile_choices(
    make_virtual_card: MakeCard, choice: str, atr: str
) -> None:
    """docs/card.md §1: the contact ATRs of real cards; detection stays by SELECT."""
    from mynakit.card.detect import CardKind, identify
    from mynakit.iso7816.protocol import ApduProtocol
    from mynakit.transport.in_process import InProcessConnection

    card = make_virtual_card(profile=with_choices(PROFILE, atr=choice))
    assert card.atr == bytes.fromhex(atr)
    assert card.atr in PROFILE.known_atrs
    connection = InProcessConnection(card)
    identity = identify(ApduProtocol(connection, extended_length=True), connection.atr)
    assert identity.kind is CardKind.MY_NUMBER_CARD


def test_an_unknown_atr_choice_is_refused(make_virtual_card: MakeCard) -> None:
    from mynakit.errors import UsageError

    with pytest.raises(UsageError, match="ATR choice 'jpki-99'"):
        make_virtual_card(profile=with_choices(PROFILE, atr="jpki-99"))


# -- 80 A2: terminal CV certificate (docs/card.md §5) ---------------------------------------------


def extended_case3(header: str, body: bytes) -> bytes:
    return bytes.fromhex(header) + b"\x00" + len(body).to_bytes(2, "big") + body


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (extended_case3("80 A2 00 C1", bytes(256)), 0x6700),  # what public clients expect
        (extended_case3("80 A2 00 C1", bytes(10)), 0x6700),
        (bytes.fromhex("80 A2 00 C1 04 00000000"), 0x6700),
        (extended_case3("80 A2 00 C1", bytes(307)), 0x6A80),  # unverifiable: no terminal CA
        (bytes.fromhex("80 A2 00 00 04 00000000"), 0x6A86),  # the probes of docs/card.md §5
        (bytes.fromhex("80 A2 00 AE 04 00000000"), 0x6A86),
        (bytes.fromhex("80 A2 80 00 04 00000000"), 0x6A86),
        (bytes.fromhex("80 A2 00 B6 04 00000000"), 0x6A86),
    ],
)
def test_terminal_certificate_command_answers_like_a_card(
    virtual_card: VirtualCard, command: bytes, status: int
) -> None:
    select_df(virtual_card, JPKI)
    assert send(virtual_card, command) == (b"", status)
