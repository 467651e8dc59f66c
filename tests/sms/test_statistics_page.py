"""The SMS statistics page: failures in words with their counts, any period with an inclusive
"to" and the NHS error summary for a bad one, English fallbacks counted, and templates with
unknown placeholders refused with every problem listed."""

from __future__ import annotations

from datetime import date, time, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.clock import FixedClock
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from app.sms.tables import SmsTemplate
from tests.auth.helpers import form_token
from tests.clock import CALENDAR, TODAY
from tests.factories import create_appointment, create_patient
from tests.sms.helpers import create_message
from tests.sms.test_pages import page_client, sign_in_as

__all__ = ["page_client"]


def _uk(day: date) -> str:
    return f"{day.day}/{day.month}/{day.year}"


def _failed(session: Session, code: str, day: date, **values: object) -> None:
    create_message(
        session,
        state="failed",
        error_code=code,
        created_at=CALENDAR.at(day, time(9)),
        **values,
    )


def test_failures_are_shown_in_words_with_their_counts(
    page_client: TestClient, session: Session
) -> None:
    for code in ("30003", "30003", "21211", "99999"):
        _failed(session, code, TODAY)
    sign_in_as(session, page_client, Role.MANAGER)

    page = page_client.get("/sms")

    assert page.status_code == 200
    assert "The phone was switched off or out of signal" in page.text
    assert "Not a valid phone number" in page.text
    assert "Other error (code 99999)" in page.text
    row = page.text.split("The phone was switched off or out of signal", 1)[1]
    assert ">30003<" in row.split("</tr>", 1)[0]
    assert ">2<" in row.split("</tr>", 1)[0]


def test_any_period_is_chosen_with_its_last_day_included(
    page_client: TestClient, session: Session
) -> None:
    first = TODAY - timedelta(days=60)
    _failed(session, "30005", first)
    _failed(session, "30005", first + timedelta(days=9))
    _failed(session, "30005", first + timedelta(days=10))
    sign_in_as(session, page_client, Role.MANAGER)

    ten_days = page_client.get(
        "/sms", params={"from": _uk(first), "to": _uk(first + timedelta(days=9))}
    )
    default = page_client.get("/sms")

    assert ten_days.status_code == 200
    failures = ten_days.text.split('data-testid="failures"', 1)[1].split("</table>", 1)[0]
    assert ">2<" in failures
    assert f"{first:%-d %b %Y} to {first + timedelta(days=9):%-d %b %Y}" in ten_days.text
    assert 'data-testid="failures"' not in default.text  # the last 30 days: none of them


def test_a_bad_period_shows_every_problem_in_the_error_summary(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)

    future = page_client.get(
        "/sms",
        params={"from": _uk(TODAY + timedelta(days=3)), "to": _uk(TODAY + timedelta(days=1))},
    )
    too_long = page_client.get(
        "/sms", params={"from": _uk(TODAY - timedelta(days=4 * 365)), "to": _uk(TODAY)}
    )
    nonsense = page_client.get("/sms", params={"from": "31/2/2026", "to": ""})

    assert future.status_code == 422
    assert 'class="nhsuk-error-summary"' in future.text
    assert '<a href="#from">The first day' in future.text
    assert "is in the future" in future.text
    assert '<a href="#to">The last day' in future.text
    assert "is before the first day" in future.text
    assert too_long.status_code == 422
    assert "Choose a period of at most three years" in too_long.text
    assert '<a href="#from">Enter the first day as a real date' in nonsense.text
    assert '<a href="#to">Enter the last day' in nonsense.text


def test_texts_sent_in_english_for_want_of_the_patients_language_are_counted(
    page_client: TestClient, session: Session
) -> None:
    somali = create_patient(session, preferred_language="so")
    polish = create_patient(session, preferred_language="pl")
    create_message(session, appointment=create_appointment(session, patient=somali))
    create_message(session, appointment=create_appointment(session, patient=somali))
    create_message(session, appointment=create_appointment(session, patient=polish), language="pl")
    create_message(session)
    sign_in_as(session, page_client, Role.MANAGER)

    page = page_client.get("/sms")

    assert (
        "2 messages in this period were sent in English because there is no text in the "
        "patient's language." in page.text
    )
    assert "Somali speakers sent English" in page.text
    assert "Every language has a text for every kind of message." in page.text
    assert "Needs translator's check" in page.text


def test_a_template_with_unknown_placeholders_lists_every_problem_and_saves_nothing(
    page_client: TestClient, session: Session
) -> None:
    sign_in_as(session, page_client, Role.MANAGER)
    token = form_token(page_client.get("/sms/templates/reminder/en").text)

    refused = page_client.post(
        "/sms/templates/reminder/en",
        data={"csrf_token": token, "body": "Hi {name}, {date} at {clinic}", "action": "save"},
    )

    assert refused.status_code == 422
    summary = refused.text.split('class="nhsuk-error-summary"', 1)[1].split("</ul>", 1)[0]
    assert '<a href="#body">{name} is not a placeholder' in summary
    assert '<a href="#body">{clinic} is not a placeholder' in summary
    session.expire_all()
    assert session.scalars(select(SmsTemplate)).all() == []


def test_saving_a_template_shows_a_banner(page_client: TestClient, session: Session) -> None:
    sign_in_as(session, page_client, Role.MANAGER)
    token = form_token(page_client.get("/sms/templates/help/pa").text)

    saved = page_client.post(
        "/sms/templates/help/pa",
        data={"csrf_token": token, "body": "ਮਦਦ: 1, 2 ਜਾਂ 3 ਜਵਾਬ ਦਿਓ।", "action": "save"},
    )

    assert "The template Help text (Punjabi) was saved as a new version." in saved.text


def test_deliveries_read_not_tracked_with_the_console_provider_and_counted_otherwise(
    page_client: TestClient,
    session: Session,
    settings: Settings,
    database: Database,
    clock: FixedClock,
) -> None:
    create_message(session, state="submitted", created_at=CALENDAR.at(TODAY, time(9)))
    sign_in_as(session, page_client, Role.MANAGER)
    console = settings.model_copy(update={"sms_provider": "console", "login_failure_delay_ms": 0})
    with TestClient(
        create_app(console, database, clock=clock), base_url="https://testserver"
    ) as demo_client:
        sign_in_as(session, demo_client, Role.MANAGER)
        untracked = demo_client.get("/sms")

    tracked = page_client.get("/sms")

    assert 'data-testid="delivery-not-tracked"' in untracked.text
    assert "Not tracked" in untracked.text
    assert "0.0%" not in untracked.text
    assert 'data-testid="delivery-not-tracked"' not in tracked.text
    assert "0.0%" in tracked.text
