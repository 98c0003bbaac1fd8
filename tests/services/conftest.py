"""Fixtures of the services tier: every store test runs on SQLite and on a real PostgreSQL
(a throwaway cluster started once per session, one fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mynakit.services.store import Database, sqlite_url
from mynakit.services.store.postgres_cluster import ThrowawayCluster

DATABASE_KINDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayCluster]:
    """Debian's PostgreSQL in a temporary folder, owned by an unprivileged account."""
    with ThrowawayCluster() as cluster:
        yield cluster


@pytest.fixture(params=DATABASE_KINDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a new database in the session's cluster."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "services.sqlite3")
        return
    cluster: ThrowawayCluster = request.getfixturevalue("postgres_cluster")
    name = f"t_{abs(hash(request.node.nodeid)) % 10**12}"
    url = cluster.create_database(name)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """``database_url`` opened with the shared migrations applied."""
    database = Database.open(database_url)
    yield database
    database.dispose()
