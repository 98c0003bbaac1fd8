"""The shared store and access records on SQLite and PostgreSQL: migrations, the hash chain and
what its verification detects, appends from concurrent writers."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import delete, inspect, select, update
from sqlalchemy.orm import Session

from mynakit.errors import UsageError
from mynakit.services.audit import AccessEntry
from mynakit.services.audit import store as audit
from mynakit.services.audit.store import AuditHeadRow, AuditRecordRow
from mynakit.services.auth import store as auth_store
from mynakit.services.store import Base, Database, normalized_url

pytestmark = pytest.mark.services


def _fill(database: Database, count: int, chain: str = "test") -> None:
    with database.transaction() as session:
        for number in range(count):
            audit.append(
                session,
                chain,
                actor=f"service:{number % 3}",
                subject=f"holder-{number % 2}",
                purpose="resolve",
                items=["service_id", "ppid"],
                method="pin",
            )


def test_migrations_are_idempotent_and_match_the_models(database: Database) -> None:
    database.migrate()  # a second run (another process starting) changes nothing
    tables = set(inspect(database.engine).get_table_names())
    assert auth_store.ClientRow.__tablename__ == "auth_clients"  # models registered
    shared = {"audit_heads", "audit_records", "auth_clients", "auth_nonces"}
    assert shared <= tables
    for name in shared:
        columns = {column["name"] for column in inspect(database.engine).get_columns(name)}
        assert columns == set(Base.metadata.tables[name].columns.keys())


def test_untouched_chain_verifies(database: Database) -> None:
    _fill(database, 6)
    verdict = audit.verify(database, "test")
    assert verdict.ok, verdict.problems
    assert verdict.records == 6
    with database.transaction() as session:
        mine = audit.records_for(session, "test", "holder-0")
    assert [record.position for record in mine] == [5, 3, 1]


def test_edited_record_is_detected(database: Database) -> None:
    _fill(database, 5)
    with database.transaction() as session:
        session.execute(
            update(AuditRecordRow)
            .where(AuditRecordRow.position == 3)
            .values(purpose="nothing to see")
        )
    verdict = audit.verify(database, "test")
    assert not verdict.ok
    assert any("record 3 was altered" in problem for problem in verdict.problems)


def test_deleted_record_is_detected(database: Database) -> None:
    _fill(database, 5)
    with database.transaction() as session:
        session.execute(delete(AuditRecordRow).where(AuditRecordRow.position == 2))
    assert not audit.verify(database, "test").ok


def test_deleted_last_record_is_detected_by_the_head(database: Database) -> None:
    _fill(database, 5)
    with database.transaction() as session:
        session.execute(delete(AuditRecordRow).where(AuditRecordRow.position == 5))
    verdict = audit.verify(database, "test")
    assert any("chain head" in problem for problem in verdict.problems)


def test_inserted_record_is_detected(database: Database) -> None:
    _fill(database, 4)
    with database.transaction() as session:
        row = session.scalars(select(AuditRecordRow).where(AuditRecordRow.position == 2)).one()
        session.execute(
            update(AuditRecordRow)
            .where(AuditRecordRow.position > 2)
            .values(position=AuditRecordRow.position + 10)
        )
        session.add(
            AuditRecordRow(
                chain="test",
                position=3,
                recorded_at=row.recorded_at,
                actor="forger",
                subject=row.subject,
                purpose=row.purpose,
                items=row.items,
                method=row.method,
                previous_hash=row.record_hash,
                record_hash=row.record_hash,
            )
        )
    assert not audit.verify(database, "test").ok


def test_reordered_records_are_detected(database: Database) -> None:
    _fill(database, 4)
    with database.transaction() as session:
        # Swap positions 2 and 3 through a free position (the pair is unique).
        for old, new in ((2, 1000), (3, 2), (1000, 3)):
            session.execute(
                update(AuditRecordRow).where(AuditRecordRow.position == old).values(position=new)
            )
    verdict = audit.verify(database, "test")
    assert any("does not follow" in problem for problem in verdict.problems)


def test_concurrent_appends_keep_one_chain(database_url: str) -> None:
    """Writers on separate engines (as separate server processes have) append at once."""
    databases = [Database.open(database_url) for _ in range(4)]
    errors: list[BaseException] = []

    def writer(database: Database) -> None:
        try:
            for _ in range(10):
                _fill(database, 1, chain="busy")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(database,)) for database in databases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    verdict = audit.verify(databases[0], "busy")
    assert verdict.ok, verdict.problems
    assert verdict.records == 40
    with databases[0].transaction() as session:
        head = session.get(AuditHeadRow, "busy")
        assert head is not None and head.position == 40
    for database in databases:
        database.dispose()


def test_records_store_aware_utc_times(database: Database) -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    with database.transaction() as session:
        audit.append(session, "t", actor="a", subject="s", purpose="p", items=[], at=at)
    with database.transaction() as session:
        (record,) = audit.records_for(session, "t", "s")
    assert record.recorded_at == at
    assert audit.verify(database, "t").ok


def test_database_urls_are_checked() -> None:
    assert normalized_url("postgresql://u@/db").startswith("postgresql+psycopg://")
    with pytest.raises(UsageError, match="not supported"):
        normalized_url("mysql://u@h/db")
    with pytest.raises(UsageError, match="SQLite file"):
        Database("sqlite://")


def test_sharded_family_keeps_each_subject_in_one_chain(database: Database) -> None:
    from mynakit.services.audit import shard_chain

    subjects = [f"holder-{number}" for number in range(12)]
    with database.transaction() as session:
        for subject in subjects * 2:
            audit.append(
                session,
                shard_chain("family", subject, 4),
                actor="service:x",
                subject=subject,
                purpose="resolve",
                items=["ppid"],
            )
    assert len(audit.chains(database, "family")) > 1
    verdict = audit.verify_family(database, "family")
    assert verdict.ok and verdict.records == 24
    with database.transaction() as session:
        mine = audit.records_for(session, shard_chain("family", "holder-3", 4), "holder-3")
    assert len(mine) == 2
    with database.transaction() as session:
        session.execute(
            update(AuditRecordRow)
            .where(AuditRecordRow.id == _row_id(session, "holder-3"))
            .values(items="[]")
        )
    broken = audit.verify_family(database, "family")
    assert not broken.ok and broken.problems[0].startswith("family/")


def _row_id(session: Session, subject: str) -> int:
    return session.scalars(
        select(AuditRecordRow.id).where(AuditRecordRow.subject == subject).limit(1)
    ).one()


def _entry(subject: str) -> AccessEntry:
    return AccessEntry("service:x", subject, "resolve", ("ppid",), "pin")


def test_append_many_spreads_one_transaction_over_chains_in_the_order_given(
    database: Database,
) -> None:
    with database.transaction() as session:
        audit.append(session, "b", actor="a", subject="s0", purpose="p", items=[])
    entries = [("b", _entry("s1")), ("a", _entry("s2")), ("b", _entry("s3")), ("c", _entry("s4"))]
    with database.transaction() as session:
        records = audit.append_many(session, entries)
    assert [(record.chain, record.position, record.subject) for record in records] == [
        ("b", 2, "s1"),
        ("a", 1, "s2"),
        ("b", 3, "s3"),
        ("c", 1, "s4"),
    ]
    assert records[2].previous_hash == records[0].record_hash
    for chain, count in (("a", 1), ("b", 3), ("c", 1)):
        verdict = audit.verify(database, chain)
        assert verdict.ok and verdict.records == count, verdict.problems
    with database.transaction() as session:
        assert audit.append_many(session, []) == []


def test_batches_over_the_same_chains_in_opposite_orders_do_not_deadlock(
    database_url: str,
) -> None:
    """Heads are locked in chain-name order, whatever order a batch names them in."""
    databases = [Database.open(database_url) for _ in range(2)]
    orders = [["x", "y", "z"], ["z", "y", "x"]]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(database: Database, chains: list[str]) -> None:
        try:
            barrier.wait()
            for _ in range(15):
                with database.transaction() as session:
                    audit.append_many(session, [(chain, _entry(chain)) for chain in chains])
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=writer, args=(database, chains))
        for database, chains in zip(databases, orders, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for chain in "xyz":
        verdict = audit.verify(databases[0], chain)
        assert verdict.ok and verdict.records == 30, verdict.problems
    for database in databases:
        database.dispose()
