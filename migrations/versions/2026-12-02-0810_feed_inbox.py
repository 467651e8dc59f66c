"""feed: the HL7 inbox (feed_messages) and patient merges

Revision ID: 0501
Revises: 0008
Create Date: 2026-12-02 08:10:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0501"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("control_id", sa.String(length=64), nullable=True),
        sa.Column("message_type", sa.String(length=16), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("appointment_key", sa.String(length=64), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_messages")),
        sa.UniqueConstraint("control_id", name=op.f("uq_feed_messages_control_id")),
    )
    op.create_index(
        op.f("ix_feed_messages_status_id"), "feed_messages", ["status", "id"], unique=False
    )
    op.create_table(
        "patient_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("surviving_patient_id", sa.Integer(), nullable=False),
        sa.Column("merged_pas_patient_id", sa.String(length=64), nullable=False),
        sa.Column("merged_nhs_number", sa.String(length=10), nullable=True),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["surviving_patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_merges_surviving_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_merges")),
        sa.UniqueConstraint(
            "merged_pas_patient_id", name=op.f("uq_patient_merges_merged_pas_patient_id")
        ),
    )
    op.create_index(
        op.f("ix_patient_merges_surviving_patient_id"),
        "patient_merges",
        ["surviving_patient_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_patient_merges_surviving_patient_id"), table_name="patient_merges")
    op.drop_table("patient_merges")
    op.drop_index(op.f("ix_feed_messages_status_id"), table_name="feed_messages")
    op.drop_table("feed_messages")
