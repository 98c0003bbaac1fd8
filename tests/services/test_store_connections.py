"""Pooled PostgreSQL connections: no ping on a busy pool, and a connection that died while it
sat idle is replaced instead of failing the transaction that takes it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from mynakit.services import store
from mynakit.services.store import Database
from mynakit.services.store.postgres_cluster import ThrowawayCluster

pytestmark = pytest.mark.services


def test_a_connection_killed_while_idle_is_replaced(
    postgres_cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_cluster.create_database("t_idle_ping")
    database = Database(url, pool_size=1)
    try:
        with database.transaction() as session:
            first = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        # The pooled connection's server process goes away (a restart, an idle timeout).
        with Database(url, pool_size=1).engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            other.commit()
        # Every connection counts as idle for long: it is pinged, found dead and replaced.
        monkeypatch.setattr(store, "IDLE_PING_SECONDS", 0.0)
        with database.transaction() as session:
            second = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        database.dispose()
        postgres_cluster.drop_database("t_idle_ping")


def test_a_recently_used_connection_is_not_pinged(
    postgres_cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No ping within IDLE_PING_SECONDS: a connection killed in that time is not noticed before
    # use, which is what shows that a busy pool pays no ping round trip.
    url = postgres_cluster.create_database("t_busy_ping")
    database = Database(url, pool_size=1)
    try:
        with database.transaction() as session:
            first = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with Database(url, pool_size=1).engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            other.commit()
        monkeypatch.setattr(store, "IDLE_PING_SECONDS", 3600.0)
        with pytest.raises(DBAPIError), database.transaction() as session:
            session.execute(text("SELECT 1"))
        # The pool dropped the dead connection: the next transaction gets a new one.
        with database.transaction() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != first
    finally:
        database.dispose()
        postgres_cluster.drop_database("t_busy_ping")
