"""foundation: patients, clinics, appointments

Revision ID: 0001
Revises:
Create Date: 2026-11-24 09:14:02.816241+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=120), nullable=True),
        sa.Column("specialty_code", sa.String(length=3), nullable=True),
        sa.Column("sensitive", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinics")),
        sa.UniqueConstraint("code", name=op.f("uq_clinics_code")),
    )
    op.create_table(
        "patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pas_patient_id", sa.String(length=64), nullable=False),
        sa.Column("nhs_number", sa.String(length=10), nullable=True),
        sa.Column("family_name", sa.String(length=120), nullable=True),
        sa.Column("given_name", sa.String(length=120), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=1), nullable=False),
        sa.Column("ethnic_category", sa.String(length=2), server_default="99", nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=True),
        sa.Column("lsoa_code", sa.String(length=9), nullable=True),
        sa.Column("imd_decile", sa.SmallInteger(), nullable=True),
        sa.Column("imd_rank", sa.Integer(), nullable=True),
        sa.Column("imd_release", sa.String(length=16), nullable=True),
        sa.Column("core20", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("mobile_phone", sa.String(length=16), nullable=True),
        sa.Column("landline_phone", sa.String(length=16), nullable=True),
        sa.Column("mobile_phone_invalid", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "landline_phone_invalid", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.Column("preferred_language", sa.String(length=8), server_default="en", nullable=False),
        sa.Column("interpreter_needed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("communication_needs", sa.String(length=120), server_default="", nullable=False),
        sa.Column("learning_disability", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("sms_opt_out", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source_hash", sa.String(length=32), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("pas_patient_id", name=op.f("uq_patients_pas_patient_id")),
    )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.create_index("ix_patients_imd_decile", ["imd_decile"], unique=False)

    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pas_appointment_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_attendance", sa.Boolean(), nullable=True),
        sa.Column("attendance_code", sa.String(length=1), server_default="0", nullable=False),
        sa.Column("outcome_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replaces_appointment_id", sa.Integer(), nullable=True),
        sa.Column("source_hash", sa.String(length=32), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_appointments_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_appointments_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["replaces_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointments_replaces_appointment_id_appointments"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
        sa.UniqueConstraint("pas_appointment_id", name=op.f("uq_appointments_pas_appointment_id")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_appointments_clinic_id_start_at", ["clinic_id", "start_at"], unique=False
        )
        batch_op.create_index(
            "ix_appointments_patient_id_start_at", ["patient_id", "start_at"], unique=False
        )
        batch_op.create_index("ix_appointments_start_at", ["start_at"], unique=False)

    op.create_table(
        "appointment_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_changes_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_changes")),
    )
    with op.batch_alter_table("appointment_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_appointment_changes_appointment_id", ["appointment_id"], unique=False
        )

    op.create_table(
        "appointment_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reached", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_contacts_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_contacts")),
        sa.UniqueConstraint(
            "channel", "source_ref", name="uq_appointment_contacts_channel_source_ref"
        ),
    )
    op.create_index(
        "ix_appointment_contacts_appointment_id", "appointment_contacts", ["appointment_id"]
    )

    op.create_table(
        "navigator_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_navigator_tasks_appointment_id_appointments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_navigator_tasks_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_navigator_tasks")),
        sa.UniqueConstraint("source", "source_ref", "kind", name="uq_navigator_tasks_source_ref"),
    )
    op.create_index(
        "ix_navigator_tasks_status_created_at", "navigator_tasks", ["status", "created_at"]
    )
    op.create_index("ix_navigator_tasks_patient_id", "navigator_tasks", ["patient_id"])


def downgrade() -> None:
    op.drop_index("ix_navigator_tasks_patient_id", table_name="navigator_tasks")
    op.drop_index("ix_navigator_tasks_status_created_at", table_name="navigator_tasks")
    op.drop_table("navigator_tasks")
    op.drop_index("ix_appointment_contacts_appointment_id", table_name="appointment_contacts")
    op.drop_table("appointment_contacts")
    with op.batch_alter_table("appointment_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_appointment_changes_appointment_id")

    op.drop_table("appointment_changes")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_appointments_start_at")
        batch_op.drop_index("ix_appointments_patient_id_start_at")
        batch_op.drop_index("ix_appointments_clinic_id_start_at")

    op.drop_table("appointments")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index("ix_patients_imd_decile")

    op.drop_table("patients")
    op.drop_table("clinics")
