"""MyKey platform tables (docs/services.md §B): holders, certificate serials, services, links,
settings (the PPID secret, drawn once here so every process shares it)."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

from mynakit.services.store import UtcDateTime

revision = "mykey_0001"
down_revision = None
branch_labels = ("mykey",)
depends_on = "services_core_0001"


def upgrade() -> None:
    settings = op.create_table(
        "mykey_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.bulk_insert(settings, [{"name": "ppid_secret", "value": secrets.token_hex(32)}])
    op.create_table(
        "mykey_holders",
        sa.Column("holder_ref", sa.String(32), primary_key=True),
        sa.Column("mykey_id", sa.String(32), nullable=False),
        sa.Column("unique_key", sa.String(48), nullable=False, unique=True),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("serial_link_consent", sa.Boolean, nullable=False),
        sa.Column("tap_key", sa.String(64), nullable=True),
        sa.Column("id_clashes", sa.Integer, nullable=False),
        sa.Column("registered_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "mykey_serials",
        sa.Column("serial", sa.String(48), primary_key=True),
        sa.Column(
            "holder_ref",
            sa.String(32),
            sa.ForeignKey("mykey_holders.holder_ref"),
            nullable=False,
            index=True,
        ),
        sa.Column("current", sa.Boolean, nullable=False),
        sa.Column("bound_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "mykey_services",
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("auth_clients.client_id"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("require_pin", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "mykey_links",
        sa.Column(
            "holder_ref",
            sa.String(32),
            sa.ForeignKey("mykey_holders.holder_ref"),
            primary_key=True,
        ),
        sa.Column(
            "client_id",
            sa.String(64),
            sa.ForeignKey("mykey_services.client_id"),
            primary_key=True,
        ),
        sa.Column("service_user_id", sa.String(64), nullable=False),
        sa.Column("linked_at", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("client_id", "service_user_id", name="uq_mykey_links_service_user"),
    )
