"""`navigator demo` preparation: a synthetic trust lands in the database, and again safely."""

from __future__ import annotations

from sqlalchemy import func, select

from app.appointments.tables import Appointment
from app.db.session import Database
from app.demo import prepare_demo
from app.patients.tables import Patient
from app.settings import Settings


def test_prepare_demo_loads_a_trust_and_a_second_run_changes_nothing(
    settings: Settings, database: Database
) -> None:
    first = prepare_demo(settings, patients=300, show_progress=False)
    second = prepare_demo(settings, patients=300, show_progress=False)

    steps = dict(first.steps)
    assert steps["import patients"].startswith("300 inserted")
    again = dict(second.steps)
    assert again["import patients"] == "0 inserted, 0 updated, 300 unchanged"
    assert again["import appointments"].startswith("0 inserted, 0 updated")
    assert (settings.data_dir / "demo" / "appointments.csv").exists()
    assert "calls queued for" in steps["queue"]
    # Eight weeks of programme history are simulated once, through the real call services.
    assert "appointments in the call arm" in steps["programme history"]
    assert "nothing changed" in again["programme history"]
    # Reminders are queued once: the second run finds them all already queued.
    queued = int(steps["sms reminders"].split()[0])
    assert queued > 0
    assert again["sms reminders"].startswith(f"0 queued, {queued} already queued")
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 300
        assert (session.scalar(select(func.count()).select_from(Appointment)) or 0) > 300
