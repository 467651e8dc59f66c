"""tasks worklist (call link, done note), calls logged against a patient, phone corrections

Revision ID: 0911
Revises: 0901
Create Date: 2026-12-02 20:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0911"
down_revision: str | None = "0901"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("navigator_tasks") as batch:
        batch.add_column(sa.Column("call_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("done_note", sa.Text(), nullable=True))
    op.create_table(
        "patient_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_contacts_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_contacts")),
    )
    op.create_index(
        "ix_patient_contacts_patient_id_occurred_at",
        "patient_contacts",
        ["patient_id", "occurred_at"],
    )
    op.create_table(
        "patient_phone_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("phone", sa.String(length=8), nullable=False),
        sa.Column("old_value", sa.String(length=16), nullable=True),
        sa.Column("old_invalid", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("new_value", sa.String(length=16), nullable=False),
        sa.Column("changed_by", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_phone_changes_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_phone_changes")),
    )
    op.create_index("ix_patient_phone_changes_patient_id", "patient_phone_changes", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_patient_phone_changes_patient_id", table_name="patient_phone_changes")
    op.drop_table("patient_phone_changes")
    op.drop_index("ix_patient_contacts_patient_id_occurred_at", table_name="patient_contacts")
    op.drop_table("patient_contacts")
    with op.batch_alter_table("navigator_tasks") as batch:
        batch.drop_column("done_note")
        batch.drop_column("call_id")
