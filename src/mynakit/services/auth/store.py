"""Credentials and nonces in the database.

:class:`CredentialStore` issues, checks and revokes relying-service credentials.
:class:`DatabaseNonceStore` is the :class:`mynakit.jpki.authentication.NonceStore` of every
server process: a nonce is consumed by one ``UPDATE ... WHERE used_at IS NULL``, atomic on
SQLite and PostgreSQL alike, so exactly one process sees it fresh and a replay is refused by
all of them.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, LargeBinary, String, Table, bindparam, delete, select, update
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
# How stale a server process's copy of a credential row may be: a credential revoked by
# another process (the operator's CLI) is refused by every server within this many seconds.
CREDENTIAL_CACHE_SECONDS = 1.0
_CREDENTIAL_CACHE_ENTRIES = 10_000


@dataclass(frozen=True)
class _ClientRecord:
    client_id: str
    service: str
    name: str
    secret_hash: str
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


class CredentialStore:
    """Relying-service credentials of one platform (``service``)."""

    def __init__(
        self,
        database: Database,
        service: str,
        *,
        clock: Clock = utc_now,
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._database = database
        self._service = service
        self._clock = clock
        self._cache_clock = cache_clock
        self._cache_lock = threading.Lock()
        self._cache: dict[str, tuple[_ClientRecord, float]] = {}

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
        row = self._client_row(client_id)
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

    def _client_row(self, client_id: str) -> _ClientRecord | None:
        """The stored credential, read at most every ``CREDENTIAL_CACHE_SECONDS`` per process.
        Only the row is cached, never a verdict: the secret, revocation and expiry are checked
        on every call, so a revocation made by another process is honoured within that bound
        and one made through this store at once (``revoke`` drops the entry)."""
        now = self._cache_clock()
        with self._cache_lock:
            cached = self._cache.get(client_id)
        if cached is not None and now - cached[1] < CREDENTIAL_CACHE_SECONDS:
            return cached[0]
        with self._database.transaction() as session:
            row = session.get(ClientRow, client_id)
            record = (
                None
                if row is None
                else _ClientRecord(
                    row.client_id,
                    row.service,
                    row.name,
                    row.secret_hash,
                    row.expires_at,
                    row.revoked_at,
                )
            )
        if record is not None:  # an unknown id is asked again: it may be issued any moment
            with self._cache_lock:
                if len(self._cache) >= _CREDENTIAL_CACHE_ENTRIES:
                    self._cache.clear()
                self._cache[client_id] = (record, now)
        return record

    def revoke(self, client_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(client_id, None)
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
            return consume_nonce(session.connection(), self._purpose, challenge_id, self._clock())


_NONCES = cast("Table", NonceRow.__table__)
# Built once: the statements of every resolution skip SQLAlchemy's construction work.
_CLAIM_NONCES = (
    update(_NONCES)
    .where(
        _NONCES.c.challenge_id.in_(bindparam("claim_ids", expanding=True)),
        _NONCES.c.purpose == bindparam("claim_purpose"),
        _NONCES.c.used_at.is_(None),
    )
    .values(used_at=bindparam("claim_at"))
    .returning(_NONCES.c.challenge_id, _NONCES.c.nonce, _NONCES.c.issued_at, _NONCES.c.expires_at)
)
_FIND_NONCES = select(
    _NONCES.c.challenge_id, _NONCES.c.nonce, _NONCES.c.issued_at, _NONCES.c.expires_at
).where(
    _NONCES.c.challenge_id.in_(bindparam("challenge_ids", expanding=True)),
    _NONCES.c.purpose == bindparam("purpose"),
)


def consume_nonce(
    connection: Connection, purpose: str, challenge_id: str, at: dt.datetime
) -> tuple[NonceState, Challenge | None]:
    """Consume one challenge inside the caller's transaction (see :func:`consume_nonces`)."""
    return consume_nonces(connection, purpose, [challenge_id], at)[0]


def consume_nonces(
    connection: Connection, purpose: str, challenge_ids: Sequence[str], at: dt.datetime
) -> list[tuple[NonceState, Challenge | None]]:
    """Consume challenges inside the caller's transaction, one answer per ID in order: one
    ``UPDATE ... WHERE used_at IS NULL RETURNING`` for them all, so of two concurrent consumers
    of a challenge exactly one claims it (SQLite serialises writers; PostgreSQL re-checks the
    WHERE clause after a concurrent update), and the claims commit with whatever else the
    transaction does. An ID given twice is fresh the first time and a replay after."""
    claimed = {
        str(row[0]): Challenge(str(row[0]), *row[1:])
        for row in connection.execute(
            _CLAIM_NONCES,
            {"claim_ids": list(set(challenge_ids)), "claim_purpose": purpose, "claim_at": at},
        )
    }
    # Not claimed: either used before (a replay) or never issued for this purpose.
    unclaimed = [challenge_id for challenge_id in challenge_ids if challenge_id not in claimed]
    known = {}
    if unclaimed:
        known = {
            str(row[0]): Challenge(str(row[0]), *row[1:])
            for row in connection.execute(
                _FIND_NONCES, {"challenge_ids": list(set(unclaimed)), "purpose": purpose}
            )
        }
    answers: list[tuple[NonceState, Challenge | None]] = []
    for challenge_id in challenge_ids:
        fresh = claimed.pop(challenge_id, None)
        if fresh is not None:
            answers.append((NonceState.FRESH, fresh))
            known[challenge_id] = fresh  # a second answer to it in this batch is a replay
        elif challenge_id in known:
            answers.append((NonceState.USED, known[challenge_id]))
        else:
            answers.append((NonceState.UNKNOWN, None))
    return answers
