"""analytics: a covering index for the dashboard's period scans

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 05:30:00+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # PostgreSQL keeps the listed columns in the index leaves (index-only scans); SQLite has
    # no INCLUDE and gets a plain index on start_at.
    op.create_index(
        op.f("ix_appointments_start_at_covering"),
        "appointments",
        ["start_at"],
        unique=False,
        postgresql_include=["id", "patient_id", "clinic_id", "attendance_code"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_appointments_start_at_covering"), table_name="appointments")
