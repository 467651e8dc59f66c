"""analytics: a covering index on patients for the dashboard's joins to the period's patients

Revision ID: 1204
Revises: 0951
Create Date: 2026-12-04 20:45:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1204"
down_revision: str | None = "0951"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostgreSQL keeps the listed columns in the index leaves (index-only scans); SQLite has
    # no INCLUDE and gets a plain index on id.
    op.create_index(
        op.f("ix_patients_id_covering"),
        "patients",
        ["id"],
        unique=False,
        postgresql_include=[
            "birth_date",
            "sex",
            "ethnic_category",
            "imd_decile",
            "communication_needs",
            "interpreter_needed",
            "learning_disability",
        ],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_patients_id_covering"), table_name="patients")
