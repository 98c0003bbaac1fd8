"""The counter terminal's state machine on in-process virtual cards and the real eligibility
service core (docs/services.md §A.2 counter flow, docs/services.md §A.8 error cases)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mynakit.cli.demo import Holder, SandboxCounter
from mynakit.terminal.machine import Terminal, Timeouts
from mynakit.terminal.screens import Screen, TerminalState
from mynakit.transport.base import CardRemovedError
from mynakit.transport.in_process import ExecutesApdus, InProcessConnection
from mynakit.transport.trace import TracingConnection

pytestmark = pytest.mark.emulator

READER = "mynakit virtual reader"


class FakeClock:
    """The watchdog's clock, moved by the test: no sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class PullableConnection(InProcessConnection):
    """The in-process link, with the card pulled out at the test's command."""

    def __init__(self, counter: Counter, card: ExecutesApdus, reader: str) -> None:
        super().__init__(card, reader_name=reader)
        self._counter = counter

    def transmit(self, command: bytes) -> bytes:
        if self._counter.pull_on_next_command:
            raise CardRemovedError("the holder pulled the card")
        return super().transmit(command)


class Counter:
    """A terminal, the card slot it reads, and every APDU the terminal sent."""

    def __init__(self, world: SandboxCounter, clock: FakeClock) -> None:
        self.world = world
        self.clock = clock
        self.card: Holder | None = None
        self.connections: list[TracingConnection] = []
        self.screens: list[Screen] = []
        self.pull_on_next_command = False
        self.terminal = Terminal(
            world.service,
            self._connect,
            institution_code=world.institution_code,
            clock=clock,
            timeouts=Timeouts(),
            visual_check=True,
        )
        self.terminal.subscribe(self.screens.append)
        self.terminal.reader_added(READER)

    def _connect(self, reader: str) -> TracingConnection:
        assert self.card is not None
        connection = TracingConnection(PullableConnection(self, self.card.card, reader))
        self.connections.append(connection)
        return connection

    def insert(self, holder: Holder) -> None:
        self.card = holder
        self.terminal.card_inserted(READER)

    def remove(self) -> None:
        self.card = None
        self.terminal.card_removed(READER)

    def state(self) -> TerminalState:
        return self.terminal.state

    def verifies_with_data(self) -> list[bytes]:
        """Every VERIFY that carried a PIN (the empty one only reads the counter)."""
        sent = []
        for connection in self.connections:
            for command in connection.counter.commands:
                raw = command if isinstance(command, bytes) else command.encode()
                if raw[1] == 0x20 and len(raw) > 4:
                    sent.append(raw)
        return sent


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxCounter]:
    with SandboxCounter(tmp_path_factory.mktemp("counter")) as counter:
        yield counter


@pytest.fixture
def counter(world: SandboxCounter) -> Counter:
    return Counter(world, FakeClock())


def _through_pin(counter: Counter, holder: Holder, pin: str | None = None) -> None:
    counter.insert(holder)
    assert counter.state() is TerminalState.CHOOSING_METHOD
    counter.terminal.choose_method("pin")
    assert counter.state() is TerminalState.ENTERING_PIN
    assert counter.terminal.screen.tries_left == 3
    counter.terminal.submit_pin(pin or holder.persona.auth_pin)


def test_valid_patient_goes_through_the_whole_flow(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-valid")
    _through_pin(counter, holder)
    assert counter.state() is TerminalState.TAKING_CONSENTS
    counter.terminal.answer_consents(["PharmacistsInfo"])
    assert counter.state() is TerminalState.SHOWING_RESULT
    result = counter.terminal.screen.result
    assert result is not None
    assert result["qualification_validity"] == "1"
    assert result["consents"] == ["PharmacistsInfo"]
    assert "資格は有効です" in counter.terminal.screen.message_ja
    counter.terminal.acknowledge()
    assert counter.state() is TerminalState.WAITING_FOR_REMOVAL
    counter.remove()
    assert counter.state() is TerminalState.WAITING_FOR_CARD
    assert counter.terminal.held_data()["transaction"] is None
    assert len(counter.verifies_with_data()) == 1
    states = [screen.state for screen in counter.screens]
    assert states[:4] == [
        TerminalState.WAITING_FOR_CARD,
        TerminalState.READING_CARD,
        TerminalState.CHOOSING_METHOD,
        TerminalState.ENTERING_PIN,
    ]


@pytest.mark.parametrize(
    ("qualification", "state", "validity"),
    [
        ("expired", TerminalState.SHOWING_RESULT, "2"),
        ("several", TerminalState.SHOWING_RESULT, "5"),
    ],
)
def test_qualification_codes_reach_their_words(
    world: SandboxCounter,
    counter: Counter,
    qualification: str,
    state: TerminalState,
    validity: str,
) -> None:
    holder = world.new_holder(f"terminal-{qualification}", qualification=qualification)  # type: ignore[arg-type]
    _through_pin(counter, holder)
    counter.terminal.answer_consents([])
    assert counter.state() is state
    assert counter.terminal.screen.result is not None
    assert counter.terminal.screen.result["qualification_validity"] == validity


def test_unregistered_card_is_its_own_failure(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-unregistered", register=False)
    _through_pin(counter, holder)
    counter.terminal.answer_consents([])
    assert counter.state() is TerminalState.NOT_REGISTERED
    assert "利用登録" in counter.terminal.screen.title_ja


def test_revoked_certificate_is_refused_with_its_words(
    world: SandboxCounter, counter: Counter
) -> None:
    holder = world.new_holder("terminal-revoked")
    world.revoke_card(holder)
    _through_pin(counter, holder)
    counter.terminal.answer_consents([])
    assert counter.state() is TerminalState.CERTIFICATE_REVOKED
    assert counter.terminal.screen.title_ja == "電子証明書が失効しています"


def test_renewed_card_is_found_through_the_serial_link(
    world: SandboxCounter, counter: Counter
) -> None:
    holder = world.new_holder("terminal-renewed")
    world.renew_card(holder)
    _through_pin(counter, holder)
    counter.terminal.answer_consents([])
    assert counter.state() is TerminalState.SHOWING_RESULT
    assert counter.terminal.screen.result is not None
    assert counter.terminal.screen.result["qualification_validity"] == "1"


def test_blocked_pin_sends_no_verify(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-blocked")
    world.block_pin(holder)
    counter.insert(holder)
    counter.terminal.choose_method("pin")
    assert counter.state() is TerminalState.PIN_BLOCKED
    assert "市区町村" in counter.terminal.screen.message_ja
    counter.terminal.submit_pin(holder.persona.auth_pin)  # ignored: no PIN pad is shown
    assert counter.verifies_with_data() == []


def test_wrong_pin_then_right_one(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-wrong-pin")
    wrong = "0000" if holder.persona.auth_pin != "0000" else "1111"
    _through_pin(counter, holder, wrong)
    assert counter.state() is TerminalState.WRONG_PIN
    assert counter.terminal.screen.tries_left == 2
    assert "残り2回" in counter.terminal.screen.message_ja
    counter.terminal.submit_pin(holder.persona.auth_pin)
    assert counter.state() is TerminalState.TAKING_CONSENTS
    assert len(counter.verifies_with_data()) == 2


def test_last_try_needs_the_holders_confirmation(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-last-try")
    wrong = "0000" if holder.persona.auth_pin != "0000" else "1111"
    _through_pin(counter, holder, wrong)
    counter.terminal.submit_pin(wrong)
    assert counter.state() is TerminalState.WRONG_PIN
    assert counter.terminal.screen.tries_left == 1
    assert not counter.terminal.screen.pin_pad
    counter.terminal.submit_pin(holder.persona.auth_pin)  # refused until confirmed
    assert len(counter.verifies_with_data()) == 2
    counter.terminal.confirm_last_try()
    assert counter.state() is TerminalState.ENTERING_PIN
    counter.terminal.submit_pin(holder.persona.auth_pin)
    assert counter.state() is TerminalState.TAKING_CONSENTS
    assert len(counter.verifies_with_data()) == 3


def test_malformed_pin_never_reaches_the_card(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-malformed")
    _through_pin(counter, holder, "12a")
    assert counter.state() is TerminalState.ENTERING_PIN
    assert counter.verifies_with_data() == []


def test_card_pulled_mid_pin(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-pulled")
    counter.insert(holder)
    counter.terminal.choose_method("pin")
    counter.remove()
    assert counter.state() is TerminalState.CARD_PULLED
    assert counter.terminal.held_data()["transaction"] is None
    assert counter.verifies_with_data() == []
    counter.clock.advance(Timeouts().card_pulled)
    counter.terminal.tick()
    assert counter.state() is TerminalState.WAITING_FOR_CARD


def test_card_pulled_during_the_verify(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-pulled-verify")
    counter.insert(holder)
    counter.terminal.choose_method("pin")
    # The card leaves while the terminal talks to it (the VERIFY's retry query).
    counter.pull_on_next_command = True
    counter.terminal.submit_pin(holder.persona.auth_pin)
    assert counter.state() is TerminalState.CARD_PULLED
    assert counter.verifies_with_data() == []


def test_unknown_card(world: SandboxCounter, counter: Counter, tmp_path: Path) -> None:
    from support.scripted_card import ScriptedCard

    class Unknown(Holder):
        pass

    scripted = ScriptedCard()
    counter.card = Unknown(persona=None, card=scripted, person_key="x")  # type: ignore[arg-type]
    counter.terminal.card_inserted(READER)
    assert counter.state() is TerminalState.UNKNOWN_CARD


def test_reader_unplugged_and_back(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-unplugged")
    counter.insert(holder)
    counter.terminal.reader_removed(READER)
    assert counter.state() is TerminalState.READER_UNPLUGGED
    assert counter.terminal.held_data()["transaction"] is None
    counter.terminal.reader_added(READER)
    assert counter.state() is TerminalState.WAITING_FOR_CARD


def test_watchdog_returns_to_waiting_and_reminds(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-watchdog")
    counter.insert(holder)
    counter.terminal.choose_method("pin")
    counter.clock.advance(Timeouts().interaction - 1)
    counter.terminal.tick()
    assert counter.state() is TerminalState.ENTERING_PIN
    counter.clock.advance(1)
    counter.terminal.tick()
    assert counter.state() is TerminalState.WAITING_FOR_REMOVAL
    assert counter.terminal.held_data()["transaction"] is None
    counter.clock.advance(Timeouts().removal_reminder)
    counter.terminal.tick()
    assert counter.state() is TerminalState.CARD_LEFT_BEHIND
    counter.remove()
    assert counter.state() is TerminalState.WAITING_FOR_CARD


def test_two_holders_back_to_back_share_nothing(world: SandboxCounter, counter: Counter) -> None:
    first = world.new_holder("terminal-first")
    second = world.new_holder("terminal-second", qualification="expired")
    _through_pin(counter, first)
    counter.terminal.answer_consents(["PharmacistsInfo", "DiagnosisInfo"])
    assert counter.terminal.screen.result is not None
    counter.remove()
    held = counter.terminal.held_data()
    assert held == {"transaction": None, "screen_result": None, "screen_result_file": None}
    counter.insert(second)
    held = counter.terminal.held_data()
    assert held["transaction"] is not None
    assert held["transaction"]["identified"] is False
    assert held["transaction"]["consents"] == []
    assert held["transaction"]["has_result"] is False
    counter.terminal.choose_method("pin")
    assert counter.terminal.screen.tries_left == 3
    counter.terminal.submit_pin(second.persona.auth_pin)
    counter.terminal.answer_consents([])
    result = counter.terminal.screen.result
    assert result is not None
    assert result["qualification_validity"] == "2"
    assert result["consents"] == []


def test_service_stopped_costs_no_pin_try(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-service-down")
    world.stop_service()
    try:
        _through_pin(counter, holder)
        assert counter.state() is TerminalState.SERVICE_UNREACHABLE
        assert "接続できません" in counter.terminal.screen.title_ja
        # The nonce is asked for before the VERIFY: the holder's try was not spent.
        assert counter.verifies_with_data() == []
    finally:
        world.start_service()
    counter.remove()
    _through_pin(counter, holder)
    assert counter.state() is TerminalState.TAKING_CONSENTS


def test_visual_check_by_staff_instead_of_the_pin(world: SandboxCounter, counter: Counter) -> None:
    holder = world.new_holder("terminal-visual")
    world.block_pin(holder)  # a holder whose PIN is locked is still served
    counter.insert(holder)
    counter.terminal.choose_method("pin")
    assert counter.state() is TerminalState.PIN_BLOCKED
    assert any(choice.value == "visual" for choice in counter.terminal.screen.choices)
    counter.terminal.choose_method("visual")
    assert counter.state() is TerminalState.VISUAL_CHECK
    assert counter.terminal.screen.staff_pad and not counter.terminal.screen.pin_pad
    counter.terminal.confirm_visually("000000")  # month 00: never a date, never sent
    assert counter.state() is TerminalState.VISUAL_CHECK
    assert counter.verifies_with_data() == []
    wrong = "010101" if holder.persona.birth_date_code != "010101" else "020202"
    counter.terminal.confirm_visually(wrong)
    assert counter.state() is TerminalState.VISUAL_CHECK
    assert "生年月日が違います" in counter.terminal.screen.message_ja
    counter.terminal.confirm_visually(holder.persona.birth_date_code)
    assert counter.state() is TerminalState.TAKING_CONSENTS
    counter.terminal.answer_consents([])
    assert counter.state() is TerminalState.SHOWING_RESULT
    result = counter.terminal.screen.result
    assert result is not None
    assert result["method"] == "visual"
    assert result["qualification_validity"] == "1"
    # Two VERIFYs of the visual AP's birth-date code (the wrong one, the right one), none of
    # the auth PIN (P2 = 80 | 18, docs/card.md §7.5).
    verifies = counter.verifies_with_data()
    assert len(verifies) == 2
    assert all(command[3] != 0x98 for command in verifies)


def test_expired_certificate_has_its_own_words(world: SandboxCounter, counter: Counter) -> None:
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    holder = world.new_holder("terminal-expired-certificate", register=False)
    jpki = holder.card.profile.application("jpki")
    key = holder.card.state.card_keys[("jpki", jpki.key("auth_key").key_id)]
    # An authentication certificate that ended a year ago, for the card's own key.
    expired = world.issuer.issue_auth_certificate(
        key.public_key(),
        not_before=dt.datetime.now(dt.UTC) - dt.timedelta(days=800),
        validity_days=400,
    )
    file_id = jpki.file("auth_certificate").file_id
    holder.card.state.files[("jpki", file_id)] = expired.public_bytes(serialization.Encoding.DER)
    _through_pin(counter, holder)
    counter.terminal.answer_consents([])
    assert counter.state() is TerminalState.CERTIFICATE_EXPIRED
    assert counter.terminal.screen.title_ja == "電子証明書の有効期限が切れています"
