"""FastAPI pieces every service app shares: the app factory with JSON error mapping, the
relying-service credentials dependency, documented error responses, uvicorn serving.

Errors: a :class:`mynakit.services.errors.ServiceError` answers its ``status`` with
``{"error": code, "message": text}``; JPKI authentication failures answer 401 (nonce, signature)
or 403 (certificate refused, with the reason, e.g. ``revoked``); other expected failures 422.
Unexpected exceptions are logged without the request body (it may hold a credential) and
answer 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from mynakit.errors import DataError, MynakitError, UsageError
from mynakit.jpki.authentication import AuthenticationError, CertificateRejectedError
from mynakit.services.auth import ServiceClient
from mynakit.services.auth.store import CredentialStore
from mynakit.services.errors import ServiceError

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    message: str


_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or refused credentials, or a refused card authentication",
    403: "Not allowed for this caller (or the certificate was refused)",
    404: "Not found",
    409: "Conflict",
    422: "Invalid request",
    503: "The issuer could not be asked",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's error statuses (all with :class:`ErrorBody`)."""
    chosen = statuses or tuple(_DESCRIPTIONS)
    return {
        status: {"model": ErrorBody, "description": _DESCRIPTIONS.get(status, "Error")}
        for status in chosen
    }


def error_status(error: MynakitError) -> tuple[int, str]:
    """HTTP status and stable code of an expected failure."""
    if isinstance(error, ServiceError):
        return error.status, error.code
    if isinstance(error, CertificateRejectedError):
        return 403, f"certificate_{error.reason.value}"
    if isinstance(error, AuthenticationError):
        return 401, _snake(type(error).__name__.removesuffix("Error"))
    if isinstance(error, UsageError | DataError):
        return 422, "invalid_request"
    return 400, "refused"


def create_app(title: str, *, version: str = "1", description: str = "") -> FastAPI:
    app = FastAPI(title=title, version=version, description=description)

    @app.exception_handler(MynakitError)
    async def expected_failure(request: Request, error: MynakitError) -> JSONResponse:
        status, code = error_status(error)
        return JSONResponse({"error": code, "message": str(error)}, status_code=status)

    @app.exception_handler(Exception)
    async def unexpected_failure(request: Request, error: Exception) -> JSONResponse:
        logger.error(
            "unexpected %s on %s %s", type(error).__name__, request.method, request.url.path
        )
        return JSONResponse(
            {"error": "internal_error", "message": "internal error"}, status_code=500
        )

    return app


_bearer = HTTPBearer(auto_error=False, description="Service credential: <client id>.<secret>")


def service_client_dependency(
    store: CredentialStore,
) -> Callable[..., ServiceClient]:
    """A FastAPI dependency returning the authenticated relying service (401 otherwise)."""

    def authenticated(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> ServiceClient:
        return store.authenticate(credentials.credentials if credentials is not None else None)

    return authenticated


def serve_factory(
    factory: str,
    *,
    workers: int,
    host: str = "127.0.0.1",
    port: int = 8700,
    log_level: str = "info",
) -> None:
    """Run ``module:function`` (an app factory) in ``workers`` uvicorn worker processes."""
    import uvicorn

    uvicorn.run(
        factory,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
    )


def serve(
    app: FastAPI, *, host: str = "127.0.0.1", port: int = 8700, log_level: str = "info"
) -> None:
    """Run ``app`` with uvicorn until interrupted (one process; run more behind a balancer)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def _snake(name: str) -> str:
    out = [f"_{c.lower()}" if c.isupper() else c for c in name]
    return "".join(out).lstrip("_")
