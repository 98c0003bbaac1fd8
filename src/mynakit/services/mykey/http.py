"""The MyKey platform's HTTP API (FastAPI; OpenAPI at ``/openapi.json``).

Holders act with a card authentication (``authentication``: the answer to ``GET
/v1/challenge`` signed with the auth PIN). Services act with their credential (``Authorization:
Bearer <client id>.<secret>``) and, at the counter, the holder's card authentication or tap
proof. The operator adds services with the admin token the server was started with.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Depends, FastAPI, Header, Response
from pydantic import BaseModel, Field

from mynakit.card.presence import PresenceProof
from mynakit.errors import DataError
from mynakit.jpki.authentication import ChallengeResponse
from mynakit.services.audit import store as audit
from mynakit.services.auth import ServiceClient
from mynakit.services.errors import ForbiddenError, NotAuthenticatedError
from mynakit.services.group_commit import GroupCommit
from mynakit.services.http import (
    create_app,
    error_responses,
    json_bytes,
    json_response_bytes,
    service_client_dependency,
)
from mynakit.services.mykey.assembly import MyKeyDeployment
from mynakit.services.mykey.core import AUDIT_CHAIN, Resolution, ResolveRequest, TapRequest

# -- request and response bodies ---------------------------------------------------------------


class ChallengeBody(BaseModel):
    challenge_id: str
    nonce: str = Field(description="base64; the card signs it")
    issued_at: str
    expires_at: str


class AuthenticationBody(BaseModel):
    """The card's answer to a challenge (mynakit.jpki.authentication.card_respond)."""

    challenge_id: str = Field(max_length=64)
    signature: str = Field(max_length=1024, description="base64")
    certificate: str = Field(max_length=8192, description="base64 DER")
    hash_algorithm: str = Field(default="sha256", max_length=16)

    def to_response(self) -> ChallengeResponse:
        return ChallengeResponse.from_dict(self.model_dump())


class PresenceBody(BaseModel):
    """The visual AP's card-presence proof (docs/card.md §7.13) for a tap challenge."""

    challenge_id: str = Field(max_length=64)
    application: str = Field(default="visual", max_length=16)
    card_challenge: str = Field(max_length=64, description="base64")
    signature: str = Field(max_length=1024, description="base64")
    ap_certificate: str = Field(max_length=4096, description="base64")
    age_record: str = Field(max_length=4096, description="base64")

    def to_proof(self) -> PresenceProof:
        return PresenceProof.from_dict(self.model_dump())


class RegisterBody(BaseModel):
    authentication: AuthenticationBody
    consent_serial_link: bool = True
    presence: PresenceBody | None = None


class HolderBody(BaseModel):
    authentication: AuthenticationBody


class ChangeBody(BaseModel):
    authentication: AuthenticationBody
    new_id: str | None = Field(default=None, max_length=16)


class UnlinkBody(BaseModel):
    authentication: AuthenticationBody
    client_id: str = Field(max_length=64)


class LinkBody(BaseModel):
    authentication: AuthenticationBody
    service_user_id: str = Field(max_length=64)


class TapBody(BaseModel):
    certificate: str = Field(max_length=8192, description="base64 DER, read without PIN")
    presence: PresenceBody


class AddServiceBody(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    require_pin: bool = False
    lifetime_days: int | None = Field(default=None, ge=1, le=3650)


class LinkView(BaseModel):
    client_id: str
    service: str
    service_user_id: str
    linked_at: str


class HolderView(BaseModel):
    mykey_id: str
    scheme: str
    status: str
    registered_at: str
    tap_enabled: bool
    serial_link_consent: bool
    created: bool
    links: list[LinkView]


class ChangeView(BaseModel):
    changed: bool
    mykey_id: str
    clashes: int
    suggested_id: str | None


class ResolutionView(BaseModel):
    service_user_id: str | None
    ppid: str
    assurance: str
    resolved_at: str


class AccessRecordView(BaseModel):
    position: int
    recorded_at: str
    actor: str
    purpose: str
    items: list[str]
    method: str | None
    record_hash: str


class HistoryView(BaseModel):
    records: list[AccessRecordView]


class ServiceLinkView(BaseModel):
    service_user_id: str
    ppid: str
    linked_at: str


class ServiceLinksView(BaseModel):
    links: list[ServiceLinkView]


class NewServiceView(BaseModel):
    client_id: str
    name: str
    require_pin: bool
    credential: str = Field(description="shown once: <client id>.<secret>")
    expires_at: str | None


class ChainView(BaseModel):
    chain: str
    records: int
    ok: bool
    problems: list[str]


# -- the app -----------------------------------------------------------------------------------


def create_mykey_app(deployment: MyKeyDeployment, *, admin_token: str | None = None) -> FastAPI:
    platform = deployment.platform
    # Resolutions that arrive while a batch runs share the next transaction (one commit for
    # many counters, docs/services.md §B); closed when the server stops. The batches run on
    # the event loop: no thread hand-offs, the measured cheaper and faster choice with several
    # worker processes (services.group_commit, tools/bench/README.md).
    resolutions: GroupCommit[ResolveRequest, Resolution] = GroupCommit(
        platform.resolve_batch, name="mykey-resolve", in_loop=True
    )
    app = create_app(
        "mynakit MyKey platform",
        description="Certificate serial -> MyKey ID -> each service's own ID (sandbox).",
        on_shutdown=[resolutions.close],
    )
    service_client = service_client_dependency(deployment.credentials)

    def admin(authorization: str | None = Header(default=None)) -> None:
        if admin_token is None:
            raise ForbiddenError("the admin API is disabled on this server")
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), admin_token.encode()):
            raise NotAuthenticatedError("admin token refused")

    def tap_request(body: TapBody) -> TapRequest:
        import base64
        import binascii

        try:
            certificate = base64.b64decode(body.certificate, validate=True)
        except (binascii.Error, ValueError) as error:
            raise DataError("the certificate is not base64") from error
        return TapRequest(body.presence.challenge_id, certificate, body.presence.to_proof())

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/challenge", response_model=ChallengeBody)
    def challenge() -> dict[str, Any]:
        return platform.begin().to_dict()

    @app.get("/v1/tap/challenge", response_model=ChallengeBody)
    def tap_challenge() -> dict[str, Any]:
        return platform.begin_tap().to_dict()

    @app.post(
        "/v1/holders/register",
        response_model=HolderView,
        responses=error_responses(401, 403, 409, 422, 503),
    )
    def register(body: RegisterBody) -> dict[str, Any]:
        presence = (
            (body.presence.challenge_id, body.presence.to_proof())
            if body.presence is not None
            else None
        )
        return platform.register(
            body.authentication.to_response(),
            consent_serial_link=body.consent_serial_link,
            presence=presence,
        ).to_dict()

    @app.post(
        "/v1/holders/me",
        response_model=HolderView,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    def show(body: HolderBody) -> dict[str, Any]:
        return platform.show(body.authentication.to_response()).to_dict()

    @app.post(
        "/v1/holders/me/change",
        response_model=ChangeView,
        responses=error_responses(401, 403, 404, 409, 422, 503),
    )
    def change(body: ChangeBody) -> dict[str, Any]:
        return platform.change(body.authentication.to_response(), body.new_id).to_dict()

    @app.post(
        "/v1/holders/me/revoke",
        response_model=HolderView,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    def revoke(body: HolderBody) -> dict[str, Any]:
        return platform.revoke(body.authentication.to_response()).to_dict()

    @app.post(
        "/v1/holders/me/unlink",
        response_model=HolderView,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    def unlink(body: UnlinkBody) -> dict[str, Any]:
        return platform.unlink(body.authentication.to_response(), body.client_id).to_dict()

    @app.post(
        "/v1/holders/me/history",
        response_model=HistoryView,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    def history(body: HolderBody) -> dict[str, Any]:
        return {"records": platform.history(body.authentication.to_response())}

    async def resolve_submitted(client_id: str, body: HolderBody) -> bytes:
        # The resolution joins the next batch of the group commit and is answered once that
        # batch's transaction committed.
        request = ResolveRequest(client_id, body.authentication.to_response())
        resolution = await resolutions.submit(request)
        return json_bytes(resolution.to_dict())

    @app.post(
        "/v1/services/resolve",
        response_model=ResolutionView,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    async def resolve(
        body: HolderBody,
        client: ServiceClient = Depends(service_client),  # noqa: B008
    ) -> Response:
        return json_response_bytes(await resolve_submitted(client.client_id, body))

    # The hot route without FastAPI's stack (the route above answers anything unusual).
    app.direct_json_post(
        "/v1/services/resolve",
        HolderBody,
        deployment.credentials.authenticate,
        lambda client, body: resolve_submitted(client.client_id, body),
    )

    @app.post(
        "/v1/services/resolve-tap",
        response_model=ResolutionView,
        responses=error_responses(401, 403, 404, 422, 503),
    )
    def resolve_tap(
        body: TapBody,
        client: ServiceClient = Depends(service_client),  # noqa: B008
    ) -> dict[str, Any]:
        return platform.resolve_tap(client.client_id, tap_request(body)).to_dict()

    @app.post(
        "/v1/services/links",
        response_model=ResolutionView,
        responses=error_responses(401, 403, 404, 409, 422, 503),
    )
    def link(
        body: LinkBody,
        client: ServiceClient = Depends(service_client),  # noqa: B008
    ) -> dict[str, Any]:
        return platform.link(
            client.client_id, body.authentication.to_response(), body.service_user_id
        ).to_dict()

    @app.get(
        "/v1/services/links", response_model=ServiceLinksView, responses=error_responses(401, 403)
    )
    def service_links(
        client: ServiceClient = Depends(service_client),  # noqa: B008
    ) -> dict[str, Any]:
        return {"links": platform.service_links(client.client_id)}

    @app.post(
        "/v1/admin/services",
        response_model=NewServiceView,
        responses=error_responses(401, 403, 422),
        dependencies=[Depends(admin)],
    )
    def add_service(body: AddServiceBody) -> dict[str, Any]:
        return add_service_with_credential(
            deployment, body.name, require_pin=body.require_pin, lifetime_days=body.lifetime_days
        )

    @app.get(
        "/v1/admin/audit/verify",
        response_model=ChainView,
        responses=error_responses(401, 403),
        dependencies=[Depends(admin)],
    )
    def verify_audit() -> dict[str, Any]:
        return audit.verify_family(deployment.database, AUDIT_CHAIN).to_dict()

    return app


def add_service_with_credential(
    deployment: MyKeyDeployment, name: str, *, require_pin: bool, lifetime_days: int | None
) -> dict[str, Any]:
    """Issue a credential and record the service (the operator's ``mykey service add``)."""
    import datetime as dt

    lifetime = dt.timedelta(days=lifetime_days) if lifetime_days is not None else None
    issued = deployment.credentials.issue(name, lifetime=lifetime)
    deployment.platform.add_service(issued.client_id, name.strip(), require_pin=require_pin)
    return {
        "client_id": issued.client_id,
        "name": name.strip(),
        "require_pin": require_pin,
        "credential": issued.credential,
        "expires_at": issued.expires_at.isoformat() if issued.expires_at is not None else None,
    }


# -- several worker processes -------------------------------------------------------------------

ENVIRONMENT_PREFIX = "MYNAKIT_MYKEY_"


def app_from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory`` with several workers: each worker process builds
    its own platform from the environment (``MYNAKIT_DATABASE_URL``, ``MYNAKIT_MYKEY_ISSUER_URL``,
    ``MYNAKIT_MYKEY_TRUST_DIR``: a folder with ``roots.pem`` of trusted sandbox roots,
    ``MYNAKIT_MYKEY_SCHEME``, ``MYNAKIT_MYKEY_ADMIN_TOKEN``). Workers share only the database."""
    import os

    from mynakit.jpki.trust import TrustStore
    from mynakit.services.mykey.assembly import open_platform

    environment = os.environ
    trust = TrustStore.jlis()
    trust_dir = environment.get(f"{ENVIRONMENT_PREFIX}TRUST_DIR")
    if trust_dir:
        trust = trust.with_sandbox(trust_dir)
    deployment = open_platform(
        environment.get("MYNAKIT_DATABASE_URL"),
        issuer_url=environment[f"{ENVIRONMENT_PREFIX}ISSUER_URL"],
        trust_store=trust,
        scheme=environment.get(f"{ENVIRONMENT_PREFIX}SCHEME", "issued8"),
    )
    return create_mykey_app(
        deployment, admin_token=environment.get(f"{ENVIRONMENT_PREFIX}ADMIN_TOKEN") or None
    )
