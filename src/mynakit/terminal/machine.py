"""The counter terminal: a state machine driven by card events, the holder's choices and a clock.

The flow is the one of docs/services.md §A.2: the holder places the card; the terminal reads the
user-authentication certificate without a PIN; the holder chooses the PIN (the default rule) or
a confirmation of the face by staff; the PIN is checked against the retry counter before any
VERIFY (docs/card.md §7.5), the last try is spent only after the holder confirms it, and the PIN
is passed straight to the card and dropped; the card signs the service's nonce; the holder
answers the consent questions (docs/services.md §A.2 item 5); the service answers; the result goes
to the screen and to the receipt computer's ``face`` folder (docs/services.md §A.2 item 6,
docs/services.md §A.4); the holder takes the card.

Every failure is its own state (:mod:`mynakit.terminal.screens`). A watchdog driven by an
injectable clock (``tick``) returns to waiting after a timeout, and every transaction lives in one
:class:`_Transaction` object that is closed and dropped when the card leaves, so nothing of one
holder's transaction survives into the next.

The machine is synchronous and framework-free: callers (the runner thread, the kiosk, tests) call
its input methods; each call runs to completion under one lock and notifies the listeners of
every screen it passes through.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mynakit.card.base import checked_secret
from mynakit.card.detect import CardKind
from mynakit.card.errors import (
    FileNotFoundOnCardError,
    LastTryRefusedError,
    PinBlockedError,
    WrongPinError,
)
from mynakit.card.jpki import JpkiAp
from mynakit.card.presence import prove_presence
from mynakit.card.visual import VisualAp
from mynakit.errors import CardError, DataError, MynakitError, TransportError, UsageError
from mynakit.iso7816.protocol import ApduProtocol
from mynakit.iso7816.status import ApduError
from mynakit.jpki.authentication import card_respond
from mynakit.profiles import load_profile
from mynakit.services.eligibility.codes import ConsentScope, IdentityConfirmationMethod
from mynakit.services.eligibility.core import EligibilityClient
from mynakit.services.eligibility.models import (
    CheckResult,
    FaceConfirmation,
    PinAuthentication,
)
from mynakit.terminal.desks import (
    ELIGIBILITY_CONSENTS,
    SERVICE_FAILURES,
    CounterDesk,
    DeskAnswer,
    EligibilityDesk,
)
from mynakit.terminal.screens import WORDS, Choice, Screen, TerminalState, Words
from mynakit.transport.base import CardRemovedError, Connection

logger = logging.getLogger("mynakit.terminal")


def _well_formed(application: str, key_name: str, secret: str) -> bool:
    """Whether ``secret`` could be right for the card's key: the card layer's own format check
    (length, ASCII digits, an era ``YYMMDD`` birth date; docs/card.md §4), so a slip on the pad
    never reaches the card and never costs a try."""
    key = load_profile().application(application).key(key_name)
    try:
        checked_secret(key, secret)
    except UsageError:
        return False
    return True


#: Writes a card-initiated result for the receipt computer and returns the file's name.
ResultSink = Callable[[CheckResult], str]
Connector = Callable[[str], Connection]
Listener = Callable[[Screen], None]


@dataclass(frozen=True)
class Timeouts:
    """Seconds each state may last before the watchdog acts (kiosk defaults)."""

    interaction: float = 60.0  # choosing, PIN entry, consents
    result: float = 20.0  # the result on screen before "please take your card"
    removal_reminder: float = 20.0  # card still in after that: remind the holder
    failure: float = 15.0  # a failure's words before returning to waiting
    card_pulled: float = 5.0
    busy: float = 60.0  # reading, verifying, querying: a hung reader or service


_INTERACTIVE = {
    TerminalState.CHOOSING_METHOD,
    TerminalState.VISUAL_CHECK,
    TerminalState.CONFIRMING_LAST_TRY,
    TerminalState.ENTERING_PIN,
    TerminalState.WRONG_PIN,
    TerminalState.TAKING_CONSENTS,
}
_BUSY = {TerminalState.READING_CARD, TerminalState.VERIFYING, TerminalState.QUERYING}
_AFTER_TRANSACTION = {TerminalState.WAITING_FOR_REMOVAL, TerminalState.CARD_LEFT_BEHIND}


@dataclass
class _Transaction:
    """Everything of one holder's visit. Dropped whole when the card leaves."""

    reader: str
    connection: Connection
    protocol: ApduProtocol
    session: JpkiAp
    certificate_der: bytes
    tries_left: int | None = None
    last_try_confirmed: bool = False
    identification: PinAuthentication | FaceConfirmation | None = None
    consents: frozenset[ConsentScope] = frozenset()
    answer: DeskAnswer | None = None
    result_file: str | None = None

    def close(self) -> None:
        try:
            self.connection.close()
        except MynakitError:
            logger.debug("closing the card connection failed", exc_info=True)


@dataclass
class TerminalStatistics:
    """Counts a test or an operator may read; nothing personal."""

    transactions: int = 0
    pin_submissions: int = 0
    states: list[str] = field(default_factory=list)


class Terminal:
    """The counter terminal's state machine. Thread-safe; every input runs under one lock."""

    def __init__(
        self,
        service: EligibilityClient | CounterDesk,
        connect: Connector,
        *,
        institution_code: str = "",
        reader: str | None = None,
        visual_check: bool = False,
        result_sink: ResultSink | None = None,
        staff_id: str = "reception",
        clock: Callable[[], float] = time.monotonic,
        timeouts: Timeouts | None = None,
        consent_questions: tuple[tuple[ConsentScope, str, str], ...] = ELIGIBILITY_CONSENTS,
        confirmation_date: Callable[[], dt.date | None] = lambda: None,
    ) -> None:
        # An eligibility client makes a clinic's desk; any other desk is given as is.
        self.desk: CounterDesk = (
            service
            if isinstance(service, CounterDesk)
            else EligibilityDesk(service, institution_code, confirmation_date, consent_questions)
        )
        self.connect = connect
        self.institution_code = institution_code
        self.reader = reader
        self.visual_check = visual_check
        self.result_sink = result_sink
        self.staff_id = staff_id
        self.clock = clock
        self.timeouts = timeouts or Timeouts()
        self.statistics = TerminalStatistics()
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._readers: set[str] = set()
        self._cards: set[str] = set()
        self._transaction: _Transaction | None = None
        self._sequence = 0
        self._entered_at = clock()
        self._state = TerminalState.READER_UNPLUGGED
        self._screen = self._make_screen(TerminalState.READER_UNPLUGGED)

    # -- observation -----------------------------------------------------------------------

    @property
    def state(self) -> TerminalState:
        return self._state

    @property
    def screen(self) -> Screen:
        return self._screen

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every new screen; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def held_data(self) -> dict[str, Any]:
        """What the terminal holds right now about a holder (for tests and audits)."""
        with self._lock:
            transaction = self._transaction
            return {
                "transaction": None
                if transaction is None
                else {
                    "reader": transaction.reader,
                    "has_certificate": bool(transaction.certificate_der),
                    "identified": transaction.identification is not None,
                    "consents": sorted(scope.value for scope in transaction.consents),
                    "has_result": transaction.answer is not None,
                },
                "screen_result": self._screen.result,
                "screen_result_file": self._screen.result_file,
            }

    # -- card and reader events ----------------------------------------------------------------

    def reader_added(self, reader: str) -> None:
        with self._lock:
            self._readers.add(reader)
            if self._state is TerminalState.READER_UNPLUGGED and self._watches(reader):
                self._enter(TerminalState.WAITING_FOR_CARD)

    def reader_removed(self, reader: str) -> None:
        with self._lock:
            self._readers.discard(reader)
            self._cards.discard(reader)
            if self._transaction is not None and self._transaction.reader == reader:
                self._end_transaction()
            if not any(self._watches(name) for name in self._readers):
                self._enter(TerminalState.READER_UNPLUGGED)

    def card_inserted(self, reader: str) -> None:
        with self._lock:
            if not self._watches(reader):
                return
            self._readers.add(reader)
            self._cards.add(reader)
            if self._transaction is not None:
                return  # one holder at a time; the other card waits for its own insertion
            if (
                self._state
                not in (
                    TerminalState.WAITING_FOR_CARD,
                    TerminalState.READER_UNPLUGGED,
                    TerminalState.CARD_PULLED,
                )
                and not self._state.is_failure
            ):
                return
            self._start_transaction(reader)

    def card_removed(self, reader: str) -> None:
        with self._lock:
            self._cards.discard(reader)
            transaction = self._transaction
            if transaction is None or transaction.reader != reader:
                if self._state in _AFTER_TRANSACTION or self._state.is_failure:
                    self._enter(TerminalState.WAITING_FOR_CARD)
                return
            finished = (
                self._state
                in (
                    TerminalState.SHOWING_RESULT,
                    TerminalState.WAITING_FOR_REMOVAL,
                    TerminalState.CARD_LEFT_BEHIND,
                )
                or self._state.is_failure
            )
            self._end_transaction()
            self._enter(TerminalState.WAITING_FOR_CARD if finished else TerminalState.CARD_PULLED)

    def handle_card_event(self, event: Any) -> None:
        """Feed a ``mynakit.transport.readers.CardEvent`` (by its kind's value)."""
        kind = getattr(event.kind, "value", str(event.kind))
        handler = {
            "card_inserted": self.card_inserted,
            "card_removed": self.card_removed,
            "reader_added": self.reader_added,
            "reader_removed": self.reader_removed,
        }.get(kind)
        if handler is not None:
            handler(event.reader)

    # -- the holder's inputs ---------------------------------------------------------------

    def choose_method(self, method: str) -> None:
        """``pin``, or ``visual`` (a staff member confirms the face; docs/services.md §A.2
        item 2). Face recognition needs the reader's camera and keys a toolkit cannot have."""
        with self._lock:
            transaction = self._transaction
            allowed = {TerminalState.CHOOSING_METHOD, TerminalState.CONFIRMING_LAST_TRY}
            if method != "pin":
                allowed |= {TerminalState.PIN_BLOCKED, TerminalState.WRONG_PIN}
            if transaction is None or self._state not in allowed:
                return
            if method == "pin":
                self._prepare_pin(transaction)
            elif method == "visual" and self.visual_check:
                self._enter(TerminalState.VISUAL_CHECK)

    def confirm_visually(self, birth_date_code: str) -> None:
        """The receptionist has compared the holder's face with the card's photo and typed the
        birth date printed on it (era YYMMDD), which opens the card's age record for the
        presence proof (docs/services.md §A.2 item 2, docs/card.md §7.13)."""
        with self._lock:
            transaction = self._transaction
            if transaction is None or self._state is not TerminalState.VISUAL_CHECK:
                return
            if not _well_formed("visual", "birth_date_code", birth_date_code):
                self._enter(TerminalState.VISUAL_CHECK, code_format_error=True)
                return
            self._confirm_face(transaction, IdentityConfirmationMethod.VISUAL, birth_date_code)

    def confirm_last_try(self) -> None:
        """The holder accepts spending the last PIN try (docs/card.md §11.1)."""
        with self._lock:
            transaction = self._transaction
            if transaction is None or self._state not in (
                TerminalState.CONFIRMING_LAST_TRY,
                TerminalState.WRONG_PIN,
            ):
                return
            if transaction.tries_left != 1:
                return
            transaction.last_try_confirmed = True
            self._enter(TerminalState.ENTERING_PIN, tries=1)

    def submit_pin(self, pin: str) -> None:
        """The holder's PIN, used for one VERIFY and dropped. Never stored, never logged."""
        with self._lock:
            transaction = self._transaction
            if transaction is None or self._state not in (
                TerminalState.ENTERING_PIN,
                TerminalState.WRONG_PIN,
            ):
                return
            if self._state is TerminalState.WRONG_PIN and transaction.tries_left == 1:
                return  # the last try needs the holder's confirmation first
            if not _well_formed("jpki", "auth_pin", pin):
                # A malformed PIN never reaches the card: no try is spent on a slip.
                self._enter(self._state, tries=transaction.tries_left, pin_format_error=True)
                return
            self.statistics.pin_submissions += 1
            self._authenticate_with_pin(transaction, pin)

    def answer_consents(self, scopes: Iterable[str]) -> None:
        """The scopes the holder agreed to at the reader; the rest are refused."""
        with self._lock:
            transaction = self._transaction
            if transaction is None or self._state is not TerminalState.TAKING_CONSENTS:
                return
            offered = {scope.value: scope for scope, _, _ in self.desk.consent_questions}
            transaction.consents = frozenset(offered[name] for name in scopes if name in offered)
            self._query(transaction)

    def acknowledge(self) -> None:
        """The holder has read the result: ask for the card."""
        with self._lock:
            if self._state is TerminalState.SHOWING_RESULT:
                self._enter(TerminalState.WAITING_FOR_REMOVAL)

    def cancel(self) -> None:
        """Stop this holder's transaction (the 取消 button); the card stays until taken."""
        with self._lock:
            if self._transaction is None:
                return
            self._end_transaction()
            self._enter(
                TerminalState.WAITING_FOR_REMOVAL if self._cards else TerminalState.WAITING_FOR_CARD
            )

    # -- the watchdog -----------------------------------------------------------------------

    def tick(self) -> None:
        """Act on the state's timeout, if it has passed (call it periodically)."""
        with self._lock:
            elapsed = self.clock() - self._entered_at
            state = self._state
            card_in = bool(self._cards)
            if state in _INTERACTIVE or state in _BUSY:
                limit = self.timeouts.busy if state in _BUSY else self.timeouts.interaction
                if elapsed >= limit:
                    self._end_transaction()
                    self._enter(
                        TerminalState.WAITING_FOR_REMOVAL
                        if card_in
                        else TerminalState.WAITING_FOR_CARD
                    )
            elif state is TerminalState.SHOWING_RESULT:
                if elapsed >= self.timeouts.result:
                    self._enter(TerminalState.WAITING_FOR_REMOVAL)
            elif state is TerminalState.WAITING_FOR_REMOVAL:
                if not card_in:
                    self._end_transaction()
                    self._enter(TerminalState.WAITING_FOR_CARD)
                elif elapsed >= self.timeouts.removal_reminder:
                    self._enter(TerminalState.CARD_LEFT_BEHIND)
            elif state is TerminalState.CARD_PULLED:
                if elapsed >= self.timeouts.card_pulled:
                    self._enter(TerminalState.WAITING_FOR_CARD)
            elif (
                state.is_failure
                and state is not TerminalState.READER_UNPLUGGED
                and elapsed >= self.timeouts.failure
            ):
                self._end_transaction()
                self._enter(
                    TerminalState.WAITING_FOR_REMOVAL if card_in else TerminalState.WAITING_FOR_CARD
                )

    # -- the flow ----------------------------------------------------------------------------

    def _watches(self, reader: str) -> bool:
        # ``reader`` may be a unique part of the name, as --reader takes it.
        return self.reader is None or self.reader in reader

    def _start_transaction(self, reader: str) -> None:
        self._enter(TerminalState.READING_CARD)
        self.statistics.transactions += 1
        connection: Connection | None = None
        try:
            connection = self.connect(reader)
            protocol = ApduProtocol(connection, extended_length=connection.extended_length)
            session = JpkiAp.open(protocol)
            if session.token().kind is not CardKind.MY_NUMBER_CARD:
                # Juki cards and smartphone tokens are not insurance cards at this reader
                # (docs/services.md §A.2 item 8: phones go to a separate generic reader).
                connection.close()
                self._enter(TerminalState.UNKNOWN_CARD)
                return
            certificate_der = session.read_certificate("auth")
        except (FileNotFoundOnCardError, DataError, ApduError):
            if connection is not None:
                connection.close()
            self._enter(TerminalState.UNKNOWN_CARD)
            return
        except CardRemovedError:
            if connection is not None:
                connection.close()
            self._cards.discard(reader)
            self._enter(TerminalState.CARD_PULLED)
            return
        except (TransportError, CardError):
            logger.warning("reading the card failed", exc_info=True)
            if connection is not None:
                connection.close()
            self._enter(TerminalState.CARD_ERROR)
            return
        self._transaction = _Transaction(reader, connection, protocol, session, certificate_der)
        self._enter(TerminalState.CHOOSING_METHOD)

    def _prepare_pin(self, transaction: _Transaction) -> None:
        try:
            # The empty VERIFY: the counter, no try spent (docs/card.md §7.5).
            tries = transaction.session.tries_left("auth_pin")
        except MynakitError as error:
            self._card_failure(error)
            return
        transaction.tries_left = tries
        transaction.last_try_confirmed = False
        if tries == 0:
            self._enter(TerminalState.PIN_BLOCKED)
        elif tries == 1:
            self._enter(TerminalState.CONFIRMING_LAST_TRY)
        else:
            self._enter(TerminalState.ENTERING_PIN, tries=tries)

    def _authenticate_with_pin(self, transaction: _Transaction, pin: str) -> None:
        self._enter(TerminalState.VERIFYING)
        try:
            # The nonce first: an unreachable service must not cost the holder a PIN try.
            challenge = self.desk.begin_authentication()
        except SERVICE_FAILURES:
            self._enter(TerminalState.SERVICE_UNREACHABLE)
            return
        try:
            response = card_respond(
                transaction.session, challenge, pin, force=transaction.last_try_confirmed
            )
        except WrongPinError as error:
            transaction.tries_left = error.tries_left
            transaction.last_try_confirmed = False
            self._enter(TerminalState.WRONG_PIN, tries=error.tries_left)
            return
        except PinBlockedError:
            transaction.tries_left = 0
            self._enter(TerminalState.PIN_BLOCKED)
            return
        except LastTryRefusedError:
            transaction.tries_left = 1
            self._enter(TerminalState.CONFIRMING_LAST_TRY)
            return
        except MynakitError as error:
            self._card_failure(error)
            return
        finally:
            del pin  # held no longer than the VERIFY needed it
        transaction.identification = PinAuthentication(response)
        self._after_identification(transaction)

    def _confirm_face(
        self, transaction: _Transaction, method: IdentityConfirmationMethod, birth_date_code: str
    ) -> None:
        self._enter(TerminalState.VERIFYING)
        try:
            challenge = self.desk.begin_presence()
        except SERVICE_FAILURES:
            self._enter(TerminalState.SERVICE_UNREACHABLE)
            return
        try:
            # The visual AP's own key answers the service's challenge (docs/card.md §7.13).
            proof = prove_presence(VisualAp(transaction.protocol), challenge.nonce, birth_date_code)
        except WrongPinError as error:
            self._enter(TerminalState.VISUAL_CHECK, code_wrong=True, tries=error.tries_left)
            return
        except MynakitError as error:
            self._card_failure(error)
            return
        finally:
            del birth_date_code
        transaction.identification = FaceConfirmation(
            method=method,
            certificate_der=transaction.certificate_der,
            presence_challenge_id=challenge.challenge_id,
            presence=proof,
            confirmed_by=self.staff_id
            if method is IdentityConfirmationMethod.VISUAL
            else f"face-recognition:{self.staff_id}",
        )
        self._after_identification(transaction)

    def _after_identification(self, transaction: _Transaction) -> None:
        if self.desk.consent_questions:
            self._enter(TerminalState.TAKING_CONSENTS)
        else:
            self._query(transaction)

    def _query(self, transaction: _Transaction) -> None:
        assert transaction.identification is not None
        self._enter(TerminalState.QUERYING)
        try:
            answer = self.desk.answer(transaction.identification, transaction.consents)
        except SERVICE_FAILURES:
            self._enter(TerminalState.SERVICE_UNREACHABLE)
            return
        transaction.answer = answer
        if answer.file_result is not None and self.result_sink is not None:
            try:
                transaction.result_file = self.result_sink(answer.file_result)
            except OSError:
                logger.exception("writing the result file for the receipt computer failed")
        self._enter(answer.state)

    def _card_failure(self, error: MynakitError) -> None:
        if isinstance(error, CardRemovedError):
            reader = self._transaction.reader if self._transaction else None
            self._end_transaction()
            if reader is not None:
                self._cards.discard(reader)
            self._enter(TerminalState.CARD_PULLED)
            return
        logger.warning("card operation failed: %s", type(error).__name__)
        self._end_transaction()
        self._enter(TerminalState.CARD_ERROR)

    def _end_transaction(self) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            transaction.close()

    # -- screens -------------------------------------------------------------------------------

    def _enter(self, state: TerminalState, **details: Any) -> None:
        self._state = state
        self._entered_at = self.clock()
        self._screen = self._make_screen(state, **details)
        self.statistics.states.append(state.value)
        logger.info("terminal state: %s", state.value)
        for listener in list(self._listeners):
            try:
                listener(self._screen)
            except Exception:
                logger.exception("terminal listener failed")

    def _make_screen(self, state: TerminalState, **details: Any) -> Screen:
        self._sequence += 1
        transaction = self._transaction
        tries = details.get("tries")
        answer = transaction.answer if transaction is not None else None
        template = self.desk.words.get(state) or WORDS[state]
        values = {
            "tries": tries if tries is not None else "-",
            "result_ja": answer.message_ja if answer is not None else "",
            "result_en": answer.message_en if answer is not None else "",
        }
        words = Words(
            *(
                text.format(**values)
                for text in (
                    template.title_ja,
                    template.message_ja,
                    template.title_en,
                    template.message_en,
                )
            )
        )
        message_ja, message_en = words.message_ja, words.message_en
        if details.get("pin_format_error"):
            message_ja = "4桁の数字を入力してください。" + message_ja
            message_en = "Enter 4 digits. " + message_en
        if details.get("code_format_error") or details.get("code_wrong"):
            message_ja = "生年月日が違います。" + message_ja
            message_en = "The birth date does not match. " + message_en
        choices: list[Choice] = []
        pin_pad = False
        staff_pad = False
        face_offered = self.visual_check
        if state is TerminalState.CHOOSING_METHOD:
            choices.append(Choice("choose", "暗証番号を入力", "Enter PIN", "pin"))
            if face_offered:
                choices.append(
                    Choice("choose", "職員による目視確認", "Visual check by staff", "visual")
                )
        elif state is TerminalState.CONFIRMING_LAST_TRY or (
            state is TerminalState.WRONG_PIN and tries == 1
        ):
            choices.append(Choice("confirm_last_try", "入力を続ける", "Continue with the PIN"))
            if face_offered:
                choices.append(
                    Choice("choose", "職員による目視確認", "Visual check by staff", "visual")
                )
        elif state in (TerminalState.ENTERING_PIN, TerminalState.WRONG_PIN):
            pin_pad = True
        elif state is TerminalState.PIN_BLOCKED and face_offered and transaction is not None:
            choices.append(
                Choice("choose", "職員による目視確認", "Visual check by staff", "visual")
            )
        elif state is TerminalState.VISUAL_CHECK:
            staff_pad = True
        elif state is TerminalState.TAKING_CONSENTS:
            for scope, label_ja, label_en in self.desk.consent_questions:
                choices.append(Choice("consent", label_ja, label_en, scope.value))
        elif state is TerminalState.SHOWING_RESULT:
            choices.append(Choice("acknowledge", "確認しました", "OK"))
        if transaction is not None and state in _INTERACTIVE:
            choices.append(Choice("cancel", "取消", "Cancel"))
        return Screen(
            state=state,
            sequence=self._sequence,
            title_ja=words.title_ja,
            message_ja=message_ja,
            title_en=words.title_en,
            message_en=message_en,
            pin_pad=pin_pad,
            staff_pad=staff_pad,
            tries_left=tries,
            choices=tuple(choices),
            result=answer.view if answer is not None else None,
            result_file=transaction.result_file if transaction is not None else None,
            staff_note_ja=_STAFF_NOTES.get(state, ("", ""))[0],
            staff_note_en=_STAFF_NOTES.get(state, ("", ""))[1],
        )


_STAFF_NOTES: dict[TerminalState, tuple[str, str]] = {
    TerminalState.VISUAL_CHECK: (
        "券面の顔写真とご本人を確認し、券面の生年月日（和暦 YYMMDD）を入力してください。",
        "Compare the holder with the card's photo, then enter the birth date on the card "
        "(era YYMMDD).",
    ),
    TerminalState.PIN_BLOCKED: (
        "暗証番号ロック: 目視確認で受付できます。解除は市区町村窓口。",
        "PIN locked: confirm visually; the municipal office resets it.",
    ),
    TerminalState.CERTIFICATE_EXPIRED: (
        "電子証明書の期限切れ: 資格確認書または保険証で確認してください。",
        "Certificate expired: check with the eligibility certificate or insurance card.",
    ),
    TerminalState.CERTIFICATE_REVOKED: (
        "電子証明書失効: 資格確認書または保険証で確認してください。",
        "Certificate revoked: check with the eligibility certificate or insurance card.",
    ),
    TerminalState.NOT_REGISTERED: (
        "利用登録なし: 資格確認書等で確認してください。",
        "Not registered: check with the eligibility certificate.",
    ),
    TerminalState.SERVICE_UNREACHABLE: (
        "資格確認サービスに接続できません。回線と端末を確認してください。",
        "Eligibility service unreachable: check the line and the terminal.",
    ),
    TerminalState.READER_UNPLUGGED: (
        "カードリーダーのUSB接続を確認してください。",
        "Check the card reader's USB connection.",
    ),
    TerminalState.NO_QUALIFICATION: (
        "該当資格なし: 保険者への確認が必要です。",
        "No qualification: the insurer must be asked.",
    ),
}
