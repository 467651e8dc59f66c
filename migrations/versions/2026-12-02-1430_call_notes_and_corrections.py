"""calls: notes, identity checks and callback times on attempts, outcome corrections

Revision ID: 0901
Revises: 0701
Create Date: 2026-12-02 14:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0901"
down_revision: str | None = "0701"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("call_attempts") as batch:
        batch.add_column(sa.Column("identity", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("callback_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "call_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("written_by", sa.Integer(), nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_notes_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_notes")),
    )
    op.create_index("ix_call_notes_call_id", "call_notes", ["call_id"])
    op.create_table(
        "call_outcome_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("outcome_id", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("old_kind", sa.String(length=24), nullable=False),
        sa.Column("old_appointment_id", sa.Integer(), nullable=True),
        sa.Column("old_detail", sa.JSON(), nullable=False),
        sa.Column("old_recorded_by", sa.Integer(), nullable=False),
        sa.Column("old_recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name=op.f("fk_call_outcome_changes_call_id_calls"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_outcome_changes")),
    )
    op.create_index("ix_call_outcome_changes_call_id", "call_outcome_changes", ["call_id"])


def downgrade() -> None:
    op.drop_index("ix_call_outcome_changes_call_id", table_name="call_outcome_changes")
    op.drop_table("call_outcome_changes")
    op.drop_index("ix_call_notes_call_id", table_name="call_notes")
    op.drop_table("call_notes")
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("callback_at")
        batch.drop_column("identity")
