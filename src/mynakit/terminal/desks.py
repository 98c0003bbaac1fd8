"""What the counter asks once the holder is identified: the desk behind the terminal.

The card steps are the same at every counter (docs/services.md §A.2); what the service answers
differs. A clinic's desk asks the eligibility service (docs/services.md §A.4) and writes the result
for the receipt computer; a library's desk resolves the card through the MyKey platform to the
library's own user number (docs/services.md §B.3). Each desk turns its service's answer, or its
refusal, into the terminal's state and a counter-safe view of the result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from mynakit.jpki.authentication import Challenge
from mynakit.services.eligibility.client import ServiceUnreachableError
from mynakit.services.eligibility.codes import (
    ConsentScope,
    QualificationValidity,
    ResultErrorCode,
)
from mynakit.services.eligibility.core import EligibilityClient
from mynakit.services.eligibility.models import (
    CardCheckRequest,
    CheckResult,
    FaceConfirmation,
    PinAuthentication,
)
from mynakit.services.errors import NotFoundError, ServiceError, UpstreamError
from mynakit.terminal.screens import VALIDITY_WORDS, TerminalState, Words

#: What a call to a service raises when the service is down or broken: the HTTP clients'
#: unreachable service and 5xx answers; connection errors of any other client.
SERVICE_FAILURES: tuple[type[BaseException], ...] = (
    ServiceUnreachableError,
    UpstreamError,
    OSError,
)

Identification = PinAuthentication | FaceConfirmation


@dataclass(frozen=True)
class DeskAnswer:
    """The service's answer as the counter shows it."""

    state: TerminalState
    view: dict[str, Any] | None = None  # counter-safe: no name, birth date, address
    message_ja: str = ""
    message_en: str = ""
    file_result: CheckResult | None = None  # what the receipt computer's file gets


@runtime_checkable
class CounterDesk(Protocol):
    """A service behind the terminal."""

    #: Words that replace the terminal's defaults at this desk.
    words: Mapping[TerminalState, Words]
    #: The consent questions asked at the reader (scope, label in Japanese, in English).
    consent_questions: tuple[tuple[ConsentScope, str, str], ...]

    def begin_authentication(self) -> Challenge: ...

    def begin_presence(self) -> Challenge: ...

    def answer(
        self, identification: Identification, consents: Collection[ConsentScope]
    ) -> DeskAnswer:
        """Ask the service; raise one of :data:`SERVICE_FAILURES` when it cannot be reached."""
        ...


#: The consent questions asked at the reader, in order (docs/services.md §A.2 item 5).
ELIGIBILITY_CONSENTS: tuple[tuple[ConsentScope, str, str], ...] = (
    (ConsentScope.MEDICATION, "薬剤情報", "medication"),
    (ConsentScope.SPECIFIC_HEALTH_CHECKUPS, "特定健診情報", "health check-ups"),
    (ConsentScope.CLINICAL, "診療情報", "clinical information"),
    (ConsentScope.LIMIT_CERTIFICATE, "限度額情報", "limit-certificate information"),
)

# Refusals of the eligibility service mapped to the terminal's failure states
# (docs/services.md §A.8).
_ELIGIBILITY_REFUSALS: dict[ResultErrorCode, TerminalState] = {
    ResultErrorCode.CERTIFICATE_REVOKED: TerminalState.CERTIFICATE_REVOKED,
    ResultErrorCode.CERTIFICATE_EXPIRED: TerminalState.CERTIFICATE_EXPIRED,
    ResultErrorCode.CERTIFICATE_UNTRUSTED: TerminalState.CERTIFICATE_REFUSED,
    ResultErrorCode.AUTHENTICATION_REFUSED: TerminalState.CERTIFICATE_REFUSED,
    ResultErrorCode.PRESENCE_NOT_PROVEN: TerminalState.CERTIFICATE_REFUSED,
    ResultErrorCode.CARD_NOT_REGISTERED: TerminalState.NOT_REGISTERED,
    ResultErrorCode.REVOCATION_UNAVAILABLE: TerminalState.SERVICE_UNREACHABLE,
    ResultErrorCode.INTERNAL_ERROR: TerminalState.SERVICE_UNREACHABLE,
}


@dataclass
class EligibilityDesk:
    """A clinic's or pharmacy's desk: the online eligibility check (docs/services.md §A)."""

    client: EligibilityClient
    institution_code: str
    confirmation_date: Callable[[], dt.date | None] = lambda: None
    consent_questions: tuple[tuple[ConsentScope, str, str], ...] = ELIGIBILITY_CONSENTS
    words: Mapping[TerminalState, Words] = field(default_factory=dict)

    def begin_authentication(self) -> Challenge:
        return self.client.begin_authentication()

    def begin_presence(self) -> Challenge:
        return self.client.begin_presence()

    def answer(
        self, identification: Identification, consents: Collection[ConsentScope]
    ) -> DeskAnswer:
        result = self.client.check_by_card(
            CardCheckRequest(
                institution_code=self.institution_code,
                identification=identification,
                confirmation_date=self.confirmation_date(),
                consents=frozenset(consents),
            )
        )
        view = eligibility_view(result, consents)
        if not result.accepted:
            code = result.header.error_code
            state = (
                _ELIGIBILITY_REFUSALS.get(code, TerminalState.CERTIFICATE_REFUSED)
                if code
                else (TerminalState.CERTIFICATE_REFUSED)
            )
            return DeskAnswer(state, view, file_result=result)
        if result.validity is QualificationValidity.NO_QUALIFICATION:
            return DeskAnswer(TerminalState.NO_QUALIFICATION, view, file_result=result)
        words_ja, words_en = VALIDITY_WORDS.get(
            result.validity.value if result.validity else "", ("", "")
        )
        return DeskAnswer(TerminalState.SHOWING_RESULT, view, words_ja, words_en, result)


def eligibility_view(result: CheckResult, consents: Collection[ConsentScope]) -> dict[str, Any]:
    """What the counter needs of a result: validity, insurer, copay, consents. No name, no
    birth date, no address, no card numbers (those go to the receipt computer's file)."""
    view: dict[str, Any] = {
        "accepted": result.accepted,
        "segment_of_result": result.header.segment_of_result.value,
        "error_code": result.header.error_code.value if result.header.error_code else None,
        "qualification_validity": result.validity.value if result.validity else None,
        "method": result.confirmation_method.value if result.confirmation_method else None,
        "consents": sorted(scope.value for scope in consents),
        "qualifications": [],
    }
    for entry in result.body.results:
        record = entry.record
        view["qualifications"].append(
            {
                "insurer_name": record.insurer_name,
                "insurer_number": record.insurer_number,
                "partial_contribution_ratio": record.partial_contribution_ratio,
                "limit_certificate": entry.limit_certificate.classification_flag.value
                if entry.limit_certificate is not None
                else None,
            }
        )
    return view


class MyKeyResolver(Protocol):
    """The part of the MyKey platform's client a library desk calls (``MyKeyClient``)."""

    def challenge(self) -> Challenge: ...

    def tap_challenge(self) -> Challenge: ...

    def resolve(self, authentication: Any) -> dict[str, Any]: ...


LIBRARY_WORDS: dict[TerminalState, Words] = {
    TerminalState.QUERYING: Words(
        "利用者を確認しています",
        "しばらくお待ちください。",
        "Looking up your library card",
        "Please wait a moment.",
    ),
    TerminalState.SHOWING_RESULT: Words(
        "図書館カードを確認しました",
        "{result_ja}",
        "Library card confirmed",
        "{result_en}",
    ),
    TerminalState.NOT_REGISTERED: Words(
        "図書館の利用登録がありません",
        "マイキーIDと図書館カードの連携を窓口でお申し込みください。",
        "This card is not linked to a library card",
        "Please ask at the desk to link your MyKey ID to your library card.",
    ),
    TerminalState.SERVICE_UNREACHABLE: Words(
        "マイキープラットフォームに接続できません",
        "受付の職員にお知らせください。カードをお取りください。",
        "The MyKey platform cannot be reached",
        "Please tell the staff and take your card.",
    ),
}


@dataclass
class LibraryDesk:
    """A library's desk: the card resolves to the library's own user number through the MyKey
    platform (docs/services.md §B.1, §B.3); the library sees only its own ID and PPID."""

    client: MyKeyResolver
    consent_questions: tuple[tuple[ConsentScope, str, str], ...] = ()
    words: Mapping[TerminalState, Words] = field(default_factory=lambda: LIBRARY_WORDS)

    def begin_authentication(self) -> Challenge:
        return self.client.challenge()

    def begin_presence(self) -> Challenge:
        return self.client.tap_challenge()

    def answer(
        self, identification: Identification, consents: Collection[ConsentScope]
    ) -> DeskAnswer:
        if not isinstance(identification, PinAuthentication):
            return DeskAnswer(TerminalState.CERTIFICATE_REFUSED)
        try:
            resolution = self.client.resolve(identification.response)
        except UpstreamError:
            raise
        except NotFoundError:
            return DeskAnswer(TerminalState.NOT_REGISTERED)
        except ServiceError as error:
            return DeskAnswer(_mykey_refusal(error.code))
        user = resolution.get("service_user_id")
        view = {
            "library_user_number": user,
            "assurance": resolution.get("assurance"),
        }
        return DeskAnswer(
            TerminalState.SHOWING_RESULT,
            view,
            f"利用者番号 {user} で受け付けました。" if user else "図書館カードの連携がありません。",
            f"Checked in as library user {user}." if user else "No library card is linked.",
        )


def _mykey_refusal(code: str) -> TerminalState:
    if code == "certificate_revoked":
        return TerminalState.CERTIFICATE_REVOKED
    if code in ("certificate_expired", "certificate_not_yet_valid"):
        return TerminalState.CERTIFICATE_EXPIRED
    if code in ("not_registered", "mykey_id_revoked"):
        return TerminalState.NOT_REGISTERED
    return TerminalState.CERTIFICATE_REFUSED
