"""Fault injection: removal, slow card, corrupted responses, T=0, blocked PINs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from mynakit.emulator.card_os import VirtualCard
from mynakit.emulator.faults import Corruption, Faults, LatencyModel, VirtualCardRemovedError
from mynakit.emulator.personas import Persona
from mynakit.errors import UsageError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.profiles import load_profile
from mynakit.transport.base import CardRemovedError
from mynakit.transport.in_process import InProcessConnection

pytestmark = pytest.mark.emulator

MakeCard = Callable[..., VirtualCard]
JPKI = load_profile().application("jpki").aid
SELECT_JPKI = bytes((0x00, 0xA4, 0x04, 0x0C, len(JPKI))) + JPKI
READ_TOKEN = bytes.fromhex("00B0860020")
DIGEST_INFO = bytes.fromhex("3031300D060960864801650304020105000420") + bytes(32)


# -- removal ----------------------------------------------------------------------------------


def test_card_removed_after_n_apdus(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(faults=Faults(remove_after=2))
    assert card.execute(SELECT_JPKI) == b"\x90\x00"
    assert card.execute(READ_TOKEN)[-2:] == b"\x90\x00"
    with pytest.raises(CardRemovedError):
        card.execute(READ_TOKEN)
    assert card.removed
    with pytest.raises(VirtualCardRemovedError):
        card.execute(SELECT_JPKI)
    card.reinsert()  # pulled once: back in, it stays in
    assert not card.removed
    for _ in range(5):
        assert card.execute(SELECT_JPKI) == b"\x90\x00"


def test_in_process_connection_reports_the_removal(make_virtual_card: MakeCard) -> None:
    connection = InProcessConnection(make_virtual_card(faults=Faults(remove_after=1)))
    assert connection.transmit(SELECT_JPKI) == b"\x90\x00"
    with pytest.raises(CardRemovedError):
        connection.transmit(READ_TOKEN)


def test_removal_mid_command_keeps_the_spent_try(
    make_virtual_card: MakeCard, persona: Persona
) -> None:
    card = make_virtual_card(faults=Faults(remove_after=1, remove_mid_command=True))
    card.execute(SELECT_JPKI)
    wrong = "0000" if persona.auth_pin != "0000" else "1111"
    with pytest.raises(CardRemovedError):
        card.execute(bytes.fromhex("0020009804") + wrong.encode())
    card.reinsert()
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("00200098")) == b"\x63\xc2"


def test_removal_zero_means_no_card_at_all(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(faults=Faults(remove_after=0))
    with pytest.raises(CardRemovedError):
        card.execute(SELECT_JPKI)


# -- latency ----------------------------------------------------------------------------------


def test_latency_model_numbers() -> None:
    contact = LatencyModel.contact(9600, signature_seconds=0.5)
    # 10 bits per byte at 9600 baud: 20 bytes take 20.8 ms.
    assert contact.delay(15, 5, signed=False) == pytest.approx(200 / 9600)
    assert contact.delay(15, 5, signed=True) == pytest.approx(200 / 9600 + 0.5)
    fast = LatencyModel.contact(115_200)
    assert fast.delay(15, 5, signed=False) < contact.delay(15, 5, signed=False)
    contactless = LatencyModel.contactless(424_000)
    assert 0.001 < contactless.delay(300, 300, signed=False) < 0.02


@pytest.mark.parametrize(
    "build",
    [
        lambda: LatencyModel.contact(4800),
        lambda: LatencyModel.contact(230_400),
        lambda: LatencyModel.contactless(848_000),
        lambda: LatencyModel.contact(9600, signature_seconds=2.0),
        lambda: LatencyModel("infrared", 9600),
    ],
)
def test_latency_model_refuses_unrealistic_values(build: Callable[[], object]) -> None:
    with pytest.raises(UsageError):
        build()


def test_slow_card_really_sleeps(make_virtual_card: MakeCard, persona: Persona) -> None:
    card = make_virtual_card(
        faults=Faults(latency=LatencyModel.contact(9600, signature_seconds=0.3))
    )
    started = time.monotonic()
    card.execute(SELECT_JPKI)  # 15 + 2 bytes at 9600 baud: about 18 ms
    select_time = time.monotonic() - started
    assert 0.015 <= select_time < 0.3
    pin = persona.auth_pin.encode()
    card.execute(bytes((0, 0x20, 0, 0x98, 4)) + pin)
    started = time.monotonic()
    response = card.execute(bytes((0x80, 0x2A, 0, 0x97, len(DIGEST_INFO))) + DIGEST_INFO + b"\0")
    assert response[-2:] == b"\x90\x00"
    assert time.monotonic() - started >= 0.3 + (len(DIGEST_INFO) + 6 + 258) * 10 / 9600 * 0.9


# -- corruption -------------------------------------------------------------------------------


def test_flip_changes_exactly_one_byte(make_virtual_card: MakeCard) -> None:
    clean = make_virtual_card()
    clean.execute(SELECT_JPKI)
    expected = clean.execute(READ_TOKEN)
    card = make_virtual_card(faults=Faults(corruption=Corruption(1.0, seed=5, modes=("flip",))))
    card.execute(SELECT_JPKI)
    damaged = card.execute(READ_TOKEN)
    assert len(damaged) == len(expected)
    assert sum(a != b for a, b in zip(damaged, expected, strict=True)) == 1


def test_truncate_cuts_the_response(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(faults=Faults(corruption=Corruption(1.0, modes=("truncate",))))
    card.execute(SELECT_JPKI)
    assert len(card.execute(READ_TOKEN)) < 34


def test_corruption_is_reproducible_and_probabilistic(make_virtual_card: MakeCard) -> None:
    def run(seed: int) -> list[bytes]:
        card = make_virtual_card(faults=Faults(corruption=Corruption(0.3, seed=seed)))
        return [card.execute(bytes.fromhex("00A4000000")) for _ in range(200)]

    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert first != other
    damaged = sum(response != b"\x6a\x86" for response in first)
    assert 30 < damaged < 100  # about 30 % of 200


def test_corruption_probability_zero_changes_nothing() -> None:
    corruption = Corruption(0.0)
    generator = random.Random(0)
    assert all(corruption.apply(b"\x90\x00", generator) == b"\x90\x00" for _ in range(100))


@pytest.mark.parametrize(
    "options",
    [
        {"probability": 1.5},
        {"probability": 0.5, "modes": ()},
        {"probability": 0.5, "modes": ("shred",)},
    ],
)
def test_corruption_refuses_bad_settings(options: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        Corruption(**options)  # type: ignore[arg-type]


# -- T=0 --------------------------------------------------------------------------------------


def test_t0_case_4_answers_61xx_then_get_response(
    make_virtual_card: MakeCard, persona: Persona
) -> None:
    card = make_virtual_card(faults=Faults(t0=True))
    card.execute(SELECT_JPKI)
    card.execute(bytes((0, 0x20, 0, 0x98, 4)) + persona.auth_pin.encode())
    assert card.execute(bytes((0x80, 0x2A, 0, 0x97, len(DIGEST_INFO))) + DIGEST_INFO + b"\0") == (
        b"\x61\x00"
    )
    first = card.execute(bytes.fromhex("00C0000080"))
    assert len(first) == 130 and first[-2:] == b"\x61\x80"
    assert card.execute(bytes.fromhex("00C0000090")) == b"\x6c\x80"  # wrong Le: 80 left
    second = card.execute(bytes.fromhex("00C0000080"))
    assert len(second) == 130 and second[-2:] == b"\x90\x00"
    assert card.execute(bytes.fromhex("00C0000010")) == b"\x69\x85"  # nothing pending


def test_t0_wrong_le_is_6cxx(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(faults=Faults(t0=True))
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("00B0860000")) == b"\x6c\xa0"  # 160-byte token, Le 256
    response = card.execute(bytes.fromhex("00B08600A0"))
    assert len(response) == 162 and response[-2:] == b"\x90\x00"
    assert card.execute(bytes.fromhex("00B08600000000")) == b"\x67\x00"  # no extended on T=0


def test_t0_pending_response_is_dropped_by_another_command(
    make_virtual_card: MakeCard, persona: Persona
) -> None:
    card = make_virtual_card(faults=Faults(t0=True))
    card.execute(SELECT_JPKI)
    card.execute(bytes((0, 0x20, 0, 0x98, 4)) + persona.auth_pin.encode())
    card.execute(bytes((0x80, 0x2A, 0, 0x97, len(DIGEST_INFO))) + DIGEST_INFO + b"\0")
    card.execute(bytes.fromhex("0084000008"))
    assert card.execute(bytes.fromhex("00C0000000")) == b"\x69\x85"


def test_protocol_layer_hides_t0_from_callers(
    make_virtual_card: MakeCard, persona: Persona
) -> None:
    protocol = ApduProtocol(
        InProcessConnection(make_virtual_card(faults=Faults(t0=True))), extended_length=False
    )
    protocol.send(0x00, 0xA4, 0x04, 0x0C, JPKI)
    assert len(protocol.send(0x00, 0xB0, 0x86, 0x00, le=256)) == 160
    protocol.send(0x00, 0x20, 0x00, 0x98, persona.auth_pin.encode())
    assert len(protocol.send(0x80, 0x2A, 0x00, 0x97, DIGEST_INFO, le=256)) == 256


# -- blocked PINs -----------------------------------------------------------------------------


def test_blocked_pin_fault(make_virtual_card: MakeCard, persona: Persona) -> None:
    card = make_virtual_card(faults=Faults(blocked=(("jpki", "sign_password"),)))
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("0020009B")) == b"\x63\xc0"
    password = persona.sign_password.encode()
    assert card.execute(bytes((0, 0x20, 0, 0x9B, len(password))) + password) == b"\x69\x84"
    assert card.execute(bytes.fromhex("00200098")) == b"\x63\xc3"  # only that key


def test_faults_compose(make_virtual_card: MakeCard) -> None:
    card = make_virtual_card(
        faults=Faults(t0=True, remove_after=3, blocked=(("jpki", "auth_pin"),))
    )
    card.execute(SELECT_JPKI)
    assert card.execute(bytes.fromhex("00200098")) == b"\x63\xc0"
    assert card.execute(bytes.fromhex("00B0860000")) == b"\x6c\xa0"
    with pytest.raises(CardRemovedError):
        card.execute(bytes.fromhex("00B08600A0"))


def test_bad_fault_settings() -> None:
    with pytest.raises(UsageError):
        Faults(remove_after=-1)
    with pytest.raises(UsageError):
        Faults(remove_mid_command=True)
