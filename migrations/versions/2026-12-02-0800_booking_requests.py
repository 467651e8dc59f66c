"""bookings: rebook and cancel requests; local NAV- rebookings become requests

Navigator used to create its own appointment (`NAV-<id>`) when a navigator rebooked, and mark
the original cancelled. The PAS never knew either. This migration turns each such phantom into
an open rebook request for the original appointment (the agreed time is the phantom's start),
puts the original back to the attendance code it had before the navigator changed it (from
`appointment_changes`, with a change row saying so), and deletes the phantom with its queued
texts, scores and queue assignments (their outcomes keep their history, with no appointment).

Revision ID: 0801
Revises: 0601
Create Date: 2026-12-02 08:00:00+00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0801"
down_revision: str | None = "0601"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "booking_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("preferred_start_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_available", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=True),
        sa.Column("specialty_code", sa.String(length=3), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("matched_appointment_id", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_note", sa.Text(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_booking_requests_appointment_id_appointments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_booking_requests_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["matched_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_booking_requests_matched_appointment_id_appointments"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_booking_requests_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_requests")),
    )
    op.create_index(
        op.f("ix_booking_requests_status_requested_at"),
        "booking_requests",
        ["status", "requested_at"],
    )
    op.create_index(op.f("ix_booking_requests_patient_id"), "booking_requests", ["patient_id"])
    op.create_index(
        op.f("ix_booking_requests_appointment_id"), "booking_requests", ["appointment_id"]
    )
    _phantoms_to_requests()


def _phantoms_to_requests() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)  # clock: a migration records when it ran
    phantoms = connection.execute(
        sa.text(
            "SELECT a.id, a.patient_id, a.replaces_appointment_id, a.start_at, a.booked_at, "
            "a.clinic_id, c.specialty_code FROM appointments a JOIN clinics c "
            "ON c.id = a.clinic_id "
            "WHERE a.pas_appointment_id LIKE 'NAV-%' AND a.replaces_appointment_id IS NOT NULL"
        )
    ).all()
    for phantom in phantoms:
        original_id = phantom.replaces_appointment_id
        before = connection.execute(
            sa.text(
                "SELECT old_value FROM appointment_changes WHERE appointment_id = :id "
                "AND source = 'navigator' AND field = 'attendance_code' ORDER BY id LIMIT 1"
            ),
            {"id": original_id},
        ).scalar()
        current = connection.execute(
            sa.text("SELECT attendance_code FROM appointments WHERE id = :id"), {"id": original_id}
        ).scalar()
        if before is not None and current != before:
            connection.execute(
                sa.text(
                    "UPDATE appointments SET attendance_code = :code, outcome_recorded_at = "
                    "NULL WHERE id = :id"
                ),
                {"code": before, "id": original_id},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO appointment_changes (appointment_id, changed_at, source, field, "
                    "old_value, new_value) VALUES (:id, :at, 'migration', 'attendance_code', "
                    ":old, :new)"
                ),
                {"id": original_id, "at": now, "old": current, "new": before},
            )
        connection.execute(
            sa.text(
                "INSERT INTO booking_requests (kind, status, patient_id, appointment_id, "
                "requested_at, preferred_start_at, first_available, clinic_id, specialty_code, "
                "reason, closed_note) VALUES ('rebook', 'open', :patient, :original, :requested, "
                ":preferred, false, :clinic, :specialty, :reason, '')"
            ),
            {
                "patient": phantom.patient_id,
                "original": original_id,
                "requested": phantom.booked_at,
                "preferred": phantom.start_at,
                "clinic": phantom.clinic_id,
                "specialty": phantom.specialty_code,
                "reason": "moved from a rebooking Navigator had made itself",
            },
        )
        connection.execute(
            sa.text(
                "DELETE FROM sms_status_events WHERE message_id IN "
                "(SELECT id FROM sms_messages WHERE appointment_id = :id)"
            ),
            {"id": phantom.id},
        )
        for table in (
            "sms_messages",
            "risk_scores",
            "call_assignments",
            "appointment_changes",
            "appointment_contacts",
        ):
            connection.execute(
                sa.text(f"DELETE FROM {table} WHERE appointment_id = :id"),
                {"id": phantom.id},
            )
        for table, column in (
            ("call_outcomes", "appointment_id"),
            ("navigator_tasks", "appointment_id"),
            ("sms_inbound", "appointment_id"),
            ("appointments", "replaces_appointment_id"),
        ):
            connection.execute(
                sa.text(f"UPDATE {table} SET {column} = NULL WHERE {column} = :id"),
                {"id": phantom.id},
            )
        connection.execute(sa.text("DELETE FROM appointments WHERE id = :id"), {"id": phantom.id})


def downgrade() -> None:
    op.drop_index(op.f("ix_booking_requests_appointment_id"), table_name="booking_requests")
    op.drop_index(op.f("ix_booking_requests_patient_id"), table_name="booking_requests")
    op.drop_index(op.f("ix_booking_requests_status_requested_at"), table_name="booking_requests")
    op.drop_table("booking_requests")
