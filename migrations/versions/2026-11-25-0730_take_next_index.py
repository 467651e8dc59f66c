"""calls: an index in take-next order, so taking a call reads one row, not the day's queue

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 07:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_calls_status_priority"),
        "calls",
        ["status", sa.text("priority DESC"), "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_calls_status_priority"), table_name="calls")
