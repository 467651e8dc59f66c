"""The audit log a DPO can read: actions in words, filters (NHS number only by POST), a date
range with its last day included, and a CSV of the filtered view that is itself audited."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tables import AuditEvent
from tests.auth.helpers import (
    AUDITED_NHS_NUMBER,
    create_audit_trail,
    form_token,
    sign_in_with_form,
)
from tests.clock import TODAY

NHS_NUMBER = AUDITED_NHS_NUMBER


def _audited(page_client: TestClient, session: Session) -> tuple[str, int]:
    """The form's CSRF token and the patient's id; the navigator is called caller."""
    patient_id, _navigator_id = create_audit_trail(session)
    sign_in_with_form(page_client, "dpo")
    return form_token(page_client.get("/audit").text), patient_id


def _days(name: str, day: date) -> dict[str, str]:
    return {
        f"{name}-day": str(day.day),
        f"{name}-month": str(day.month),
        f"{name}-year": str(day.year),
    }


def _user_option(page: str, username: str) -> str:
    """The value of the user list's option for `username` (the list is a select, by id)."""
    match = re.search(rf'<option value="(\d+)">{re.escape(username)}</option>', page)
    assert match, f"no option for {username} in the user list"
    return match.group(1)


def test_the_user_filter_is_a_list_of_users(page_client: TestClient, session: Session) -> None:
    _audited(page_client, session)

    page = page_client.get("/audit").text

    assert '<label class="nhsuk-label" for="user_id">User</label>' in page
    assert '<select class="nhsuk-select" id="user_id" name="user_id"' in page
    assert '<option value="" selected>Anyone</option>' in page
    assert _user_option(page, "caller") != _user_option(page, "dpo")
    assert 'name="username"' not in page


def test_actions_are_shown_in_words(page_client: TestClient, session: Session) -> None:
    _audited(page_client, session)

    page = page_client.get("/audit")

    assert "Opened a patient&#39;s record" in page.text
    assert "Took a call from the queue" in page.text
    assert ">call.taken<" not in page.text


def test_the_nhs_number_filter_is_posted_and_never_read_from_the_address(
    page_client: TestClient, session: Session
) -> None:
    token, patient_id = _audited(page_client, session)

    posted = page_client.post("/audit", data={"csrf_token": token, "nhs_number": "943 476 5919"})
    in_address = page_client.get("/audit", params={"nhs_number": NHS_NUMBER})
    wrong = page_client.post("/audit", data={"csrf_token": token, "nhs_number": "1234567890"})

    assert posted.status_code == 200
    assert "2 entries" in posted.text
    assert in_address.status_code == 422
    assert "Enter the NHS number in the form, not in the web address" in in_address.text
    assert wrong.status_code == 422
    assert '<a href="#nhs_number">Enter a valid NHS number' in wrong.text
    # Looking up one patient's trail is itself recorded, by id only.
    looked_up = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "audit.patient_filtered")
    ).all()
    assert [event.patient_id for event in looked_up] == [patient_id]
    assert NHS_NUMBER not in str(looked_up[0].detail)


def test_filters_by_action_user_and_an_inclusive_date_range(
    page_client: TestClient, session: Session
) -> None:
    token, _ = _audited(page_client, session)

    by_action = page_client.post("/audit", data={"csrf_token": token, "action": "call.taken"})
    caller = _user_option(page_client.get("/audit").text, "caller")
    by_user = page_client.post("/audit", data={"csrf_token": token, "user_id": caller})
    today_only = page_client.post(
        "/audit",
        data={
            "csrf_token": token,
            "user_id": caller,
            **_days("from", TODAY),
            **_days("to", TODAY),
        },
    )
    ten_days = page_client.post(
        "/audit",
        data={
            "csrf_token": token,
            **_days("from", TODAY - timedelta(days=10)),
            **_days("to", TODAY - timedelta(days=10)),
        },
    )

    assert "1 entry" in by_action.text
    assert "2 entries" in by_user.text
    assert "2 entries" in today_only.text  # the "to" day is included
    assert "1 entry" in ten_days.text  # the manager's old read, nothing from today


def test_every_problem_with_the_filters_is_listed_at_once(
    page_client: TestClient, session: Session
) -> None:
    token, _ = _audited(page_client, session)

    response = page_client.post(
        "/audit",
        data={
            "csrf_token": token,
            "nhs_number": "12",
            "action": "made.up",
            **_days("from", TODAY),
            **_days("to", TODAY - timedelta(days=1)),
        },
    )

    assert response.status_code == 422
    for field in ("nhs_number", "action", "to"):
        assert f'<a href="#{field}">' in response.text
    assert "is before the first day" in response.text


def test_the_csv_export_has_the_filtered_entries_and_is_audited(
    page_client: TestClient, session: Session
) -> None:
    token, patient_id = _audited(page_client, session)

    response = page_client.post(
        "/audit/export", data={"csrf_token": token, "nhs_number": NHS_NUMBER}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["action"] for row in rows] == ["Opened a patient's record"] * 2
    assert {row["patient_id"] for row in rows} == {str(patient_id)}
    assert NHS_NUMBER not in response.text
    export = session.scalars(select(AuditEvent).where(AuditEvent.action == "audit.exported")).one()
    assert export.patient_id == patient_id
    assert export.detail is not None
    assert export.detail["rows"] == 2
    assert NHS_NUMBER not in str(export.detail)


def test_the_export_needs_the_csrf_token(page_client: TestClient, session: Session) -> None:
    _audited(page_client, session)

    refused = page_client.post("/audit/export", data={})

    assert refused.status_code == 403
    assert not session.scalars(
        select(AuditEvent).where(AuditEvent.action == "audit.exported")
    ).all()
