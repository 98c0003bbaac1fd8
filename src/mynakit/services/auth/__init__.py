"""Who may call a service: relying services with platform-issued credentials, holders with
their card (JPKI challenge-response, nonces kept in the database). Framework-free.

A credential is ``<client id>.<secret>``, sent as ``Authorization: Bearer <credential>``. The
secret is 32 random bytes shown once at issue; the store keeps only its SHA-256. A fast hash is
enough here because the secret is random with 256 bits of entropy, so there is no dictionary to
try (unlike a password, which would need a slow KDF).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from mynakit.services.errors import NotAuthenticatedError

CLIENT_ID_PREFIX = "svc_"
_CLIENT_ID_PATTERN = re.compile(r"^svc_[0-9a-f]{16}$")
_SECRET_BYTES = 32


@dataclass(frozen=True)
class ServiceClient:
    """An authenticated relying service."""

    client_id: str
    service: str  # the platform it belongs to: "mykey", "eligibility"
    name: str
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class IssuedCredential:
    """What the operator hands the relying service once; ``credential`` goes in the header."""

    client_id: str
    secret: str
    expires_at: dt.datetime | None

    @property
    def credential(self) -> str:
        return f"{self.client_id}.{self.secret}"

    def __repr__(self) -> str:
        return f"IssuedCredential(client_id={self.client_id!r}, secret=<redacted>)"


def new_client_id() -> str:
    return CLIENT_ID_PREFIX + secrets.token_hex(8)


def new_secret() -> str:
    return secrets.token_urlsafe(_SECRET_BYTES)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_credential(credential: str) -> tuple[str, str]:
    """``(client id, secret)`` of a credential, or :class:`NotAuthenticatedError`."""
    client_id, dot, secret = credential.strip().partition(".")
    if not dot or not secret or not _CLIENT_ID_PATTERN.match(client_id):
        raise NotAuthenticatedError("malformed service credential")
    return client_id, secret


def secret_matches(secret: str, stored_digest: str) -> bool:
    return hmac.compare_digest(secret_digest(secret), stored_digest)
