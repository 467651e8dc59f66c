"""`navigator sms schedule` and `navigator sms dispatch --once` from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import app
from app.settings import Settings, get_settings
from tests.factories import create_appointment, create_patient


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


def test_schedule_then_dispatch_prints_json_summaries(session: Session, cli_env: Settings) -> None:
    create_appointment(session, start_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    create_appointment(
        session,
        start_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC),
        patient=create_patient(session, mobile_phone=None),
    )
    session.commit()
    runner = CliRunner()

    scheduled = runner.invoke(app, ["sms", "schedule", "--date", "2026-11-24", "--json"])
    assert scheduled.exit_code == 0, scheduled.output
    summary = json.loads(scheduled.stdout)
    assert (summary["created"], summary["no_sms_channel"]) == (1, 1)

    dispatched = runner.invoke(app, ["sms", "dispatch", "--once", "--json"])
    assert dispatched.exit_code == 0, dispatched.output
    assert json.loads(dispatched.stdout)["submitted"] == 1
    log = (cli_env.data_dir / "sms-outbox.log").read_text(encoding="utf-8").splitlines()
    assert len(log) == 1
    assert "Tue 1 Dec 2026 at 09:30" in json.loads(log[0])["body"]

    human = runner.invoke(app, ["sms", "schedule", "--date", "2026-11-24"])
    assert "0 queued, 1 already scheduled, 1 with no SMS channel" in human.stdout


def test_a_bad_date_fails_with_a_clear_message(cli_env: Settings) -> None:
    result = CliRunner().invoke(app, ["sms", "schedule", "--date", "24/11/2026"])
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
