"""Eligibility service tables: insured records, card bindings, consents, checks.

Written by hand so the schema is reviewed; ``mynakit.services.eligibility.store`` must match it
(a test compares them). Access records live in the shared audit tables (chain
``eligibility-N``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from mynakit.services.store import UtcDateTime

revision = "eligibility_0001"
down_revision = None
branch_labels = ("eligibility",)
depends_on = "services_core"


def upgrade() -> None:
    op.create_table(
        "eligibility_insured",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("insurer_number", sa.String(8), nullable=False),
        sa.Column("insurer_name", sa.String(200), nullable=False),
        sa.Column("card_classification", sa.String(2), nullable=False),
        sa.Column("card_symbol", sa.String(38), nullable=False),
        sa.Column("card_number", sa.String(38), nullable=False),
        sa.Column("branch_number", sa.String(2), nullable=False),
        sa.Column("personal_family", sa.String(1), nullable=False),
        sa.Column("insured_name", sa.String(200), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_kana", sa.String(200), nullable=False),
        sa.Column("name_of_other", sa.String(200), nullable=True),
        sa.Column("name_of_other_kana", sa.String(200), nullable=True),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("sex1", sa.String(1), nullable=False),
        sa.Column("sex2", sa.String(1), nullable=True),
        sa.Column("address", sa.String(400), nullable=True),
        sa.Column("post_number", sa.String(8), nullable=True),
        sa.Column("qualification_date", sa.Date, nullable=False),
        sa.Column("disqualification_date", sa.Date, nullable=True),
        sa.Column("reason_of_loss", sa.String(2), nullable=True),
        sa.Column("card_issuance_date", sa.Date, nullable=True),
        sa.Column("card_valid_from", sa.Date, nullable=True),
        sa.Column("card_valid_until", sa.Date, nullable=True),
        sa.Column("partial_contribution_ratio", sa.String(3), nullable=True),
        sa.Column("elderly_certificate", sa.Text, nullable=True),
        sa.Column("limit_certificate", sa.Text, nullable=True),
        sa.Column("specific_diseases", sa.Text, nullable=True),
        sa.UniqueConstraint(
            "insurer_number",
            "card_symbol",
            "card_number",
            "branch_number",
            "qualification_date",
            name="uq_eligibility_insured_card_qualification",
        ),
    )
    op.create_index("ix_eligibility_insured_person_key", "eligibility_insured", ["person_key"])
    op.create_table(
        "eligibility_cards",
        sa.Column("serial", sa.String(64), primary_key=True),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("registered_at", UtcDateTime(), nullable=False),
        sa.Column("predecessor", sa.String(64), nullable=True),
        sa.Column("superseded_at", UtcDateTime(), nullable=True),
        sa.Column("card_key", sa.String(64), nullable=True),
    )
    op.create_index("ix_eligibility_cards_person_key", "eligibility_cards", ["person_key"])
    op.create_table(
        "eligibility_consents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("institution_code", sa.String(10), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("given_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
    )
    op.create_index(
        "ix_eligibility_consents_person_key",
        "eligibility_consents",
        ["person_key", "institution_code"],
    )
    op.create_table(
        "eligibility_checks",
        sa.Column("check_id", sa.String(64), primary_key=True),
        sa.Column("institution_code", sa.String(10), nullable=False),
        sa.Column("person_key", sa.String(64), nullable=False),
        sa.Column("checked_at", UtcDateTime(), nullable=False),
        sa.Column("confirmation_date", sa.Date, nullable=False),
        sa.Column("reference_classification", sa.String(1), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("confirmed_by", sa.String(64), nullable=True),
        sa.Column("query", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("eligibility_checks")
    op.drop_index("ix_eligibility_consents_person_key", "eligibility_consents")
    op.drop_table("eligibility_consents")
    op.drop_index("ix_eligibility_cards_person_key", "eligibility_cards")
    op.drop_table("eligibility_cards")
    op.drop_index("ix_eligibility_insured_person_key", "eligibility_insured")
    op.drop_table("eligibility_insured")
