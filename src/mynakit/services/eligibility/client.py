"""An :class:`~mynakit.services.eligibility.core.EligibilityClient` over the HTTP API, for
counter terminals and the CLI's ``--url``: the same calls as the in-process service.

The institution is the one the credential was issued to (``http`` module docstring).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Collection
from typing import Any

import httpx

from mynakit.card.presence import PresenceProof
from mynakit.errors import DataError, TransportError
from mynakit.jpki.authentication import Challenge, ChallengeResponse
from mynakit.services.eligibility.codes import ConsentScope
from mynakit.services.eligibility.models import (
    AccessRecordView,
    CardCheckRequest,
    CheckResult,
    Consent,
    FaceConfirmation,
    InsuranceCardCheckRequest,
    InsuranceCardQuery,
    PinAuthentication,
    Registration,
    RegistrationRequest,
)
from mynakit.services.errors import error_for_status

DEFAULT_TIMEOUT = 10.0


class ServiceUnreachableError(TransportError):
    """The eligibility service did not answer (down, wrong URL, network)."""


class HttpEligibilityClient:
    def __init__(
        self,
        base_url: str,
        credential: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers=headers, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpEligibilityClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def begin_authentication(self) -> Challenge:
        return Challenge.from_dict(self._post("/v1/challenges", None))

    def begin_presence(self) -> Challenge:
        return Challenge.from_dict(self._post("/v1/presence-challenges", None))

    def check_by_card(self, request: CardCheckRequest) -> CheckResult:
        identification = request.identification
        if isinstance(identification, PinAuthentication):
            ident: dict[str, Any] = {
                "method": "pin",
                "authentication": identification.response.to_dict(),
            }
        else:
            ident = _face(identification)
        body: dict[str, Any] = {
            "identification": ident,
            "consents": sorted(scope.name.lower() for scope in request.consents),
        }
        _dates(body, request.confirmation_date, request.arbitrary_file_identifier)
        return CheckResult.from_dict(self._post("/v1/checks/card", body))

    def check_by_insurance_card(self, request: InsuranceCardCheckRequest) -> CheckResult:
        body: dict[str, Any] = {"query": _query(request.query)}
        _dates(body, request.confirmation_date, request.arbitrary_file_identifier)
        return CheckResult.from_dict(self._post("/v1/checks/insurance-card", body))

    def register(self, request: RegistrationRequest) -> Registration:
        body: dict[str, Any] = {
            "authentication": request.authentication.to_dict(),
            "query": _query(request.query),
        }
        if request.presence is not None:
            body["presence"] = _presence(*request.presence)
        data = self._post("/v1/registrations", body)
        try:
            return Registration(
                serial=int(data["serial"]),
                registered_at=dt.datetime.fromisoformat(data["registered_at"]),
                insurer_number=str(data["insurer_number"]),
                already_registered=bool(data["already_registered"]),
                face_confirmation_enrolled=bool(data.get("face_confirmation_enrolled")),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"not a registration: {error}") from error

    def give_consents(
        self, institution_code: str, check_id: str, scopes: Collection[ConsentScope]
    ) -> CheckResult:
        # The institution is the credential's; ``institution_code`` is for the in-process API.
        body = {"scopes": sorted(scope.name.lower() for scope in scopes)}
        return CheckResult.from_dict(self._post(f"/v1/checks/{check_id}/consents", body))

    def history(self, authentication: ChallengeResponse) -> list[AccessRecordView]:
        data = self._post("/v1/holder/history", {"authentication": authentication.to_dict()})
        try:
            return [
                AccessRecordView(
                    institution_code=item["institution_code"],
                    accessed_at=dt.datetime.fromisoformat(item["accessed_at"]),
                    purpose=item["purpose"],
                    items=tuple(item["items"]),
                    method=item["method"],
                )
                for item in data
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"not an access history: {error}") from error

    def holder_consents(self, authentication: ChallengeResponse) -> list[Consent]:
        data = self._post("/v1/holder/consents", {"authentication": authentication.to_dict()})
        try:
            return [
                Consent(
                    institution_code=item["institution_code"],
                    scope=ConsentScope(item["element"]),
                    given_at=dt.datetime.fromisoformat(item["given_at"]),
                    expires_at=dt.datetime.fromisoformat(item["expires_at"]),
                    method=item["method"],
                )
                for item in data
            ]
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"not a consent list: {error}") from error

    def _post(self, path: str, body: dict[str, Any] | None) -> Any:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as error:
            raise ServiceUnreachableError(
                f"the eligibility service at {self.base_url} did not answer: {error}"
            ) from error
        try:
            data = response.json()
        except ValueError as error:
            raise DataError(
                f"the service answered HTTP {response.status_code}, not JSON"
            ) from error
        if response.status_code >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise error_for_status(response.status_code, str(message or ""))
        return data


def _face(confirmation: FaceConfirmation) -> dict[str, Any]:
    return {
        "method": confirmation.method.value,
        "certificate": _b64(confirmation.certificate_der),
        "confirmed_by": confirmation.confirmed_by,
        "presence": _presence(confirmation.presence_challenge_id, confirmation.presence),
    }


def _presence(challenge_id: str, proof: PresenceProof) -> dict[str, Any]:
    return {"challenge_id": challenge_id, **proof.to_dict()}


def _query(query: InsuranceCardQuery) -> dict[str, Any]:
    return {
        "insurer_number": query.insurer_number,
        "card_symbol": query.card_symbol,
        "card_number": query.card_number,
        "branch_number": query.branch_number,
        "birth_date": query.birth_date.isoformat(),
        "limit_consent": query.limit_consent,
    }


def _dates(body: dict[str, Any], day: dt.date | None, file_identifier: str | None) -> None:
    if day is not None:
        body["confirmation_date"] = day.isoformat()
    if file_identifier is not None:
        body["arbitrary_file_identifier"] = file_identifier


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
