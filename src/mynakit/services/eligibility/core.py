"""The eligibility service's core: who the card is, which qualification holds, what to answer.

Framework-free (no web framework, no SQL driver): storage, the access log, the issuer's serial
link and the card-presence verifier are protocols the services layer implements. The flow of a
check (docs/services.md §A.2, §A.4): identify the holder (PIN: the card signed the service's
nonce; face or visual: the certificate read without PIN plus a card-presence proof and the name
of who confirmed), validate the certificate fully (chain, validity, revocation), find the person
through the certificate serial (following the issuer's renewal link), decide the validity code
on the check date, return the consent-gated items only while the consent holds, and leave an
access record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import secrets
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

from mynakit.card.presence import PresenceProof
from mynakit.errors import MynakitError, UsageError, VerificationError
from mynakit.jpki.authentication import (
    AuthenticationError,
    Authenticator,
    BadSignatureError,
    CertificateRejectedError,
    Challenge,
    ChallengeResponse,
    ExpiredNonceError,
    NonceState,
    ReplayedNonceError,
    RevokedCertificateError,
    UnknownNonceError,
)
from mynakit.jpki.certificates import CertificateKind, JpkiCertificate, parse_certificate
from mynakit.jpki.revocation import RevocationChecker
from mynakit.jpki.trust import TrustStore
from mynakit.jpki.validation import CertificateValidationError, ValidationFailure, validate_path
from mynakit.services.eligibility.codes import (
    ERROR_MESSAGES,
    ConsentFlag,
    ConsentScope,
    IdentityConfirmationMethod,
    ProcessingResultCode,
    ProcessingResultStatus,
    QualificationValidity,
    ReferenceClassification,
    ResultErrorCode,
    SegmentOfResult,
)
from mynakit.services.eligibility.models import (
    AccessRecordView,
    CardCheckRequest,
    CheckResult,
    Consent,
    ConsentState,
    FaceConfirmation,
    InsuranceCardCheckRequest,
    InsuranceCardQuery,
    InsuredRecord,
    InvalidRecordError,
    MessageBody,
    MessageHeader,
    PinAuthentication,
    Registration,
    RegistrationRequest,
    ResultOfQualificationConfirmation,
    check_date_range,
    japan_today,
    normalize_institution_code,
    preschool_on,
)
from mynakit.services.errors import NotFoundError, ServiceError
from mynakit.services.issuer_link import SerialLinkConsentError

# Viewing consent lasts 24 hours (docs/services.md §A.2 item 7). The limit-certificate consent
# has no AvailableTime in the response (docs/services.md §A.4); the sandbox lets it last as long, so
# a same-day second check at the same counter does not ask again.
CONSENT_LIFETIMES: dict[ConsentScope, dt.timedelta] = {
    scope: dt.timedelta(hours=24) for scope in ConsentScope
}
# Consents given after the result must come from the counter that made the check, while the
# holder is still there: an institution cannot invent a consent hours later.
CONSENT_AFTER_CHECK_WINDOW = dt.timedelta(minutes=10)
# A renewal chain longer than this is not a holder's history (5-year certificates).
MAX_RENEWAL_STEPS = 16

ACCESS_ITEM_QUALIFICATION = "qualification"
ACCESS_ITEM_LIMIT_CERTIFICATE = "limit_certificate"
ACCESS_ITEM_SPECIFIC_DISEASES = "specific_diseases"


class RegistrationError(ServiceError):
    """初回登録 refused: no matching insured person, or the card belongs to someone else."""

    code = "registration_refused"
    status = 409
    exit_code = 8


class CheckNotFoundError(NotFoundError):
    """No check with this id by this institution (or it is too old to take consents)."""

    exit_code = 8


class PresenceError(AuthenticationError):
    """The card-presence proof did not verify (face/visual mode)."""


# -- the ports the services layer implements -------------------------------------------------------


@dataclass(frozen=True)
class InsurerSummary:
    insurer_number: str
    insurer_name: str
    records: int


@dataclass(frozen=True)
class CheckRecord:
    """What the service remembers of a check, to accept consents given after the result."""

    check_id: str
    institution_code: str
    person_key: str
    checked_at: dt.datetime
    confirmation_date: dt.date
    reference_classification: ReferenceClassification
    method: str
    confirmed_by: str | None
    query: InsuranceCardQuery | None = None


@dataclass(frozen=True)
class AccessEntry:
    """One access record: who (institution), when, why, which items, how the holder was
    identified; ``subject`` is the person key; never the content."""

    subject: str
    institution_code: str
    accessed_at: dt.datetime
    purpose: str
    items: tuple[str, ...]
    method: str

    def view(self) -> AccessRecordView:
        return AccessRecordView(
            institution_code=self.institution_code,
            accessed_at=self.accessed_at,
            purpose=self.purpose,
            items=self.items,
            method=self.method,
        )


@dataclass(frozen=True)
class CardHolder:
    person_key: str
    records: list[InsuredRecord]
    consents: list[Consent]


class EligibilityRepository(Protocol):
    """Storage of insured records, card bindings, consents and checks. Every write method
    returns only after the write is durable (committed)."""

    def add_records(self, records: Iterable[InsuredRecord]) -> int: ...

    def insurers(self) -> list[InsurerSummary]: ...

    def records_for_person(self, person_key: str) -> list[InsuredRecord]: ...

    def find_by_card(self, query: InsuranceCardQuery) -> list[InsuredRecord]: ...

    def person_for_serial(self, serial: int) -> str | None: ...

    def card_holder(self, serial: int, institution_code: str) -> CardHolder | None:
        """For an active (registered, not superseded) serial: the person, all their records
        and their consents at ``institution_code``, read together (the hot path of a check)."""
        ...

    def card_key_for_serial(self, serial: int) -> str | None:
        """The card key enrolled for face/visual confirmation with this (active) serial."""
        ...

    def bind_serial(
        self,
        serial: int,
        person_key: str,
        at: dt.datetime,
        predecessor: int | None,
        card_key: str | None = None,
    ) -> str:
        """Bind ``serial`` to ``person_key`` unless it is bound already; return the person the
        serial is bound to afterwards (atomic: two concurrent binds agree). A ``predecessor``
        stops resolving and hands its enrolled card key on; ``card_key`` enrols (or replaces)
        the card key of a binding to the same person."""
        ...

    def consents_for(self, institution_code: str, person_key: str) -> list[Consent]:
        """The person's consents at ``institution_code`` (``"*"``: at every institution)."""
        ...

    def commit_check(
        self, check: CheckRecord, consents: Sequence[Consent], access: AccessEntry
    ) -> None:
        """Record a check, the consents given with it and its access record in ONE
        transaction, durable when this returns: the answer goes out only after it."""
        ...

    def find_check(self, check_id: str) -> CheckRecord | None: ...

    def access_records(self, subject: str) -> list[AccessEntry]:
        """The access records of one person, oldest first."""
        ...

    def check_batch(self) -> AbstractContextManager[CheckBatch | None]:
        """One transaction for a batch of PIN checks (nonces, holders, checks and access
        records), or ``None`` when this repository does not hold the authenticator's nonces."""
        ...


@dataclass(frozen=True)
class CheckWrite:
    """What one accepted check writes: the check, the consents given with it, its access
    record."""

    check: CheckRecord
    consents: Sequence[Consent]
    access: AccessEntry


class CheckBatch(Protocol):
    """The reads and writes of a batch of PIN checks inside one transaction, committed
    together when the batch's context ends (docs/services.md §A.6: the answers leave after
    the commit). Each method is a few statements for the whole batch, whatever its size."""

    def consume_pin_nonces(
        self, challenge_ids: Sequence[str], at: dt.datetime
    ) -> list[tuple[NonceState, Challenge | None]]:
        """One answer per challenge ID, in order; an ID given twice is a replay the second
        time."""
        ...

    def card_holders(self, keys: Sequence[tuple[int, str]]) -> list[CardHolder | None]:
        """For each ``(serial, institution_code)``: the holder of the active serial with all
        their records and their consents at that institution, or ``None`` (not bound)."""
        ...

    def commit_checks(self, writes: Sequence[CheckWrite]) -> None:
        """Record the checks, their consents and their access records (in this order within
        each access chain)."""
        ...


class SerialLink(Protocol):
    """The issuer's renewal link: the serial a renewed certificate replaced, if any."""

    def previous_serial(self, serial: int) -> int | None: ...


class PresenceVerifier(Protocol):
    """Card-presence challenges for face/visual mode (docs/card.md §7.13; implemented by
    ``mynakit.services.auth.presence.PresenceChallenges``): ``begin`` issues a challenge,
    ``verify`` consumes it, checks the card's answer and returns the card key's fingerprint,
    raising :class:`~mynakit.jpki.authentication.AuthenticationError` on any failure."""

    def begin(self) -> Challenge: ...

    def verify(self, challenge_id: str, proof: PresenceProof) -> str: ...


class EligibilityClient(Protocol):
    """What a counter terminal calls: in-process (:class:`EligibilityService`) or over HTTP."""

    def begin_authentication(self) -> Challenge: ...

    def begin_presence(self) -> Challenge: ...

    def check_by_card(self, request: CardCheckRequest) -> CheckResult: ...

    def check_by_insurance_card(self, request: InsuranceCardCheckRequest) -> CheckResult: ...

    def register(self, request: RegistrationRequest) -> Registration: ...

    def give_consents(
        self, institution_code: str, check_id: str, scopes: Collection[ConsentScope]
    ) -> CheckResult: ...

    def history(self, authentication: ChallengeResponse) -> list[AccessRecordView]: ...

    def holder_consents(self, authentication: ChallengeResponse) -> list[Consent]: ...


# -- the validity decision ---------------------------------------------------------------------


def decide_validity(
    targets: Sequence[InsuredRecord],
    person_records: Sequence[InsuredRecord],
    day: dt.date,
) -> tuple[QualificationValidity, list[InsuredRecord]]:
    """The QualificationValidity (OQSCD006, docs/services.md §A.4) on ``day`` and the records
    the result lists.

    ``targets`` are the records the query names (all of the person's for a card check; the
    ones matching the insurance card for a data check); ``person_records`` are all records of
    the same people, to see a newer qualification. 1: exactly one target holds on the day;
    5: several hold; 3: none holds and the person has a qualification acquired after the
    latest target (a new insurer, or a renewal starting later); 2: none holds, nothing newer;
    4: no target had started by the day.
    """
    started = [record for record in targets if record.qualification_date <= day]
    if not started:
        return QualificationValidity.NO_QUALIFICATION, []
    holding = [record for record in started if record.qualified_on(day)]
    if len(holding) == 1:
        return QualificationValidity.VALID, holding
    if holding:
        return QualificationValidity.SEVERAL, _ordered(holding)
    latest = max(record.qualification_date for record in started)
    started_keys = {record.card_key for record in started}
    newer = [
        record
        for record in person_records
        if record.qualification_date > latest and record.card_key not in started_keys
    ]
    lost = _ordered(started)
    if newer:
        return QualificationValidity.INVALID_NEWER_EXISTS, lost
    return QualificationValidity.INVALID, lost


def _ordered(records: Iterable[InsuredRecord]) -> list[InsuredRecord]:
    return sorted(records, key=lambda r: (r.qualification_date, r.card_key), reverse=True)


# -- certificate validation without a signature (face/visual mode) ------------------------------


@dataclass(frozen=True)
class ValidatedCertificate:
    serial: int
    certificate: JpkiCertificate


class CertificateValidator:
    """Chain, validity and revocation of an authentication certificate read without PIN."""

    def __init__(
        self,
        trust_store: TrustStore,
        revocation: RevocationChecker | None,
        *,
        production: bool = False,
    ) -> None:
        self._trust_store = trust_store
        self._revocation = revocation
        self._production = production

    def validate(self, certificate_der: bytes, at: dt.datetime) -> ValidatedCertificate:
        certificate = parse_certificate(certificate_der)
        if certificate.kind is not CertificateKind.AUTH:
            raise CertificateRejectedError(
                ValidationFailure.WRONG_PURPOSE, "not an authentication certificate"
            )
        try:
            validate_path(
                certificate,
                self._trust_store,
                at=at,
                purpose=CertificateKind.AUTH,
                require_production=self._production,
                revocation=self._revocation,
            )
        except CertificateValidationError as error:
            error_class = (
                RevokedCertificateError
                if error.reason is ValidationFailure.REVOKED
                else CertificateRejectedError
            )
            raise error_class(error.reason, str(error)) from error
        return ValidatedCertificate(serial=certificate.serial_number, certificate=certificate)


class _RefusalError(Exception):
    """A check refused before any person's data was read: the error code of the abnormal
    end, a machine reason and the detail for the message."""

    def __init__(self, code: ResultErrorCode, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.reason = reason
        self.detail = detail


def _refusal_for(error: VerificationError) -> _RefusalError:
    """Which error code a terminal sees for a failed identification, and the machine reason."""
    detail = str(error)
    if isinstance(error, PresenceError):
        return _RefusalError(ResultErrorCode.PRESENCE_NOT_PROVEN, "presence_not_proven", detail)
    if isinstance(error, UnknownNonceError):
        return _RefusalError(ResultErrorCode.AUTHENTICATION_REFUSED, "unknown_nonce", detail)
    if isinstance(error, ReplayedNonceError):
        return _RefusalError(ResultErrorCode.AUTHENTICATION_REFUSED, "replayed_nonce", detail)
    if isinstance(error, ExpiredNonceError):
        return _RefusalError(ResultErrorCode.AUTHENTICATION_REFUSED, "expired_nonce", detail)
    if isinstance(error, BadSignatureError):
        return _RefusalError(ResultErrorCode.AUTHENTICATION_REFUSED, "bad_signature", detail)
    if isinstance(error, CertificateRejectedError | CertificateValidationError):
        reason = error.reason
        if reason is ValidationFailure.REVOKED:
            return _RefusalError(ResultErrorCode.CERTIFICATE_REVOKED, "revoked", detail)
        if reason in (ValidationFailure.EXPIRED, ValidationFailure.NOT_YET_VALID):
            return _RefusalError(ResultErrorCode.CERTIFICATE_EXPIRED, reason.value, detail)
        if reason is ValidationFailure.REVOCATION_UNKNOWN:
            return _RefusalError(ResultErrorCode.REVOCATION_UNAVAILABLE, reason.value, detail)
        return _RefusalError(ResultErrorCode.CERTIFICATE_UNTRUSTED, reason.value, detail)
    if isinstance(error, AuthenticationError):
        return _RefusalError(ResultErrorCode.AUTHENTICATION_REFUSED, "refused", detail)
    return _RefusalError(ResultErrorCode.CERTIFICATE_UNTRUSTED, "certificate_unreadable", detail)


# -- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Identified:
    serial: int
    method: IdentityConfirmationMethod
    confirmed_by: str | None


@dataclass(frozen=True)
class _PendingCheck:
    """A card check of a batch: its place in the batch, its institution and check day."""

    index: int
    request: CardCheckRequest
    institution: str
    day: dt.date


def _pin_response(request: CardCheckRequest) -> ChallengeResponse:
    identification = request.identification
    if not isinstance(identification, PinAuthentication):
        raise UsageError("only PIN checks share a batch's transaction")
    return identification.response


def _unanswered() -> Exception:
    return RuntimeError("a check of the batch was left without an answer")


class EligibilityService:
    """The eligibility service's behaviour; an :class:`EligibilityClient` in-process.

    ``authenticator`` verifies PIN-mode answers (its nonce store should be the database one
    so several processes share it); ``certificate_validator`` and ``presence`` serve face and
    visual mode (without ``presence`` those modes are refused); ``serial_link`` follows
    renewals.
    """

    def __init__(
        self,
        repository: EligibilityRepository,
        authenticator: Authenticator,
        *,
        certificate_validator: CertificateValidator | None = None,
        presence: PresenceVerifier | None = None,
        serial_link: SerialLink | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.repository = repository
        self.authenticator = authenticator
        self.certificate_validator = certificate_validator
        self.presence = presence
        self.serial_link = serial_link
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    # -- challenges

    def begin_authentication(self) -> Challenge:
        return self.authenticator.begin()

    def begin_presence(self) -> Challenge:
        if self.presence is None:
            raise UsageError("this service does not accept face or visual confirmation")
        return self.presence.begin()

    # -- registration

    def register(self, request: RegistrationRequest) -> Registration:
        """初回登録: bind the authenticated certificate's serial to the insured person whose
        card data the holder confirmed (docs/services.md §A.1). Registering again is harmless."""
        query = request.query.normalized()
        response = request.authentication
        identity = self.authenticator.complete(
            response.challenge_id,
            response.signature,
            response.certificate_der,
            hash_algorithm=response.hash_algorithm,
        )
        now = self._now()
        matches = self.repository.find_by_card(query)
        people = {record.person_key for record in matches}
        if not people:
            raise RegistrationError(
                "no insured person matches this insurer, card symbol, number, branch and "
                "birth date; check the insurance card data"
            )
        if len(people) > 1:
            raise RegistrationError(
                "the insurance card data matches several people; ask the insurer"
            )
        person = people.pop()
        card_key = None
        if request.presence is not None:
            if self.presence is None:
                raise UsageError("this service does not accept face or visual confirmation")
            card_key = self.presence.verify(*request.presence)
        try:
            existing = self._resolve_serial(identity.serial, now)
        except SerialLinkConsentError:
            existing = None
        if existing is not None and existing != person:
            raise RegistrationError("this card is already registered to another insured person")
        bound = self.repository.bind_serial(identity.serial, person, now, None, card_key)
        if bound != person:
            raise RegistrationError("this card is already registered to another insured person")
        return Registration(
            serial=identity.serial,
            registered_at=now,
            insurer_number=query.insurer_number,
            already_registered=existing is not None,
            face_confirmation_enrolled=(
                self.repository.card_key_for_serial(identity.serial) is not None
            ),
        )

    # -- checks

    def check_by_card(self, request: CardCheckRequest) -> CheckResult:
        answer = self.check_by_card_batch([request])[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def check_by_card_batch(
        self, requests: Sequence[CardCheckRequest]
    ) -> list[CheckResult | Exception]:
        """Checks with the card, one answer per request in order (a result, or the exception
        that request alone met after the batch's transaction).

        PIN checks of registered cards share ONE transaction, so one commit for the batch
        (group commit, ``mynakit.services.group_commit``): the nonces consumed by one
        ``UPDATE ... RETURNING``, each answer verified fully (nonce state and expiry,
        signature, chain, validity, revocation), the holders read together, the checks, their
        consents and access records written together. A refused check still commits its
        consumed nonce (one try per nonce) and nothing else. A failure while reading or
        recording rolls the whole batch back and raises. What the batch cannot finish (a
        renewed card not bound yet: the issuer link is asked over HTTP; face or visual
        confirmation) runs after it, each request alone, outside its transaction.
        """
        now = self._now()
        answers: list[CheckResult | Exception | None] = [None] * len(requests)
        in_batch: list[_PendingCheck] = []
        alone: list[tuple[_PendingCheck, _Identified | None]] = []
        for index, request in enumerate(requests):
            day = request.confirmation_date or japan_today(now)
            try:
                institution = normalize_institution_code(request.institution_code)
                check_date_range(day, "confirmation date")
            except InvalidRecordError as error:
                answers[index] = self._abnormal(
                    request.institution_code,
                    day,
                    now,
                    ReferenceClassification.MY_NUMBER_CARD,
                    request.arbitrary_file_identifier,
                    _RefusalError(
                        ResultErrorCode.MALFORMED_REQUEST, "malformed_request", str(error)
                    ),
                )
                continue
            pending = _PendingCheck(index, request, institution, day)
            if isinstance(request.identification, PinAuthentication):
                in_batch.append(pending)
            else:
                alone.append((pending, None))
        if in_batch:
            with self.repository.check_batch() as batch:
                if batch is None:
                    alone.extend((pending, None) for pending in in_batch)
                else:
                    alone.extend(self._check_in_one_transaction(batch, in_batch, now, answers))
        for pending, identified in alone:
            try:
                answers[pending.index] = self._check_alone(pending, now, identified)
            except Exception as error:  # this request's own failure
                answers[pending.index] = error
        return [answer if answer is not None else _unanswered() for answer in answers]

    def _check_in_one_transaction(
        self,
        batch: CheckBatch,
        pending: Sequence[_PendingCheck],
        now: dt.datetime,
        answers: list[CheckResult | Exception | None],
    ) -> list[tuple[_PendingCheck, _Identified | None]]:
        """The PIN checks of ``pending`` inside ``batch``'s transaction; fills ``answers``
        and returns the verified checks of cards not bound yet (a renewal: the issuer link is
        followed outside any transaction)."""
        responses = [_pin_response(check.request) for check in pending]
        states = batch.consume_pin_nonces([r.challenge_id for r in responses], now)
        verified: list[tuple[_PendingCheck, _Identified]] = []
        checked = self.authenticator.check_consumed_each(states, responses)
        for check, identity in zip(pending, checked, strict=True):
            if isinstance(identity, MynakitError):
                refusal = (
                    _refusal_for(identity)
                    if isinstance(identity, VerificationError)
                    # An unparsable certificate, an unknown hash.
                    else _RefusalError(
                        ResultErrorCode.MALFORMED_REQUEST, "malformed_request", str(identity)
                    )
                )
                answers[check.index] = self._card_refusal(
                    check.request, check.institution, check.day, now, refusal
                )
                continue
            verified.append(
                (check, _Identified(identity.serial, IdentityConfirmationMethod.PIN, None))
            )
        holders = batch.card_holders(
            [(identified.serial, check.institution) for check, identified in verified]
        )
        unbound: list[tuple[_PendingCheck, _Identified | None]] = []
        writes: list[CheckWrite] = []
        # Consents given by an earlier check of the same batch hold for a later one, as if
        # the two had been committed one after the other.
        given_in_batch: dict[tuple[str, str], list[Consent]] = {}
        for (check, identified), holder in zip(verified, holders, strict=True):
            if holder is None:
                unbound.append((check, identified))
                continue
            earlier = given_in_batch.setdefault((holder.person_key, check.institution), [])
            result, write = self._card_answer(
                check, now, identified, holder.person_key, holder.records,
                [*holder.consents, *earlier],
            )  # fmt: skip
            earlier.extend(write.consents)
            answers[check.index] = result
            writes.append(write)
        # Outside any try: a failure while recording rolls the whole batch back.
        batch.commit_checks(writes)
        return unbound

    def _check_alone(
        self, check: _PendingCheck, now: dt.datetime, identified: _Identified | None
    ) -> CheckResult:
        """A check outside the batch: face or visual confirmation, a PIN check on a
        repository without the nonces, or a verified card not bound yet (``identified``)."""
        if identified is None:
            try:
                identified = self._identify(check.request, now)
            except _RefusalError as refusal:
                return self._card_refusal(check.request, check.institution, check.day, now, refusal)
        return self._card_result(check.request, check.institution, check.day, now, identified)

    def _card_result(
        self,
        request: CardCheckRequest,
        institution: str,
        day: dt.date,
        now: dt.datetime,
        identified: _Identified,
    ) -> CheckResult:
        """A check outside a batch: the card's holder (following a renewal link when the
        serial is not bound yet), the answer, and its own transaction for the records."""
        holder = self.repository.card_holder(identified.serial, institution)
        try:
            person = (
                holder.person_key
                if holder is not None
                else self._resolve_serial(identified.serial, now)
            )
        except SerialLinkConsentError:
            person = None  # a renewal the holder did not let the issuer link: register again
        except ServiceError as error:  # the issuer link is down
            return self._card_refusal(
                request,
                institution,
                day,
                now,
                _RefusalError(
                    ResultErrorCode.REVOCATION_UNAVAILABLE, "issuer_unavailable", str(error)
                ),
            )
        if person is None:
            return self._card_refusal(
                request,
                institution,
                day,
                now,
                _RefusalError(
                    ResultErrorCode.CARD_NOT_REGISTERED,
                    "not_registered",
                    "the card is not registered for insurance use (初回登録)",
                ),
            )
        if holder is None:
            holder = CardHolder(
                person,
                self.repository.records_for_person(person),
                self.repository.consents_for(institution, person),
            )
        return self._committed(
            self._card_answer(
                _PendingCheck(-1, request, institution, day),
                now,
                identified,
                holder.person_key,
                holder.records,
                holder.consents,
            )
        )

    def _card_answer(
        self,
        check: _PendingCheck,
        now: dt.datetime,
        identified: _Identified,
        person: str,
        records: Sequence[InsuredRecord],
        known_consents: Sequence[Consent],
    ) -> tuple[CheckResult, CheckWrite]:
        """The answer to a card check of ``person`` and what it writes (not yet written)."""
        request = check.request
        validity, listed = decide_validity(records, records, check.day)
        given = (
            self._consents(check.institution, request.consents, now, "card-reader")
            if listed
            else []
        )
        record = CheckRecord(
            check_id=secrets.token_urlsafe(16),
            institution_code=check.institution,
            person_key=person,
            checked_at=now,
            confirmation_date=check.day,
            reference_classification=ReferenceClassification.MY_NUMBER_CARD,
            method=identified.method.value,
            confirmed_by=identified.confirmed_by,
        )
        return self._prepare_answer(
            record,
            validity,
            listed,
            given,
            request.arbitrary_file_identifier,
            None,
            request.purpose,
            serial=identified.serial,
            known_consents=known_consents,
        )

    def check_by_insurance_card(self, request: InsuranceCardCheckRequest) -> CheckResult:
        now = self._now()
        day = request.confirmation_date or japan_today(now)
        classification = ReferenceClassification.INSURANCE_CARD_DATA
        try:
            institution = normalize_institution_code(request.institution_code)
            check_date_range(day, "confirmation date")
            query = request.query.normalized()
        except InvalidRecordError as error:
            return self._abnormal(
                request.institution_code,
                day,
                now,
                classification,
                request.arbitrary_file_identifier,
                _RefusalError(ResultErrorCode.MALFORMED_REQUEST, "malformed_request", str(error)),
            )
        targets = self.repository.find_by_card(query)
        people = sorted({record.person_key for record in targets})
        person_records: list[InsuredRecord] = []
        for person in people:
            person_records.extend(self.repository.records_for_person(person))
        validity, listed = decide_validity(targets, person_records, day)
        if not listed:
            header = self._header(institution, day, now, classification, request)
            return CheckResult(
                header=header,
                body=self._body(validity, (), query),
            )
        # One card's data names one person; a data error at the insurer (two people on one
        # card) still answers, with the records of the first, and says so with code 5.
        person = people[0]
        # For a check by card data the institution states it obtained the limit-certificate
        # consent (LimitApplicationCertificateRelatedConsFlg in the request, docs/services.md
        # §A.4); it is recorded as such.
        given = (
            self._consents(
                institution, {ConsentScope.LIMIT_CERTIFICATE}, now, "institution-statement"
            )
            if query.limit_consent
            else []
        )
        check = CheckRecord(
            check_id=secrets.token_urlsafe(16),
            institution_code=institution,
            person_key=person,
            checked_at=now,
            confirmation_date=day,
            reference_classification=classification,
            method="insurance-card-data",
            confirmed_by=None,
            query=query,
        )
        return self._committed(
            self._prepare_answer(
                check,
                validity,
                listed,
                given,
                request.arbitrary_file_identifier,
                query,
                request.purpose,
            )
        )

    def give_consents(
        self, institution_code: str, check_id: str, scopes: Collection[ConsentScope]
    ) -> CheckResult:
        """Record consents the holder gave at the counter after the result, and answer the
        check again with the items they open."""
        now = self._now()
        check = self.repository.find_check(check_id)
        if (
            check is None
            or check.institution_code != institution_code
            or now - check.checked_at > CONSENT_AFTER_CHECK_WINDOW
        ):
            raise CheckNotFoundError(
                "no recent check with this id at this institution; check the card again"
            )
        if check.reference_classification is not ReferenceClassification.MY_NUMBER_CARD:
            raise UsageError(
                "consents are given on the card reader; a check by card data states the "
                "limit-certificate consent in its request"
            )
        if not scopes:
            raise UsageError("name at least one consent scope")
        given = self._consents(institution_code, scopes, now, "card-reader")
        records = self.repository.records_for_person(check.person_key)
        validity, listed = decide_validity(records, records, check.confirmation_date)
        updated = replace(check, check_id=secrets.token_urlsafe(16), checked_at=now)
        return self._committed(
            self._prepare_answer(updated, validity, listed, given, None, None, "consent-update")
        )

    # -- the holder's own view

    def history(self, authentication: ChallengeResponse) -> list[AccessRecordView]:
        """Every access to the authenticated holder's records, oldest first."""
        person = self._holder(authentication)
        return [entry.view() for entry in self.repository.access_records(person)]

    def holder_consents(self, authentication: ChallengeResponse) -> list[Consent]:
        """The holder's consents at every institution (including expired ones)."""
        person = self._holder(authentication)
        return self.repository.consents_for("*", person)

    # -- insurers

    def load_records(self, records: Iterable[InsuredRecord]) -> int:
        return self.repository.add_records(record.normalized() for record in records)

    def insurers(self) -> list[InsurerSummary]:
        return self.repository.insurers()

    # -- internals

    def _holder(self, authentication: ChallengeResponse) -> str:
        identity = self.authenticator.complete(
            authentication.challenge_id,
            authentication.signature,
            authentication.certificate_der,
            hash_algorithm=authentication.hash_algorithm,
        )
        person = self._resolve_serial(identity.serial, self._now())
        if person is None:
            raise RegistrationError("the card is not registered for insurance use (初回登録)")
        return person

    def _identify(self, request: CardCheckRequest, now: dt.datetime) -> _Identified:
        identification = request.identification
        try:
            if isinstance(identification, PinAuthentication):
                response = identification.response
                identity = self.authenticator.complete(
                    response.challenge_id,
                    response.signature,
                    response.certificate_der,
                    hash_algorithm=response.hash_algorithm,
                )
                return _Identified(identity.serial, IdentityConfirmationMethod.PIN, None)
            return self._identify_face(identification, now)
        except VerificationError as error:
            raise _refusal_for(error) from error
        except MynakitError as error:  # an unparsable certificate, an unknown hash
            raise _RefusalError(
                ResultErrorCode.MALFORMED_REQUEST, "malformed_request", str(error)
            ) from error

    def _identify_face(self, confirmation: FaceConfirmation, now: dt.datetime) -> _Identified:
        if self.presence is None or self.certificate_validator is None:
            raise PresenceError("this service does not accept face or visual confirmation")
        validated = self.certificate_validator.validate(confirmation.certificate_der, now)
        try:
            card_key = self.presence.verify(
                confirmation.presence_challenge_id, confirmation.presence
            )
        except AuthenticationError as error:
            raise PresenceError(f"card presence not proven: {error}") from error
        # A renewal hands the enrolled key on; a link problem is reported by the check itself.
        with contextlib.suppress(ServiceError):
            self._resolve_serial(validated.serial, now)
        enrolled = self.repository.card_key_for_serial(validated.serial)
        if enrolled is None:
            raise PresenceError(
                "no card key is enrolled for face confirmation; register once with the PIN "
                "and the presence proof"
            )
        if not hmac.compare_digest(enrolled, card_key):
            raise PresenceError("the card on the reader is not the card this certificate is on")
        return _Identified(validated.serial, confirmation.method, confirmation.confirmed_by)

    def _resolve_serial(self, serial: int, now: dt.datetime) -> str | None:
        """The person a certificate serial stands for, following the issuer's renewal link
        from a new serial back to a registered one (docs/services.md §B.4)."""
        person = self.repository.person_for_serial(serial)
        if person is not None or self.serial_link is None:
            return person
        current = serial
        chain: list[int] = []
        for _ in range(MAX_RENEWAL_STEPS):
            previous = self.serial_link.previous_serial(current)
            if previous is None or previous in chain or previous == serial:
                return None
            chain.append(previous)
            person = self.repository.person_for_serial(previous)
            if person is not None:
                # Bind the new serial; the old one stops resolving (it is superseded).
                return self.repository.bind_serial(serial, person, now, previous)
            current = previous
        return None

    def _consents(
        self,
        institution: str,
        scopes: Collection[ConsentScope],
        now: dt.datetime,
        method: str,
    ) -> list[Consent]:
        return [
            Consent(
                institution_code=institution,
                scope=scope,
                given_at=now,
                expires_at=now + CONSENT_LIFETIMES[scope],
                method=method,
            )
            for scope in sorted(set(scopes))
        ]

    def _committed(self, prepared: tuple[CheckResult, CheckWrite]) -> CheckResult:
        """The answer, once its check, consents and access record were committed."""
        result, write = prepared
        self.repository.commit_check(write.check, write.consents, write.access)
        return result

    def _prepare_answer(
        self,
        check: CheckRecord,
        validity: QualificationValidity,
        listed: Sequence[InsuredRecord],
        given: Sequence[Consent],
        file_identifier: str | None,
        query: InsuranceCardQuery | None,
        purpose: str,
        *,
        serial: int | None = None,
        known_consents: Sequence[Consent] | None = None,
    ) -> tuple[CheckResult, CheckWrite]:
        """The answer and what it writes; nothing is written yet."""
        now = check.checked_at
        if known_consents is None:
            known_consents = self.repository.consents_for(check.institution_code, check.person_key)
        consents = [*known_consents, *given]
        states, limit_holds = _consent_states(consents, now)
        limit_state = next(s for s in states if s.scope is ConsentScope.LIMIT_CERTIFICATE)
        diseases_flag = (
            ConsentFlag.GIVEN
            if limit_holds
            else ConsentFlag.EXPIRED
            if limit_state.given_at is not None
            else ConsentFlag.NOT_GIVEN
        )
        items = [ACCESS_ITEM_QUALIFICATION]
        results: list[ResultOfQualificationConfirmation] = []
        for record in listed:
            gated_limit = record.limit_certificate if limit_holds else None
            gated_diseases = record.specific_diseases if limit_holds else ()
            if gated_limit is not None and ACCESS_ITEM_LIMIT_CERTIFICATE not in items:
                items.append(ACCESS_ITEM_LIMIT_CERTIFICATE)
            if gated_diseases and ACCESS_ITEM_SPECIFIC_DISEASES not in items:
                items.append(ACCESS_ITEM_SPECIFIC_DISEASES)
            results.append(
                ResultOfQualificationConfirmation(
                    record=record,
                    preschool=preschool_on(record.birth_date, check.confirmation_date),
                    consents=states,
                    limit_certificate=gated_limit,
                    specific_diseases=gated_diseases,
                    specific_diseases_consent=diseases_flag,
                )
            )
        access = AccessEntry(
            subject=check.person_key,
            institution_code=check.institution_code,
            accessed_at=now,
            purpose=purpose,
            items=tuple(items),
            method=_method_label(check),
        )
        header = MessageHeader(
            process_execution_time=now,
            qualification_confirmation_date=check.confirmation_date,
            medical_institution_code=check.institution_code,
            arbitrary_file_identifier=file_identifier,
            reference_classification=check.reference_classification,
            segment_of_result=SegmentOfResult.NORMAL,
        )
        method = (
            IdentityConfirmationMethod(check.method)
            if check.reference_classification is ReferenceClassification.MY_NUMBER_CARD
            else None
        )
        result = CheckResult(
            header=header,
            body=self._body(validity, tuple(results), query),
            check_id=check.check_id,
            confirmation_method=method,
            confirmed_by=check.confirmed_by,
            certificate_serial=serial,
        )
        return result, CheckWrite(check, tuple(given), access)

    def _body(
        self,
        validity: QualificationValidity,
        results: tuple[ResultOfQualificationConfirmation, ...],
        query: InsuranceCardQuery | None,
    ) -> MessageBody:
        return MessageBody(
            processing_result_status=ProcessingResultStatus.NORMAL,
            processing_result_code=ProcessingResultCode.SUCCESS.value,
            qualification_validity=validity,
            results=results,
            search_info=query,
        )

    def _header(
        self,
        institution: str,
        day: dt.date,
        now: dt.datetime,
        classification: ReferenceClassification,
        request: InsuranceCardCheckRequest,
    ) -> MessageHeader:
        return MessageHeader(
            process_execution_time=now,
            qualification_confirmation_date=day,
            medical_institution_code=institution,
            arbitrary_file_identifier=request.arbitrary_file_identifier,
            reference_classification=classification,
            segment_of_result=SegmentOfResult.NORMAL,
        )

    def _card_refusal(
        self,
        request: CardCheckRequest,
        institution: str,
        day: dt.date,
        now: dt.datetime,
        refusal: _RefusalError,
    ) -> CheckResult:
        return self._abnormal(
            institution,
            day,
            now,
            ReferenceClassification.MY_NUMBER_CARD,
            request.arbitrary_file_identifier,
            refusal,
        )

    def _abnormal(
        self,
        institution: str,
        day: dt.date,
        now: dt.datetime,
        classification: ReferenceClassification,
        file_identifier: str | None,
        refusal: _RefusalError,
    ) -> CheckResult:
        """SegmentOfResult 9 with ErrorCode/ErrorMessage (docs/services.md §A.8); nothing of
        any person was read, so no access record."""
        header = MessageHeader(
            process_execution_time=now,
            qualification_confirmation_date=day,
            medical_institution_code=institution[:10],
            arbitrary_file_identifier=file_identifier,
            reference_classification=classification,
            segment_of_result=SegmentOfResult.ABNORMAL_END,
            error_code=refusal.code,
            error_message=f"{ERROR_MESSAGES[refusal.code]}: {refusal.detail}",
        )
        body = MessageBody(
            processing_result_status=ProcessingResultStatus.ERROR,
            processing_result_code=refusal.code.value,
            processing_result_message=ERROR_MESSAGES[refusal.code],
        )
        return CheckResult(header=header, body=body, refusal_reason=refusal.reason)

    def _now(self) -> dt.datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise UsageError("the service clock must return aware datetimes")
        return now


def _consent_states(
    consents: Iterable[Consent], now: dt.datetime
) -> tuple[tuple[ConsentState, ...], bool]:
    """The latest consent per scope as response flags, and whether the limit one holds."""
    latest: dict[ConsentScope, Consent] = {}
    for consent in consents:
        known = latest.get(consent.scope)
        if known is None or consent.given_at > known.given_at:
            latest[consent.scope] = consent
    states: list[ConsentState] = []
    for scope in ConsentScope:
        newest = latest.get(scope)
        if newest is None:
            states.append(ConsentState(scope, ConsentFlag.NOT_GIVEN))
            continue
        holds = newest.holds_at(now)
        states.append(
            ConsentState(
                scope,
                # Viewing flags carry 0/1 only; an expired consent reads as not given, its
                # time kept so the counter sees when it was last given (docs/services.md §A.4).
                ConsentFlag.GIVEN if holds else ConsentFlag.NOT_GIVEN,
                given_at=newest.given_at,
                available_until=newest.expires_at,
            )
        )
    limit = latest.get(ConsentScope.LIMIT_CERTIFICATE)
    return tuple(states), limit is not None and limit.holds_at(now)


def _method_label(check: CheckRecord) -> str:
    if check.confirmed_by:
        return f"{check.method} (confirmed by {check.confirmed_by})"
    return check.method


# -- an in-process repository and log (embedded tests and tools; the store is the real one) ------


class InMemoryEligibilityRepository:
    """An :class:`EligibilityRepository` in one process's memory, for the terminal's in-process
    tests and tools that need no database. The SQL store is the one the service runs on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[InsuredRecord] = []
        self._by_person: dict[str, list[InsuredRecord]] = {}
        self._by_card: dict[tuple[str, str, str, str], list[InsuredRecord]] = {}
        self._serials: dict[int, str] = {}
        self._card_keys: dict[int, str] = {}
        self._consents: dict[str, list[Consent]] = {}
        self._checks: dict[str, CheckRecord] = {}
        self._access: list[AccessEntry] = []

    def add_records(self, records: Iterable[InsuredRecord]) -> int:
        count = 0
        with self._lock:
            for record in records:
                self._records.append(record)
                self._by_person.setdefault(record.person_key, []).append(record)
                self._by_card.setdefault(record.card_key, []).append(record)
                count += 1
        return count

    def insurers(self) -> list[InsurerSummary]:
        with self._lock:
            counts: dict[str, tuple[str, int]] = {}
            for record in self._records:
                name, count = counts.get(record.insurer_number, (record.insurer_name, 0))
                counts[record.insurer_number] = (name, count + 1)
        return [
            InsurerSummary(number, name, count) for number, (name, count) in sorted(counts.items())
        ]

    def records_for_person(self, person_key: str) -> list[InsuredRecord]:
        with self._lock:
            return list(self._by_person.get(person_key, ()))

    def find_by_card(self, query: InsuranceCardQuery) -> list[InsuredRecord]:
        key = (query.insurer_number, query.card_symbol, query.card_number, query.branch_number)
        with self._lock:
            return [r for r in self._by_card.get(key, ()) if r.birth_date == query.birth_date]

    def person_for_serial(self, serial: int) -> str | None:
        with self._lock:
            return self._serials.get(serial)

    def card_key_for_serial(self, serial: int) -> str | None:
        with self._lock:
            return self._card_keys.get(serial) if serial in self._serials else None

    def card_holder(self, serial: int, institution_code: str) -> CardHolder | None:
        person = self.person_for_serial(serial)
        if person is None:
            return None
        return CardHolder(
            person,
            self.records_for_person(person),
            self.consents_for(institution_code, person),
        )

    def bind_serial(
        self,
        serial: int,
        person_key: str,
        at: dt.datetime,
        predecessor: int | None,
        card_key: str | None = None,
    ) -> str:
        with self._lock:
            bound = self._serials.setdefault(serial, person_key)
            if bound == person_key:
                if predecessor is not None:
                    self._serials.pop(predecessor, None)
                    inherited = self._card_keys.pop(predecessor, None)
                    if inherited is not None:
                        self._card_keys.setdefault(serial, inherited)
                if card_key is not None:
                    self._card_keys[serial] = card_key
            return bound

    def consents_for(self, institution_code: str, person_key: str) -> list[Consent]:
        with self._lock:
            return [
                c
                for c in self._consents.get(person_key, ())
                if institution_code == "*" or c.institution_code == institution_code
            ]

    def commit_check(
        self, check: CheckRecord, consents: Sequence[Consent], access: AccessEntry
    ) -> None:
        with self._lock:
            self._checks[check.check_id] = check
            self._consents.setdefault(check.person_key, []).extend(consents)
            self._access.append(access)

    def find_check(self, check_id: str) -> CheckRecord | None:
        with self._lock:
            return self._checks.get(check_id)

    def check_batch(self) -> AbstractContextManager[CheckBatch | None]:
        # The in-memory repository does not hold the authenticator's nonces.
        return contextlib.nullcontext(None)

    def access_records(self, subject: str) -> list[AccessEntry]:
        with self._lock:
            return [entry for entry in self._access if entry.subject == subject]
