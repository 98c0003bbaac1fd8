"""Access records in the database: append under the chain's head row, list, verify.

Appends are serialised per chain by the head row: ``SELECT ... FOR UPDATE`` on PostgreSQL (heads
locked in chain-name order, so transactions appending to several chains cannot deadlock), and
on SQLite by the write lock every transaction takes (``BEGIN IMMEDIATE``, see
``mynakit.services.store``). The record and the head change in the caller's transaction, so a
record exists exactly when the access it records was committed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import cast

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from mynakit.services.audit import (
    GENESIS_HASH,
    AccessEntry,
    AccessRecord,
    ChainVerdict,
    merged_verdict,
    seal,
    verify_chain,
)
from mynakit.services.store import Base, Database, UtcDateTime, utc_now


class AuditHeadRow(Base):
    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(64))


class AuditRecordRow(Base):
    __tablename__ = "audit_records"
    __table_args__ = (
        UniqueConstraint("chain", "position", name="uq_audit_records_chain_position"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    chain: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(200))
    items: Mapped[str] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))
    record_hash: Mapped[str] = mapped_column(String(64))

    def to_record(self) -> AccessRecord:
        return AccessRecord(
            chain=self.chain,
            position=self.position,
            recorded_at=self.recorded_at,
            actor=self.actor,
            subject=self.subject,
            purpose=self.purpose,
            items=tuple(json.loads(self.items)),
            method=self.method,
            previous_hash=self.previous_hash,
            record_hash=self.record_hash,
        )


def append(
    session: Session,
    chain: str,
    *,
    actor: str,
    subject: str | None,
    purpose: str,
    items: Sequence[str],
    method: str | None = None,
    at: dt.datetime | None = None,
) -> AccessRecord:
    """Append one record to ``chain`` inside the caller's transaction."""
    entry = AccessEntry(actor, subject, purpose, tuple(items), method)
    return append_many(session, [(chain, entry)], at=at)[0]


def append_many(
    session: Session,
    entries: Sequence[tuple[str, AccessEntry]],
    *,
    at: dt.datetime | None = None,
) -> list[AccessRecord]:
    """Append each ``(chain, entry)`` inside the caller's transaction; the records in the order
    given (within a chain, positions follow that order).

    SQLAlchemy Core on the session's connection, no ORM objects (the hot path of every
    resolution and check): the heads of all the chains touched are read (locked, on
    PostgreSQL) in one statement in chain-name order, so two transactions that touch the same
    chains always lock them in the same order and cannot deadlock; then one multi-row insert
    and one update per chain head.
    """
    if not entries:
        return []
    connection = session.connection()
    heads = _locked_heads(connection, sorted({chain for chain, _ in entries}))
    recorded_at = at or utc_now()
    records = []
    for chain, entry in entries:
        position, previous_hash = heads[chain]
        record = seal(
            entry,
            chain=chain,
            position=position + 1,
            recorded_at=recorded_at,
            previous_hash=previous_hash,
        )
        heads[chain] = (record.position, record.record_hash)
        records.append(record)
    connection.execute(
        _INSERT_RECORD,
        [
            {
                "chain": record.chain,
                "position": record.position,
                "recorded_at": record.recorded_at,
                "actor": record.actor,
                "subject": record.subject,
                "purpose": record.purpose,
                "items": json.dumps(list(record.items), ensure_ascii=False),
                "method": record.method,
                "previous_hash": record.previous_hash,
                "record_hash": record.record_hash,
            }
            for record in records
        ],
    )
    connection.execute(
        _MOVE_HEAD,
        [
            {"head_chain": chain, "head_position": position, "head_hash": digest}
            for chain, (position, digest) in heads.items()
        ],
    )
    return records


def records_for(
    session: Session, chain: str, subject: str, *, limit: int = 1000
) -> list[AccessRecord]:
    """``subject``'s records in ``chain``, newest first."""
    rows = session.scalars(
        select(AuditRecordRow)
        .where(AuditRecordRow.chain == chain, AuditRecordRow.subject == subject)
        .order_by(AuditRecordRow.position.desc())
        .limit(limit)
    )
    return [row.to_record() for row in rows]


def verify(database: Database, chain: str) -> ChainVerdict:
    """Read the whole chain in position order (streamed) and check it."""
    with database.transaction() as session:
        head_row = session.get(AuditHeadRow, chain)
        head = None if head_row is None else (head_row.position, head_row.record_hash)
        return verify_chain(chain, _stream(session, chain), head)


def chains(database: Database, family: str | None = None) -> list[str]:
    """Every chain, or those of ``family`` (``<family>/<n>``, see ``shard_chain``)."""
    with database.transaction() as session:
        names = sorted(session.scalars(select(AuditHeadRow.chain)))
    if family is None:
        return names
    return [name for name in names if name == family or name.startswith(f"{family}/")]


def verify_family(database: Database, family: str) -> ChainVerdict:
    """Verify every chain of ``family``; one verdict."""
    return merged_verdict(family, (verify(database, chain) for chain in chains(database, family)))


def _stream(session: Session, chain: str) -> Iterator[AccessRecord]:
    rows = session.scalars(
        select(AuditRecordRow)
        .where(AuditRecordRow.chain == chain)
        .order_by(AuditRecordRow.position)
        .execution_options(yield_per=2000)
    )
    for row in rows:
        yield row.to_record()


def _locked_heads(connection: Connection, chains: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Each chain head's (position, hash), locked until the caller's transaction ends."""
    postgres = connection.dialect.name == "postgresql"
    statement = _LOCK_HEADS if postgres else _READ_HEADS
    heads = {
        str(chain): (int(position), str(digest))
        for chain, position, digest in connection.execute(statement, {"chains": list(chains)})
    }
    missing = [chain for chain in chains if chain not in heads]
    if missing:
        # The first append to a chain creates its head; two first appends racing must not
        # both insert, so "insert if absent" is one statement on either database.
        upsert = postgresql.insert if postgres else sqlite.insert
        connection.execute(
            upsert(_HEADS).on_conflict_do_nothing(index_elements=["chain"]),
            [{"chain": chain, "position": 0, "record_hash": GENESIS_HASH} for chain in missing],
        )
        for chain, position, digest in connection.execute(statement, {"chains": missing}):
            heads[str(chain)] = (int(position), str(digest))
    return heads


_HEADS = cast("Table", AuditHeadRow.__table__)
_RECORDS = cast("Table", AuditRecordRow.__table__)
# Built once (the hot path of every access): SQLAlchemy then only looks up the compiled form.
# SQLite needs no row lock: every transaction holds the database's write lock (BEGIN
# IMMEDIATE, mynakit.services.store).
_READ_HEADS = (
    select(_HEADS.c.chain, _HEADS.c.position, _HEADS.c.record_hash)
    .where(_HEADS.c.chain.in_(bindparam("chains", expanding=True)))
    .order_by(_HEADS.c.chain)
)
_LOCK_HEADS = _READ_HEADS.with_for_update()
_INSERT_RECORD = insert(_RECORDS)
_MOVE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.chain == bindparam("head_chain"))
    .values(position=bindparam("head_position"), record_hash=bindparam("head_hash"))
)
