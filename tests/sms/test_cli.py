"""`navigator sms schedule` and `navigator sms dispatch --once` from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app
from app.clock import FixedClock
from app.settings import Settings, get_settings
from tests.clock import TODAY
from tests.factories import create_appointment, create_patient
from tests.sms.helpers import local_at, spoken


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NAVIGATOR_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("NAVIGATOR_SMS_PROVIDER", "console")
    monkeypatch.setenv("NAVIGATOR_SMS_QUIET_HOURS_START", "00:00")
    monkeypatch.setenv("NAVIGATOR_SMS_QUIET_HOURS_END", "00:00")
    monkeypatch.setenv("NAVIGATOR_SMS_SEND_RATE_PER_SECOND", "0")
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


def test_schedule_then_dispatch_prints_json_summaries(
    session: Session, cli_env: Settings, clock: FixedClock
) -> None:
    start = local_at(7, 9, 30)
    create_appointment(session, start_at=start)
    create_appointment(session, start_at=start, patient=create_patient(session, mobile_phone=None))
    session.commit()
    runner = CliRunner()

    # Today by the command's clock: the appointments are a week ahead.
    scheduled = runner.invoke(app, ["sms", "schedule", "--json"], obj=clock)
    assert scheduled.exit_code == 0, scheduled.output
    summary = json.loads(scheduled.stdout)
    assert (summary["created"], summary["no_sms_channel"]) == (1, 1)

    dispatched = runner.invoke(app, ["sms", "dispatch", "--once", "--json"], obj=clock)
    assert dispatched.exit_code == 0, dispatched.output
    assert json.loads(dispatched.stdout)["submitted"] == 1
    log = (cli_env.data_dir / "sms-outbox.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 1
    line = json.loads(log[0])
    assert spoken(start) in line["body"]
    assert line["at"] == clock.now().isoformat()  # stamped by the command's clock

    human = runner.invoke(app, ["sms", "schedule", "--date", TODAY.isoformat()], obj=clock)
    assert "0 queued, 1 already scheduled, 1 with no SMS channel" in human.stdout


def test_a_bad_date_fails_with_a_clear_message(cli_env: Settings) -> None:
    result = CliRunner().invoke(app, ["sms", "schedule", "--date", f"{TODAY:%d/%m/%Y}"])
    assert result.exit_code != 0


def test_dispatch_with_twilio_unconfigured_fails_with_a_clear_message(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAVIGATOR_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("NAVIGATOR_TWILIO_ACCOUNT_SID", "")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["sms", "dispatch", "--once"])
    assert result.exit_code == 1
    assert "NAVIGATOR_TWILIO_ACCOUNT_SID" in result.output
