"""The exact APDUs each session operation sends, as hex lists (docs/card.md §7.1-§7.14).

APDU counts are a headline figure (README, tools/bench), so any extra SELECT, retry query or
read shows up here as a failing diff. The card is the in-process virtual card; the values that
differ per holder (PINs, check codes) and the file sizes come from the card itself, everything
else is literal.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mynakit.card.common import CommonAp
from mynakit.card.detect import identify
from mynakit.card.jpki import JpkiAp
from mynakit.card.text import TextAp
from mynakit.card.visual import VisualAp
from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.issuer import SandboxIssuer
from mynakit.emulator.personas import Persona, generate_persona
from mynakit.emulator.state import build_card_state
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.profiles import load_profile

pytestmark = pytest.mark.emulator

SELECT_JPKI = "00A4040C0AD392F000260100000001"
SELECT_TEXT = "00A4040C0AD3921000310001010408"
SELECT_VISUAL = "00A4040C0AD3921000310001010402"
SELECT_COMMON = "00A4040C0AD3921000310001010100"


class Recorder:
    """The transport seam over the virtual card, keeping every command as upper-case hex."""

    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.sent: list[str] = []

    def transmit(self, command: bytes) -> bytes:
        self.sent.append(command.hex().upper())
        return self.card.execute(command)


Run = Callable[[Callable[[ApduProtocol], object], bool | None], list[str]]


@pytest.fixture
def run(make_virtual_card: Callable[..., VirtualCard]) -> Run:
    """Run one operation on a fresh card; return the APDUs it sent."""

    def run_operation(
        operation: Callable[[ApduProtocol], object], extended: bool | None = True
    ) -> list[str]:
        recorder = Recorder(make_virtual_card())
        operation(ApduProtocol(recorder, extended_length=extended))
        return recorder.sent

    return run_operation


def ascii_hex(secret: str) -> str:
    return f"{len(secret):02X}" + secret.encode("ascii").hex().upper()


def other_pin(pin: str) -> str:
    return "9999" if pin != "9999" else "8888"


def short_continuation(total: int) -> list[str]:
    """READ BINARY by offset after a first short read by SFI: 256 bytes (Le 00) at a time,
    the last read asking for exactly what is left (docs/card.md §5, §7.2)."""
    return [
        f"00B0{offset >> 8:02X}{offset & 0xFF:02X}{min(256, total - offset) % 256:02X}"
        for offset in range(256, total, 256)
    ]


# -- JPKI AP ---------------------------------------------------------------------------------


def test_detection_is_select_and_one_token_read(run: Run) -> None:
    assert run(lambda protocol: identify(protocol, b""), True) == [SELECT_JPKI, "00B08600A0"]
    assert run(JpkiAp.open, True) == [SELECT_JPKI, "00B08600A0"]


def test_certificate_read_extended_is_one_read_by_sfi(run: Run) -> None:
    sent = run(lambda protocol: JpkiAp(protocol).read_certificate("auth"), True)
    assert sent == [SELECT_JPKI, "00B08A00000000"]


def test_certificate_read_short_sizes_the_rest_from_the_header(
    run: Run, virtual_card: VirtualCard
) -> None:
    protocol = ApduProtocol(Recorder(virtual_card), extended_length=False)
    total = len(JpkiAp(protocol).read_certificate("auth"))
    assert total > 256
    sent = run(lambda protocol: JpkiAp(protocol).read_certificate("auth"), False)
    assert sent == [SELECT_JPKI, "00B08A0000", *short_continuation(total)]


def test_certificate_read_with_unknown_support_probes_extended_once(run: Run) -> None:
    sent = run(lambda protocol: JpkiAp(protocol).read_certificate("auth_ca"), None)
    assert sent == [SELECT_JPKI, "00B08B00000000"]


def test_pin_status_is_one_empty_verify_per_key(run: Run) -> None:
    sent = run(lambda protocol: JpkiAp(protocol).pin_status(), True)
    assert sent == [SELECT_JPKI, "00200098", "0020009B"]


def test_verify_queries_the_counter_then_verifies_once(run: Run, persona: Persona) -> None:
    sent = run(lambda protocol: JpkiAp(protocol).verify("auth_pin", persona.auth_pin), True)
    assert sent == [SELECT_JPKI, "00200098", "0020009804" + persona.auth_pin.encode().hex()]


def test_sign_is_verify_then_one_signature_by_key_reference(run: Run, persona: Persona) -> None:
    def sign(protocol: ApduProtocol) -> None:
        session = JpkiAp(protocol)
        session.verify("auth_pin", persona.auth_pin)
        session.sign_digest("auth", "sha256", bytes(32))

    digest_info = "3031300D060960864801650304020105000420" + "00" * 32
    assert run(sign, True) == [
        SELECT_JPKI,
        "00200098",
        "00200098" + ascii_hex(persona.auth_pin),
        "802A009733" + digest_info + "00",
    ]


def test_change_pin_selects_the_key_verifies_and_changes_once(run: Run, persona: Persona) -> None:
    new = other_pin(persona.auth_pin)
    sent = run(lambda protocol: JpkiAp(protocol).change_pin(persona.auth_pin, new), True)
    assert sent == [
        SELECT_JPKI,
        "00A4020C020018",
        "00200098",
        "00200098" + ascii_hex(persona.auth_pin),
        "00240180" + ascii_hex(new),
    ]


# -- text AP ---------------------------------------------------------------------------------


def test_text_my_number_read(run: Run, persona: Persona) -> None:
    sent = run(lambda protocol: TextAp(protocol).my_number(persona.text_pin), True)
    assert sent == [SELECT_TEXT, "00200091", "00200091" + ascii_hex(persona.text_pin), "00B0810011"]


def test_text_basic_info_read_with_check_code_b(run: Run, persona: Persona) -> None:
    sent = run(lambda protocol: TextAp(protocol).basic_info(persona.check_code_b), True)
    assert sent == [
        SELECT_TEXT,
        "00200095",
        "00200095" + ascii_hex(persona.check_code_b),
        "00B08200000000",
    ]


def test_text_pin_status_and_change(run: Run, persona: Persona) -> None:
    assert run(lambda protocol: TextAp(protocol).pin_status(), True) == [
        SELECT_TEXT,
        "00200091",
        "00200094",
        "00200095",
    ]
    new = other_pin(persona.text_pin)
    assert run(lambda protocol: TextAp(protocol).change_pin(persona.text_pin, new), True) == [
        SELECT_TEXT,
        "00A4020C020011",
        "00200091",
        "00200091" + ascii_hex(persona.text_pin),
        "00240180" + ascii_hex(new),
    ]


def test_text_integrity_check_reads_each_file_once(run: Run, persona: Persona) -> None:
    # EF 0003 has a fixed size of 336 bytes (docs/card.md §6.4): one extended read asks for
    # exactly that; then the CV certificate and the two files the text PIN opens.
    sent = run(lambda protocol: TextAp(protocol).verify_integrity(persona.text_pin), True)
    assert sent == [
        SELECT_TEXT,
        "00200091",
        "00200091" + ascii_hex(persona.text_pin),
        "00B08300000150",
        "00B08400000000",
        "00B0810011",
        "00B08200000000",
    ]


def test_free_files_of_the_card_face_aps_are_one_read_each(run: Run) -> None:
    assert run(lambda protocol: TextAp(protocol).ap_basic_info(), True) == [
        SELECT_TEXT,
        "00B08500000000",
    ]
    assert run(lambda protocol: TextAp(protocol).ap_certificate(), True) == [
        SELECT_TEXT,
        "00B08400000000",
    ]
    assert run(lambda protocol: VisualAp(protocol).ap_basic_info(), True) == [
        SELECT_VISUAL,
        "00B08300000000",
    ]
    assert run(lambda protocol: VisualAp(protocol).ap_certificate(), True) == [
        SELECT_VISUAL,
        "00B08400000000",
    ]


# -- visual AP -------------------------------------------------------------------------------


def test_visual_card_face_read_extended(run: Run, persona: Persona) -> None:
    sent = run(lambda protocol: VisualAp(protocol).entries(persona.check_code_a), True)
    assert sent == [
        SELECT_VISUAL,
        "00200093",
        "00200093" + ascii_hex(persona.check_code_a),
        "00B08200000000",
    ]


def test_visual_card_face_read_short(run: Run, persona: Persona, virtual_card: VirtualCard) -> None:
    face = VisualAp(ApduProtocol(Recorder(virtual_card), extended_length=True))
    face.unlock(persona.check_code_a)
    total = len(face.read_file("card_face"))
    sent = run(lambda protocol: VisualAp(protocol).entries(persona.check_code_a), False)
    assert sent == [
        SELECT_VISUAL,
        "00200093",
        "00200093" + ascii_hex(persona.check_code_a),
        "00B0820000",
        *short_continuation(total),
    ]


def test_visual_age_record_and_pin_status(run: Run, persona: Persona) -> None:
    assert run(lambda protocol: VisualAp(protocol).age_record(persona.birth_date_code), True) == [
        SELECT_VISUAL,
        "00200091",
        "00200091" + ascii_hex(persona.birth_date_code),
        "00B08100000000",
    ]
    assert run(lambda protocol: VisualAp(protocol).pin_status(), True) == [
        SELECT_VISUAL,
        "00200093",
        "00200092",
    ]


# -- common AP -------------------------------------------------------------------------------


def test_common_card_info_is_one_read_record(run: Run) -> None:
    assert run(lambda protocol: CommonAp(protocol).card_info(), True) == [
        SELECT_COMMON,
        "00B2010C00",
    ]


def test_common_change_uses_jicsap_change_key(run: Run, persona: Persona) -> None:
    new = other_pin(persona.card_pin)
    assert run(lambda protocol: CommonAp(protocol).change_pin(persona.card_pin, new), True) == [
        SELECT_COMMON,
        "00A4020C02001C",
        "0020009C",
        "0020009C" + ascii_hex(persona.card_pin),
        "80320080" + ascii_hex(new),
    ]


# -- secrets that can never be right send nothing after the SELECT (docs/card.md §7.6) -------


@pytest.mark.parametrize(
    "secret",
    [
        "１２３４",  # full-width digits
        "¹²³⁴",  # superscript digits
        "１２３４５６７８９０１２",  # 12 full-width: looks like check code A
        "٠١٢٣٤٥٦٧٨٩٠١٢٣",  # 14 Arabic-Indic digits: looks like check code B
    ],
)
@pytest.mark.parametrize("session_class", [TextAp, VisualAp])
def test_non_ascii_digits_are_refused_before_any_verify(
    run: Run, secret: str, session_class: type[TextAp] | type[VisualAp]
) -> None:
    from mynakit.errors import UsageError

    def unlock(protocol: ApduProtocol) -> None:
        with pytest.raises(UsageError) as raised:
            session_class(protocol).unlock(secret)
        assert "\n" not in str(raised.value)

    sent = run(unlock, True)
    assert len(sent) == 1  # the SELECT only


@pytest.mark.parametrize("session_class", [TextAp, VisualAp])
def test_check_code_a_with_a_wrong_check_digit_sends_no_verify(
    run: Run, persona: Persona, session_class: type[TextAp] | type[VisualAp]
) -> None:
    from mynakit.errors import UsageError

    number = persona.check_code_a
    wrong = number[:11] + str((int(number[11]) + 1) % 10)

    def unlock(protocol: ApduProtocol) -> None:
        with pytest.raises(UsageError, match="check digit"):
            session_class(protocol).unlock(wrong)
        with pytest.raises(UsageError, match="check digit"):
            session_class(protocol).verify("check_code_a", wrong)

    assert all(command.startswith("00A4") for command in run(unlock, True))


def test_full_width_new_pin_is_refused_before_anything_is_sent(run: Run, persona: Persona) -> None:
    from mynakit.errors import UsageError

    def change(protocol: ApduProtocol) -> None:
        session = JpkiAp(protocol)
        with pytest.raises(UsageError, match="ASCII digits"):
            session.change_pin(persona.auth_pin, "５６７８")
        with pytest.raises(UsageError, match="ASCII digits"):
            session.verify("auth_pin", "¹²³⁴")

    assert run(change, True) == [SELECT_JPKI]


def test_change_pin_has_one_signature_and_refuses_keys_a_session_cannot_change(
    run: Run, persona: Persona
) -> None:
    from mynakit.errors import UsageError

    def refuse(protocol: ApduProtocol) -> None:
        with pytest.raises(UsageError, match="no changeable PIN"):
            VisualAp(protocol).change_pin(persona.check_code_a, "123456789018")
        with pytest.raises(UsageError, match="no changeable PIN 'text_pin'"):
            JpkiAp(protocol).change_pin(persona.auth_pin, "1234", key="text_pin")

    assert run(refuse, True) == [SELECT_VISUAL, SELECT_JPKI]
    new = "NEWPASS12" if persona.sign_password != "NEWPASS12" else "OTHERPASS3"
    sent = run(
        lambda protocol: JpkiAp(protocol).change_pin(
            persona.sign_password, new.lower(), key="sign_password"
        ),
        True,
    )
    # The sign password is registered in upper case (docs/card.md §4): sent as such.
    assert sent == [
        SELECT_JPKI,
        "00A4020C02001B",
        "0020009B",
        "0020009B" + ascii_hex(persona.sign_password.upper()),
        "00240180" + ascii_hex(new),
    ]


@pytest.mark.parametrize("session_class", [TextAp, VisualAp])
@pytest.mark.parametrize("date_part", ["551317", "550200", "000217", "550232"])
def test_check_code_b_without_a_birth_date_sends_no_verify(
    run: Run, persona: Persona, session_class: type[TextAp] | type[VisualAp], date_part: str
) -> None:
    from mynakit.errors import UsageError

    code = date_part + persona.check_code_b[6:]

    def unlock(protocol: ApduProtocol) -> None:
        with pytest.raises(UsageError, match="era YYMMDD") as raised:
            session_class(protocol).unlock(code)
        assert date_part not in str(raised.value)

    assert run(unlock, True) == [SELECT_TEXT if session_class is TextAp else SELECT_VISUAL]


def test_smartphone_token_certificate_read_is_open_verify_read(
    sandbox_issuer: SandboxIssuer,
) -> None:
    # The token file names the smartphone profile, whose auth certificate needs the auth PIN
    # first (docs/card.md §7.2): open (2 APDUs), guarded VERIFY (2), one extended read.
    profile = load_profile("smartphone-jpki-token")
    state = build_card_state(profile, generate_persona("apdu-phone"), sandbox_issuer, name="p")
    recorder = Recorder(VirtualCard(profile, state))
    session = JpkiAp.open(ApduProtocol(recorder, extended_length=True))
    session.verify_auth_pin(state.persona.auth_pin)
    session.read_certificate("auth")
    assert recorder.sent == [
        SELECT_JPKI,
        "00B08600A0",
        "00200098",
        "00200098" + ascii_hex(state.persona.auth_pin),
        "00B08A00000000",
    ]
