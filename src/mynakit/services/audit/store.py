"""Access records in the database: append under the chain's head row, list, verify.

Appends are serialised per chain by the head row: ``SELECT ... FOR UPDATE`` on PostgreSQL, and
on SQLite by the write lock every transaction takes (``BEGIN IMMEDIATE``, see
``mynakit.services.store``). The record and the head change in the caller's transaction, so a
record exists exactly when the access it records was committed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from mynakit.services.audit import (
    GENESIS_HASH,
    AccessRecord,
    ChainVerdict,
    merged_verdict,
    record_hash,
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
    head = _locked_head(session, chain)
    recorded_at = at or utc_now()
    position = head.position + 1
    digest = record_hash(
        chain=chain,
        position=position,
        recorded_at=recorded_at,
        actor=actor,
        subject=subject,
        purpose=purpose,
        items=items,
        method=method,
        previous_hash=head.record_hash,
    )
    row = AuditRecordRow(
        chain=chain,
        position=position,
        recorded_at=recorded_at,
        actor=actor,
        subject=subject,
        purpose=purpose,
        items=json.dumps(list(items), ensure_ascii=False),
        method=method,
        previous_hash=head.record_hash,
        record_hash=digest,
    )
    session.add(row)
    head.position = position
    head.record_hash = digest
    session.flush()
    return row.to_record()


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


def _locked_head(session: Session, chain: str) -> AuditHeadRow:
    dialect = session.get_bind().dialect.name
    # The first append to a chain creates its head; two first appends racing must not both
    # insert, so "insert if absent" is one statement on either database.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(AuditHeadRow)
        .values(chain=chain, position=0, record_hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["chain"])
    )
    statement = select(AuditHeadRow).where(AuditHeadRow.chain == chain)
    if dialect == "postgresql":
        statement = statement.with_for_update()
    head = session.scalars(statement.execution_options(populate_existing=True)).one()
    return head
