"""The calls feature's tables as analytics reads them (read-only, lightweight table clauses).

Analytics only reads these columns, so it names them here instead of importing the calls
feature's ORM classes: the reports keep working whichever order the features land in, and
nothing here adds to `Base.metadata` (the schema is owned by the calls migration, 0005).
"""

from __future__ import annotations

from sqlalchemy import Date, Float, Integer, String, column, table

from app.db.base import UTCDateTime

CALL_ARM = "call"
HOLDOUT_ARM = "holdout"
CALL_COMPLETED = "completed"  # the patient was reached and outcomes recorded
WRONG_NUMBER = "wrong_number"

call_assignments = table(
    "call_assignments",
    column("id", Integer),
    column("appointment_id", Integer),
    column("patient_id", Integer),
    column("queue_date", Date),
    column("arm", String),
    column("risk", Float),
    column("assigned_at", UTCDateTime),
    column("call_id", Integer),
)

calls = table(
    "calls",
    column("id", Integer),
    column("patient_id", Integer),
    column("queue_date", Date),
    column("status", String),
    column("attempts", Integer),
    column("completed_at", UTCDateTime),
)

call_attempts = table(
    "call_attempts",
    column("id", Integer),
    column("call_id", Integer),
    column("result", String),
    column("attempted_at", UTCDateTime),
)

call_outcomes = table(
    "call_outcomes",
    column("id", Integer),
    column("call_id", Integer),
    column("appointment_id", Integer),
    column("kind", String),
    column("recorded_at", UTCDateTime),
)

# Outcome kinds as the calls feature records them, with the words managers read.
OUTCOME_LABELS: dict[str, str] = {
    "confirmed": "Confirmed attendance",
    "rebooked": "Rebooked",
    "cancelled": "Cancelled (slot freed)",
    "travel_costs": "Help with travel costs",
    "parking": "Parking arranged",
    "transport": "Transport arranged",
    "longer_appointment": "Longer appointment",
    "bsl_interpreter": "BSL interpreter booked",
    "spoken_interpreter": "Spoken-language interpreter booked",
    "other_adjustment": "Other reasonable adjustment",
    "declined_help": "Declined help",
    "unreachable": "Could not be reached",
}
# A cancellation or a rebooking releases the original slot for another patient.
SLOT_FREEING_OUTCOMES = ("cancelled", "rebooked")
