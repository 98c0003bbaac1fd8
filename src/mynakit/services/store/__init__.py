"""Storage for the services: one SQLAlchemy 2 engine per database URL, Alembic migrations run
programmatically when a service opens its database.

SQLite (``<mynakit home>/services.sqlite3``) is the embedded default; PostgreSQL is chosen by a
URL (``--database`` or ``MYNAKIT_DATABASE_URL``), e.g. ``postgresql://user@/db?host=/run/pg``.
The same models and migrations serve both.

Migration convention (for every service on this layer):

* each service keeps its own Alembic chain in ``mynakit/services/<service>/migrations/``, a
  folder of revision modules whose first revision has ``down_revision = None``,
  ``branch_labels = ("<service>",)`` and ``depends_on = "services_core"`` (the shared tables of
  audit and auth, in ``store/migrations/versions``);
* revision ids are ``<service>_NNNN`` (``mykey_0001``, ``eligibility_0001``), table names start
  with the service name (``mykey_holders``) or with the shared module's (``audit_``, ``auth_``);
* a service opens its database with ``Database.open(url, chains=["mykey"])``; the shared chain
  is always included, ``upgrade heads`` brings every named chain to its newest revision.

A write is acknowledged only after its transaction committed (docs/services.md §B, house
rules): :meth:`Database.transaction` commits on leaving the block and the caller answers only
after that.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from mynakit.errors import MynakitError, UsageError
from mynakit.paths import mynakit_home

DATABASE_URL_VARIABLE = "MYNAKIT_DATABASE_URL"
DEFAULT_DATABASE_FILE = "services.sqlite3"
CORE_CHAIN = "services_core"
# Held while migrating so that two server processes starting together on one PostgreSQL do
# not both create tables (pg_advisory_lock key: any constant shared by all mynakit processes).
_MIGRATION_LOCK_KEY = 0x6D796E61  # "myna"
# SQLite: wait this long for another writer instead of failing at once with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out
# (the server may have restarted or dropped it); a busy connection is not: a ping per
# transaction would be one more round trip on every request.
IDLE_PING_SECONDS = 5.0

_NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every service table (one metadata, deterministic constraint names)."""

    metadata = MetaData(naming_convention=_NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on both databases (SQLite's DATETIME keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise UsageError("store aware datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoreError(MynakitError):
    """The database cannot be opened or used (bad URL, server down, locked)."""

    exit_code = 8


def default_database_url() -> str:
    """``MYNAKIT_DATABASE_URL`` when set, else the SQLite file under the mynakit home."""
    configured = os.environ.get(DATABASE_URL_VARIABLE)
    if configured:
        return configured
    return sqlite_url(mynakit_home() / DEFAULT_DATABASE_FILE)


def sqlite_url(path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(path)}"


def normalized_url(url: str) -> str:
    """PostgreSQL URLs use psycopg 3 (``postgresql://`` alone would mean psycopg2)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"not a database URL: {_redacted(url)}") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername not in ("postgresql+psycopg", "sqlite", "sqlite+pysqlite"):
        raise UsageError(
            f"database {parsed.drivername!r} is not supported: use sqlite:///FILE or postgresql://"
        )
    return parsed.render_as_string(hide_password=False)


class Database:
    """An engine, a session factory and the migrations of the chains a service uses."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalized_url(url)
        parsed = make_url(self.url)
        self.dialect = "sqlite" if parsed.drivername.startswith("sqlite") else "postgresql"
        options: dict[str, Any] = {}
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise UsageError("use a SQLite file: several connections must share it")
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # Pooled connections: closing the last connection to a WAL database checkpoints
            # and removes the WAL, which would cost milliseconds per transaction.
            options["pool_size"] = pool_size
            options["max_overflow"] = pool_size
            options["connect_args"] = {"check_same_thread": False}
        else:
            options["pool_size"] = pool_size
            options["max_overflow"] = pool_size
        from sqlalchemy import create_engine

        self.engine: Engine = create_engine(self.url, **options)
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine)
        else:
            _ping_idle_connections(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer_lock = threading.RLock() if self.dialect == "sqlite" else None

    @classmethod
    def open(
        cls, url: str | None = None, *, chains: Sequence[str] = (), migrate: bool = True
    ) -> Database:
        """Open ``url`` (default :func:`default_database_url`) and bring the shared chain and
        ``chains`` (service names, see the module docstring) up to date."""
        database = cls(url or default_database_url())
        if migrate:
            database.migrate(chains)
        return database

    def migrate(self, chains: Sequence[str] = ()) -> None:
        """Run ``alembic upgrade heads`` over the shared chain and the named service chains."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(_migrations_folder("store")))
        locations = [str(_migrations_folder("store") / "versions")]
        locations += [
            str(_migrations_folder(chain) / "versions") for chain in chains if chain != CORE_CHAIN
        ]
        config.set_main_option("version_locations", " ".join(locations))
        config.set_main_option("path_separator", "space")
        try:
            with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, "heads")
        except OperationalError as error:
            raise StoreError(f"cannot migrate {self.describe()}: {error.orig}") from error

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back on an exception."""
        if self._writer_lock is None:
            with self._sessions.begin() as session:
                yield session
            return
        # SQLite: every transaction takes the database's write lock (BEGIN IMMEDIATE), and a
        # connection that finds it taken sleeps in SQLite's busy handler (1, 2, 5, 10 ... ms)
        # rather than being woken when it frees. Threads of one process therefore queue on a
        # Python lock first: only one per process waits inside SQLite, and the lock is
        # handed over as soon as the commit returned.
        with self._writer_lock, self._sessions.begin() as session:
            yield session

    def describe(self) -> str:
        """The URL without its password (for messages and logs)."""
        return _redacted(self.url)

    def dispose(self) -> None:
        self.engine.dispose()


def _migrations_folder(package: str) -> Path:
    module = "mynakit.services.store" if package == "store" else f"mynakit.services.{package}"
    folder = Path(str(resources.files(module))) / "migrations"
    if not folder.is_dir():
        raise UsageError(f"service {package!r} has no migrations folder ({folder})")
    return folder


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # pysqlite's own transaction handling would BEGIN lazily (DEFERRED); switch it off and
        # emit BEGIN IMMEDIATE below, so a transaction takes the write lock up front and two
        # writers never deadlock upgrading their read locks (SQLite "Transaction" docs,
        # docs/card.md §2.2).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer. synchronous=NORMAL keeps every committed
        # transaction across a killed process (the WAL is written before COMMIT returns); only
        # an OS crash or power loss can lose the newest ones (SQLite "WAL" docs,
        # docs/card.md §Performance).
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle in the pool for more than
    ``IDLE_PING_SECONDS``: a dead one is then replaced (the pool retries the checkout with a new
    connection) instead of failing the transaction, and a busy pool pays no round trip
    (SQLAlchemy "Dealing with Disconnects", pessimistic handling done by hand)."""

    @event.listens_for(engine, "checkin")
    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        checked_in = record.info.get("checked_in")
        if checked_in is None or time.monotonic() - checked_in < IDLE_PING_SECONDS:
            return
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as error:
            # The pool discards this connection and checks out another (up to three tries).
            raise DisconnectionError(f"pooled connection is dead: {error}") from error


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"
