"""Credentials and nonces in the database.

:class:`CredentialStore` issues, checks and revokes relying-service credentials.
:class:`DatabaseNonceStore` is the :class:`mynakit.jpki.authentication.NonceStore` of every
server process: a nonce is consumed by one ``UPDATE ... WHERE used_at IS NULL``, atomic on
SQLite and PostgreSQL alike, so exactly one process sees it fresh and a replay is refused by
all of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import CursorResult, LargeBinary, String, delete, select, update
from sqlalchemy.orm import Mapped, mapped_column

from mynakit.errors import UsageError
from mynakit.jpki.authentication import Challenge, NonceState
from mynakit.services.auth import (
    IssuedCredential,
    ServiceClient,
    new_client_id,
    new_secret,
    secret_digest,
    secret_matches,
    split_credential,
)
from mynakit.services.errors import NotAuthenticatedError, NotFoundError
from mynakit.services.store import Base, Database, UtcDateTime, utc_now


class ClientRow(Base):
    __tablename__ = "auth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    service: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


class NonceRow(Base):
    __tablename__ = "auth_nonces"

    challenge_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())


Clock = Callable[[], dt.datetime]


class CredentialStore:
    """Relying-service credentials of one platform (``service``)."""

    def __init__(self, database: Database, service: str, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._service = service
        self._clock = clock

    def issue(self, name: str, *, lifetime: dt.timedelta | None = None) -> IssuedCredential:
        if not name.strip() or len(name) > 200:
            raise UsageError("a service name of 1 to 200 characters is needed")
        now = self._clock()
        client_id, secret = new_client_id(), new_secret()
        expires_at = now + lifetime if lifetime is not None else None
        with self._database.transaction() as session:
            session.add(
                ClientRow(
                    client_id=client_id,
                    service=self._service,
                    name=name.strip(),
                    secret_hash=secret_digest(secret),
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
        return IssuedCredential(client_id, secret, expires_at)

    def authenticate(self, credential: str | None) -> ServiceClient:
        """The client a credential belongs to; refused alike when missing, unknown, forged,
        expired, revoked or issued by another platform (one message: no oracle)."""
        if not credential:
            raise NotAuthenticatedError("service credentials are required")
        client_id, secret = split_credential(credential)
        with self._database.transaction() as session:
            row = session.get(ClientRow, client_id)
            refused = (
                row is None
                or row.service != self._service
                or not secret_matches(secret, row.secret_hash)
                or row.revoked_at is not None
                or (row.expires_at is not None and row.expires_at <= self._clock())
            )
            if refused or row is None:
                raise NotAuthenticatedError("service credentials refused")
            return ServiceClient(row.client_id, row.service, row.name, row.expires_at)

    def revoke(self, client_id: str) -> None:
        with self._database.transaction() as session:
            row = session.get(ClientRow, client_id)
            if row is None or row.service != self._service:
                raise NotFoundError(f"no service client {client_id}")
            if row.revoked_at is None:
                row.revoked_at = self._clock()


class DatabaseNonceStore:
    """Challenges shared by every process on one database (``purpose`` separates uses)."""

    def __init__(self, database: Database, purpose: str, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._purpose = purpose
        self._clock = clock

    def save(self, challenge: Challenge) -> None:
        with self._database.transaction() as session:
            # Used or expired challenges are kept one more lifetime so a late replay is still
            # named a replay, then dropped (as InMemoryNonceStore does).
            lifetime = challenge.expires_at - challenge.issued_at
            session.execute(delete(NonceRow).where(NonceRow.expires_at < self._clock() - lifetime))
            session.add(
                NonceRow(
                    challenge_id=challenge.challenge_id,
                    purpose=self._purpose,
                    nonce=challenge.nonce,
                    issued_at=challenge.issued_at,
                    expires_at=challenge.expires_at,
                    used_at=None,
                )
            )

    def consume(self, challenge_id: str) -> tuple[NonceState, Challenge | None]:
        with self._database.transaction() as session:
            result = session.execute(
                update(NonceRow)
                .where(
                    NonceRow.challenge_id == challenge_id,
                    NonceRow.purpose == self._purpose,
                    NonceRow.used_at.is_(None),
                )
                .values(used_at=self._clock())
            )
            claimed = cast("CursorResult[Any]", result).rowcount
            row = session.scalars(
                select(NonceRow).where(
                    NonceRow.challenge_id == challenge_id, NonceRow.purpose == self._purpose
                )
            ).one_or_none()
        if row is None:
            return NonceState.UNKNOWN, None
        challenge = Challenge(row.challenge_id, row.nonce, row.issued_at, row.expires_at)
        return (NonceState.FRESH if claimed == 1 else NonceState.USED), challenge
