"""HTTP API of the eligibility service (FastAPI; OpenAPI at ``/openapi.json``).

Callers: medical institutions and pharmacies with credentials issued to their 10-digit code
(``mynakit eligibility institution add``); insurers loading records with insurer credentials;
holders with their card (a JPKI answer to a nonce from ``POST /v1/challenges``). A check always
answers 200 with the response message (docs/services.md §A.4): a refusal is SegmentOfResult 9
with its ErrorCode, as the real system reports it. The institution code is the credential's,
never the body's: one institution cannot check, consent or read records as another.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mynakit.card.presence import PresenceProof
from mynakit.jpki.authentication import ChallengeResponse
from mynakit.services.auth import ServiceClient
from mynakit.services.auth.store import CredentialStore
from mynakit.services.eligibility.codes import ConsentScope, IdentityConfirmationMethod
from mynakit.services.eligibility.core import EligibilityService
from mynakit.services.eligibility.models import (
    CardCheckRequest,
    CardIdentification,
    CheckResult,
    FaceConfirmation,
    InsuranceCardCheckRequest,
    InsuranceCardQuery,
    InvalidRecordError,
    PinAuthentication,
    RegistrationRequest,
)
from mynakit.services.eligibility.population import read_records
from mynakit.services.eligibility.store import SqlEligibilityRepository
from mynakit.services.errors import ForbiddenError, InvalidRequestError
from mynakit.services.group_commit import GroupCommit
from mynakit.services.http import (
    create_app,
    error_responses,
    json_bytes,
    json_response_bytes,
    service_client_dependency,
)
from mynakit.services.store import Database

INSTITUTION_SERVICE = "eligibility-institution"
INSURER_SERVICE = "eligibility-insurer"
# A bulk load over HTTP is for small batches; millions go through `mynakit eligibility load`.
MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# Card-check batches run in ONE thread of the group commit per process: a batch is mostly
# verification (signature, chain, CRL) in Python, so while it runs the event loop reads and
# parses the next requests, and with one pipeline those all wait for the next batch, which is
# then larger. Measured on the 2-core machine (bench_eligibility.py, 2 servers, 32
# connections): one thread about 8 checks per batch and 0.8-1.05 ms of server CPU per check;
# two threads 4.4 per batch; batches on the event loop (in_loop) 5.4 per batch and a p99 past
# 200 ms (tools/bench/README.md).
CHECK_PIPELINES = 1

ScopeName = Literal[
    "limit_certificate", "medication", "specific_health_checkups", "clinical", "operation"
]


def scope_of(name: str) -> ConsentScope:
    return ConsentScope[name.upper()]


class ChallengeOut(BaseModel):
    challenge_id: str
    nonce: str = Field(description="base64; the card signs its SHA-256 DigestInfo")
    issued_at: str
    expires_at: str


class AuthenticationIn(BaseModel):
    challenge_id: str = Field(min_length=1, max_length=64)
    signature: str = Field(max_length=2048, description="base64")
    certificate: str = Field(max_length=8192, description="base64 DER")
    hash_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"

    def response(self) -> ChallengeResponse:
        return ChallengeResponse(
            challenge_id=self.challenge_id,
            signature=_base64(self.signature, "signature"),
            certificate_der=_base64(self.certificate, "certificate"),
            hash_algorithm=self.hash_algorithm,
        )


class PresenceIn(BaseModel):
    """The card's answer to a presence challenge (docs/card.md §7.13), all base64."""

    challenge_id: str = Field(min_length=1, max_length=64)
    application: Literal["visual"] = "visual"
    card_challenge: str = Field(max_length=64)
    signature: str = Field(max_length=2048)
    ap_certificate: str = Field(max_length=8192)
    age_record: str = Field(max_length=8192)

    def proof(self) -> tuple[str, PresenceProof]:
        return self.challenge_id, PresenceProof(
            application=self.application,
            card_challenge=_base64(self.card_challenge, "card challenge"),
            signature=_base64(self.signature, "presence signature"),
            ap_certificate=_base64(self.ap_certificate, "AP certificate"),
            age_record=_base64(self.age_record, "age record"),
        )


class IdentificationIn(BaseModel):
    method: Literal["pin", "face", "visual"]
    authentication: AuthenticationIn | None = Field(
        default=None, description="pin: the card's answer to the nonce"
    )
    certificate: str | None = Field(
        default=None, max_length=8192, description="face/visual: auth certificate (base64 DER)"
    )
    presence: PresenceIn | None = None
    confirmed_by: str | None = Field(default=None, max_length=64)

    def identification(self) -> CardIdentification:
        if self.method == "pin":
            if self.authentication is None:
                raise InvalidRequestError("PIN mode needs the card's authentication")
            return PinAuthentication(self.authentication.response())
        if self.certificate is None or self.presence is None or not self.confirmed_by:
            raise InvalidRequestError(
                "face/visual mode needs the certificate, the presence proof and confirmed_by"
            )
        challenge_id, proof = self.presence.proof()
        try:
            return FaceConfirmation(
                method=IdentityConfirmationMethod(self.method),
                certificate_der=_base64(self.certificate, "certificate"),
                presence_challenge_id=challenge_id,
                presence=proof,
                confirmed_by=self.confirmed_by,
            )
        except InvalidRecordError as error:
            raise InvalidRequestError(str(error)) from error


class CardCheckIn(BaseModel):
    identification: IdentificationIn
    confirmation_date: dt.date | None = None
    arbitrary_file_identifier: str | None = Field(default=None, max_length=100)
    consents: list[ScopeName] = Field(default_factory=list, max_length=5)


class InsuranceQueryIn(BaseModel):
    insurer_number: str = Field(pattern=r"^\d{6,8}$")
    card_symbol: str = Field(default="", max_length=38)
    card_number: str = Field(min_length=1, max_length=38)
    branch_number: str = Field(pattern=r"^\d{2}$")
    birth_date: dt.date
    limit_consent: bool = False

    def query(self) -> InsuranceCardQuery:
        return InsuranceCardQuery(
            self.insurer_number,
            self.card_symbol,
            self.card_number,
            self.branch_number,
            self.birth_date,
            self.limit_consent,
        )


class InsuranceCheckIn(BaseModel):
    query: InsuranceQueryIn
    confirmation_date: dt.date | None = None
    arbitrary_file_identifier: str | None = Field(default=None, max_length=100)


class ConsentsIn(BaseModel):
    scopes: list[ScopeName] = Field(min_length=1, max_length=5)


class RegistrationIn(BaseModel):
    authentication: AuthenticationIn
    query: InsuranceQueryIn
    presence: PresenceIn | None = Field(
        default=None, description="enrols the card for face/visual confirmation"
    )


class HolderIn(BaseModel):
    authentication: AuthenticationIn


class LoadOut(BaseModel):
    loaded: int


def create_eligibility_app(service: EligibilityService, database: Database) -> FastAPI:
    """The FastAPI app over a built service (see ``assembly.build_service``). Check answers
    are already plain JSON values (``CheckResult.to_dict``), so they go out as they are, not
    through FastAPI's encoder again."""

    # Card checks share transactions: those that arrive while a batch is being committed go
    # together in the next one (one commit for many checks, docs/services.md §B); closed when
    # the server stops.
    def new_group() -> GroupCommit[CardCheckRequest, CheckResult]:
        return GroupCommit(
            service.check_by_card_batch, name="eligibility-checks", pipelines=CHECK_PIPELINES
        )

    card_checks = [new_group()]

    def close_checks() -> None:
        # A server may start the same app again after a stop (the demo restarts its
        # service): the next start gets a fresh group commit (its threads start when used).
        closing = card_checks[0]
        card_checks[0] = new_group()
        closing.close()

    app = create_app(
        "mynakit eligibility (オンライン資格確認 sandbox)",
        description=__doc__ or "",
        on_shutdown=[close_checks],
    )
    institutions = CredentialStore(database, INSTITUTION_SERVICE)
    insurers = CredentialStore(database, INSURER_SERVICE)
    institution_client = service_client_dependency(institutions)
    insurer_client = service_client_dependency(insurers)
    repository = service.repository

    @app.post("/v1/challenges", response_model=ChallengeOut, tags=["card"])
    def challenge() -> dict[str, str]:
        """A nonce for the card to sign (PIN mode, registration, the holder's own views)."""
        return service.begin_authentication().to_dict()

    @app.post(
        "/v1/presence-challenges",
        response_model=ChallengeOut,
        responses=error_responses(422),
        tags=["card"],
    )
    def presence_challenge() -> dict[str, str]:
        """A challenge for the card-presence proof of face/visual mode."""
        return service.begin_presence().to_dict()

    async def check_card_submitted(institution: str, body: CardCheckIn) -> bytes:
        # The check joins the next batch of the group commit and is answered once that
        # batch's transaction committed.
        result = await card_checks[0].submit(
            CardCheckRequest(
                institution_code=institution,
                identification=body.identification.identification(),
                confirmation_date=body.confirmation_date,
                arbitrary_file_identifier=body.arbitrary_file_identifier,
                consents=frozenset(scope_of(name) for name in body.consents),
            )
        )
        return json_bytes(result.to_dict())

    @app.post(
        "/v1/checks/card",
        responses=error_responses(401, 422),
        tags=["institution"],
    )
    async def check_card(
        body: CardCheckIn,
        client: ServiceClient = Depends(institution_client),  # noqa: B008
    ) -> Response:
        """A check with the My Number card (ReferenceClassification 1)."""
        return json_response_bytes(await check_card_submitted(client.name, body))

    # The hot route without FastAPI's stack (the route above answers anything unusual).
    app.direct_json_post(
        "/v1/checks/card",
        CardCheckIn,
        institutions.authenticate,
        lambda client, body: check_card_submitted(client.name, body),
    )

    @app.post(
        "/v1/checks/insurance-card",
        responses=error_responses(401, 422),
        tags=["institution"],
    )
    def check_insurance_card(
        body: InsuranceCheckIn,
        client: ServiceClient = Depends(institution_client),  # noqa: B008
    ) -> JSONResponse:
        """A check by insurance-card (資格確認書) data (ReferenceClassification 2)."""
        result = service.check_by_insurance_card(
            InsuranceCardCheckRequest(
                institution_code=client.name,
                query=body.query.query(),
                confirmation_date=body.confirmation_date,
                arbitrary_file_identifier=body.arbitrary_file_identifier,
            )
        )
        return JSONResponse(result.to_dict())

    @app.post(
        "/v1/checks/{check_id}/consents",
        responses=error_responses(401, 404, 422),
        tags=["institution"],
    )
    def consents(
        check_id: str,
        body: ConsentsIn,
        client: ServiceClient = Depends(institution_client),  # noqa: B008
    ) -> JSONResponse:
        """Consents the holder gave after the result, at the counter that made the check."""
        result = service.give_consents(
            client.name, check_id, {scope_of(name) for name in body.scopes}
        )
        return JSONResponse(result.to_dict())

    @app.get(
        "/v1/institution/access-records",
        responses=error_responses(401),
        tags=["institution"],
    )
    def institution_records(
        client: ServiceClient = Depends(institution_client),  # noqa: B008
    ) -> list[dict[str, Any]]:
        """This institution's own checks (never another institution's; no person named)."""
        if not isinstance(repository, SqlEligibilityRepository):
            raise ForbiddenError("access records are kept by the SQL store")
        return [
            entry.view().to_dict() for entry in repository.institution_access_records(client.name)
        ]

    @app.post("/v1/registrations", responses=error_responses(401, 403, 409, 422), tags=["holder"])
    def register(body: RegistrationIn) -> dict[str, Any]:
        """初回登録: bind the card to the insured person whose card data the holder confirms."""
        return service.register(
            RegistrationRequest(
                body.authentication.response(),
                body.query.query(),
                body.presence.proof() if body.presence is not None else None,
            )
        ).to_dict()

    @app.post("/v1/holder/history", responses=error_responses(401, 403, 409, 422), tags=["holder"])
    def history(body: HolderIn) -> list[dict[str, Any]]:
        """Every access to the authenticated holder's records."""
        return [view.to_dict() for view in service.history(body.authentication.response())]

    @app.post("/v1/holder/consents", responses=error_responses(401, 403, 409, 422), tags=["holder"])
    def holder_consents(body: HolderIn) -> list[dict[str, Any]]:
        """The authenticated holder's consents at every institution."""
        return [c.to_dict() for c in service.holder_consents(body.authentication.response())]

    @app.get("/v1/insurers", responses=error_responses(401), tags=["insurer"])
    def insurer_list(
        client: ServiceClient = Depends(insurer_client),  # noqa: B008
    ) -> list[dict[str, Any]]:
        return [
            {
                "insurer_number": s.insurer_number,
                "insurer_name": s.insurer_name,
                "records": s.records,
            }
            for s in service.insurers()
        ]

    @app.post(
        "/v1/insurers/records",
        response_model=LoadOut,
        responses=error_responses(401, 413, 422),
        tags=["insurer"],
        openapi_extra={
            "requestBody": {
                "content": {"text/plain": {"schema": {"type": "string"}}},
                "required": True,
            }
        },
    )
    async def load(
        request: Request,
        client: ServiceClient = Depends(insurer_client),  # noqa: B008
    ) -> dict[str, int]:
        """Load insured records (JSON lines, one transaction: all or none)."""
        body = await request.body()
        if len(body) > MAX_UPLOAD_BYTES:
            raise InvalidRequestError("upload at most 16 MiB; use mynakit eligibility load")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidRequestError("the records must be UTF-8 JSON lines") from error
        records = list(read_records(io.StringIO(text), "jsonl"))
        return {"loaded": service.load_records(records)}

    return app


def _base64(text: str, label: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidRequestError(f"{label} is not base64") from error
