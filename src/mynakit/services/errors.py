"""Errors every service raises; ``mynakit.services.http`` maps them to HTTP statuses and JSON
bodies ``{"error": code, "message": text}``, the CLI to exit codes."""

from __future__ import annotations

from mynakit.errors import MynakitError, UsageError


class ServiceError(MynakitError):
    """Base of the services' expected failures. ``code`` is stable for clients."""

    code = "service_error"
    status = 400


class NotAuthenticatedError(ServiceError):
    """Missing, unknown, forged, expired or revoked credentials."""

    code = "not_authenticated"
    status = 401
    exit_code = 7


class ForbiddenError(ServiceError):
    """Authenticated, but this caller may not do this (another service's data, another
    holder's records, tap where PIN is required)."""

    code = "forbidden"
    status = 403
    exit_code = 7


class NotFoundError(ServiceError):
    code = "not_found"
    status = 404


class ConflictError(ServiceError):
    code = "conflict"
    status = 409


class InvalidRequestError(ServiceError, UsageError):
    code = "invalid_request"
    status = 422
    exit_code = 2


class UpstreamError(ServiceError):
    """The issuer link (or another service the platform depends on) failed."""

    code = "upstream_unavailable"
    status = 503
    exit_code = 4


# The error each HTTP status of a service stands for, for clients of the services' APIs.
_STATUS_ERRORS: dict[int, type[ServiceError]] = {
    401: NotAuthenticatedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    503: UpstreamError,
}


def error_for_status(status: int, message: str) -> ServiceError:
    """The :class:`ServiceError` a client raises for a service's error answer."""
    return _STATUS_ERRORS.get(status, ServiceError)(message or f"HTTP {status}")
