"""risk: every monthly review of the active model (drift, challenger, decision)

Revision ID: 0951
Revises: 0911
Create Date: 2026-12-03 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0951"
down_revision: str | None = "0911"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_model_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("champion_version", sa.String(length=64), nullable=True),
        sa.Column("challenger_version", sa.String(length=64), nullable=True),
        sa.Column("active_version", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("comparison", sa.JSON(), nullable=False),
        sa.Column("drift", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_model_decisions")),
    )
    op.create_index(
        "ix_risk_model_decisions_decided_at", "risk_model_decisions", ["decided_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_risk_model_decisions_decided_at", table_name="risk_model_decisions")
    op.drop_table("risk_model_decisions")
