"""A process killed in the middle of an import leaves the database exactly as it was.

The import runs in a child process that dies with `os._exit` (no rollback, no cleanup: as
after a `kill -9` or a lost machine) after a few chunks have been written, inside the single
transaction of the import. The database must keep the previous import untouched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.appointments.tables import Appointment
from app.db.session import Database
from app.imports.service import import_appointments, import_patients
from app.patients.tables import Patient
from app.settings import Settings
from app.synth.service import write_trust

CRASHING_IMPORT = textwrap.dedent(
    """
    import os, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from app.console import ProgressReporter
    from app.db.session import Database
    from app.imports.service import import_patients
    from app.settings import Settings

    class DieAfterChunks(ProgressReporter):
        def __init__(self):
            super().__init__(None, None)
            self.chunks = 0
        def advance(self, amount=1):
            self.chunks += 1
            if self.chunks == 3:
                os._exit(137)  # no rollback, no cleanup

    settings = Settings(_env_file=None, database_url=sys.argv[1])
    import_patients(
        Database(settings), Path(sys.argv[2]), progress=DieAfterChunks(), chunk_size=20,
        now=datetime.now(UTC),
    )
    sys.exit(0)  # not reached
    """
)


def snapshot(session: Session) -> tuple[int, int, list[tuple[str, str | None]]]:
    patients = session.scalar(select(func.count()).select_from(Patient)) or 0
    appointments = session.scalar(select(func.count()).select_from(Appointment)) or 0
    names = list(
        session.execute(select(Patient.pas_patient_id, Patient.family_name).order_by(Patient.id))
    )
    return patients, appointments, [tuple(row) for row in names]  # type: ignore[misc]


def test_a_crash_in_the_middle_of_an_import_changes_nothing(
    database: Database, settings: Settings, session: Session, tmp_path: Path
) -> None:
    today = datetime.now(UTC).date()
    first, second = tmp_path / "first", tmp_path / "second"
    write_trust(first, patients=60, weeks_history=2, weeks_ahead=1, seed=1, today=today)
    # A later extract: more patients, and the same ids with other names (updates).
    write_trust(second, patients=150, weeks_history=2, weeks_ahead=1, seed=2, today=today)
    import_patients(database, first / "patients.csv", now=datetime.now(UTC))
    import_appointments(database, first / "appointments.csv", now=datetime.now(UTC))
    before = snapshot(session)
    session.commit()

    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_IMPORT,
            settings.database_url,
            str(second / "patients.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert child.returncode == 137, child.stderr
    after = snapshot(session)
    assert after == before
    assert before[0] == 60
    # And the database is usable: the same import, run to the end, now succeeds.
    session.commit()
    report = import_patients(database, second / "patients.csv", now=datetime.now(UTC))
    assert report.committed
    assert snapshot(session)[0] == 150
