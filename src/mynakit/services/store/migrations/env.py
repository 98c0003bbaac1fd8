"""Alembic environment for programmatic runs: :meth:`mynakit.services.store.Database.migrate`
passes an open connection in ``config.attributes["connection"]`` (no alembic.ini, no CLI)."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through mynakit.services.store.Database.migrate")
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
