"""Call-backs from patients: a navigator finds the patient who rang (by any UK phone format,
NHS number or name, audited with a reason), logs the call against them, corrects a number;
bad input gets an NHS error summary naming the field and nothing is saved."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent, User
from app.clock import FixedClock
from app.patients.callbacks import display_phone
from app.patients.tables import Patient, PatientAccessGrant, PatientContact, PatientPhoneChange
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_patient

NHS_NUMBER = "9434765919"  # passes the modulus 11 check


def _navigator(session: Session, client: TestClient) -> tuple[User, str]:
    user = create_user(session, role=Role.NAVIGATOR)
    session.commit()
    return user, sign_in(client, user.username)


def _caller(session: Session) -> Patient:
    patient = create_patient(
        session,
        given_name="Ada",
        family_name="Lovelace",
        mobile_phone="+447700900456",
        landline_phone="+441134960789",
        nhs_number=NHS_NUMBER,
    )
    session.commit()
    return patient


def _found_and_opened(client: TestClient, csrf: str, patient: Patient) -> None:
    found = client.get(
        "/patients/search",
        params={"by": "phone", "q": "07700 900456", "reason": "patient_called_in"},
    )
    assert found.status_code == 200
    opened = client.post(
        f"/patients/{patient.id}/open",
        data={"csrf_token": csrf, "reason": "patient_called_in"},
        follow_redirects=False,
    )
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/patients/{patient.id}?notice=opened"


@pytest.mark.parametrize(
    "typed", ["07700 900456", "+44 7700 900456", "+44 (0)7700 900456", "0044 7700-900456"]
)
def test_a_patient_is_found_by_a_phone_number_in_any_uk_format(
    app_client: TestClient, session: Session, typed: str
) -> None:
    patient = _caller(session)
    create_patient(session, given_name="Someone", family_name="Else")
    session.commit()
    _navigator(session, app_client)

    response = app_client.get(
        "/api/patients/search", params={"by": "phone", "q": typed, "reason": "call_back"}
    )

    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["items"]] == [patient.id]


def test_found_by_nhs_number_or_name_and_the_search_is_audited_without_what_was_typed(
    app_client: TestClient, session: Session
) -> None:
    patient = _caller(session)
    user, _ = _navigator(session, app_client)

    by_nhs = app_client.get(
        "/api/patients/search",
        params={"by": "nhs_number", "q": "943 476 5919", "reason": "patient_called_in"},
    )
    by_name = app_client.get(
        "/api/patients/search",
        params={"by": "name", "q": "ada LOVE", "reason": "patient_called_in"},
    )

    assert [item["id"] for item in by_nhs.json()["items"]] == [patient.id]
    assert [item["id"] for item in by_name.json()["items"]] == [patient.id]
    rows = list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.user_id == user.id, AuditEvent.action == "patient.listed"
            )
        )
    )
    assert [row.detail["filter"] for row in rows if row.detail] == [
        {"search_by": "nhs_number", "reason": "patient_called_in"},
        {"search_by": "name", "reason": "patient_called_in"},
    ]
    assert all(row.patient_id == patient.id for row in rows)
    assert NHS_NUMBER not in str([row.detail for row in rows])
    assert "ada" not in str([row.detail for row in rows]).lower()


def test_a_number_that_is_not_uk_gets_the_error_summary_and_nobody_is_searched(
    app_client: TestClient, session: Session
) -> None:
    _caller(session)
    _navigator(session, app_client)

    page = app_client.get(
        "/patients/search", params={"by": "phone", "q": "+1 202 555 0142", "reason": ""}
    )
    api = app_client.get(
        "/api/patients/search", params={"by": "phone", "q": "12345", "reason": "call_back"}
    )

    assert page.status_code == 422
    assert "nhsuk-error-summary" in page.text
    assert '<a href="#q">Enter a UK phone number' in page.text
    assert '<a href="#reason">Choose why you are looking the patient up</a>' in page.text
    assert api.status_code == 422
    assert session.scalar(select(func.count(PatientAccessGrant.id))) == 0


def test_a_caller_not_found_is_said_plainly_and_nothing_is_opened(
    app_client: TestClient, session: Session
) -> None:
    _caller(session)
    _navigator(session, app_client)

    page = app_client.get(
        "/patients/search",
        params={"by": "phone", "q": "07700 900999", "reason": "patient_called_in"},
    )

    assert page.status_code == 422
    assert "No patient was found with that phone number" in page.text
    assert "nhsuk-error-summary" in page.text
    assert session.scalar(select(func.count(PatientAccessGrant.id))) == 0


def test_a_patient_no_search_of_mine_listed_cannot_be_opened_by_guessing_the_id(
    app_client: TestClient, session: Session
) -> None:
    patient = _caller(session)
    _, csrf = _navigator(session, app_client)

    guessed = app_client.post(
        f"/api/patients/{patient.id}/open",
        json={"reason": "patient_called_in"},
        headers={"X-CSRF-Token": csrf},
    )
    page = app_client.get(f"/patients/{patient.id}")

    assert guessed.status_code == 404
    assert page.status_code == 404
    assert session.scalar(select(func.count(PatientAccessGrant.id))) == 0


def test_the_patient_page_after_a_search_shows_uk_phones_as_tel_links(
    app_client: TestClient, session: Session
) -> None:
    patient = _caller(session)
    _, csrf = _navigator(session, app_client)
    _found_and_opened(app_client, csrf, patient)

    page = app_client.get(f"/patients/{patient.id}?notice=opened")

    assert page.status_code == 200
    assert "Ada Lovelace" in page.text
    assert '<a href="tel:+447700900456">07700 900456</a>' in page.text
    assert '<a href="tel:+441134960789">0113 496 0789</a>' in page.text
    assert "943 476 5919" in page.text
    assert 'data-testid="success-banner"' in page.text


def test_an_inbound_call_is_logged_and_the_history_shows_it(
    app_client: TestClient, session: Session, clock: FixedClock
) -> None:
    patient = _caller(session)
    user, csrf = _navigator(session, app_client)
    _found_and_opened(app_client, csrf, patient)

    logged = app_client.post(
        f"/patients/{patient.id}/calls",
        data={"csrf_token": csrf, "direction": "inbound", "note": "Will bring her carer"},
        follow_redirects=False,
    )
    history = app_client.get(f"/patients/{patient.id}/history")

    assert logged.status_code == 303
    contact = session.scalars(select(PatientContact)).one()
    assert (contact.direction, contact.result, contact.recorded_by) == (
        "inbound",
        "answered",
        user.id,
    )
    assert contact.occurred_at == clock.now()
    assert history.status_code == 200
    assert "The patient rang: answered" in history.text
    assert "Will bring her carer" in history.text
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "patient.call_logged")
    ).one()
    assert audit.patient_id == patient.id
    assert "carer" not in str(audit.detail)


def test_a_call_made_outside_the_app_is_logged_through_the_api(
    app_client: TestClient, session: Session
) -> None:
    patient = _caller(session)
    _, csrf = _navigator(session, app_client)
    _found_and_opened(app_client, csrf, patient)

    response = app_client.post(
        f"/api/patients/{patient.id}/calls",
        json={"direction": "outside_app", "result": "voicemail"},
        headers={"X-CSRF-Token": csrf},
    )

    assert response.status_code == 201, response.text
    assert response.json()["result"] == "voicemail"


def test_a_bad_logged_call_lists_every_problem_and_saves_nothing(
    app_client: TestClient, session: Session
) -> None:
    patient = _caller(session)
    _, csrf = _navigator(session, app_client)
    _found_and_opened(app_client, csrf, patient)

    page = app_client.post(
        f"/patients/{patient.id}/calls",
        data={"csrf_token": csrf, "direction": "outside_app", "time": "25:99"},
    )

    assert page.status_code == 422
    summary = re.search(r'<div class="nhsuk-error-summary".*?</ul>', page.text, re.S)
    assert summary is not None
    assert 'href="#result"' in summary.group(0)
    assert 'href="#time"' in summary.group(0)
    assert session.scalar(select(func.count(PatientContact.id))) == 0


def test_an_inbound_call_against_a_patient_not_found_is_refused_and_nothing_saved(
    app_client: TestClient, session: Session
) -> None:
    stranger = _caller(session)  # never searched for
    _, csrf = _navigator(session, app_client)

    api = app_client.post(
        f"/api/patients/{stranger.id}/calls",
        json={"direction": "inbound"},
        headers={"X-CSRF-Token": csrf},
    )
    missing = app_client.post(
        "/api/patients/999999/calls", json={"direction": "inbound"}, headers={"X-CSRF-Token": csrf}
    )
    page = app_client.post(
        f"/patients/{stranger.id}/calls", data={"csrf_token": csrf, "direction": "inbound"}
    )

    assert api.status_code == 404
    assert missing.status_code == 404
    assert api.json() == missing.json()
    assert page.status_code == 404
    assert "Find the patient first" in page.text
    assert session.scalar(select(func.count(PatientContact.id))) == 0


def test_a_phone_number_is_corrected_with_the_old_value_kept_and_audited(
    app_client: TestClient, session: Session
) -> None:
    patient = _caller(session)
    patient.mobile_phone_invalid = True
    session.commit()
    user, csrf = _navigator(session, app_client)
    _found_and_opened(app_client, csrf, patient)

    response = app_client.post(
        f"/patients/{patient.id}/phones",
        data={"csrf_token": csrf, "phone": "mobile", "number": "+44 (0)7700 900321"},
    )

    assert "The phone number was corrected." in response.text
    assert "07700 900456 (flagged wrong) changed to 07700 900321" in response.text
    session.expire_all()
    stored = session.get_one(Patient, patient.id)
    assert (stored.mobile_phone, stored.mobile_phone_invalid) == ("+447700900321", False)
    change = session.scalars(select(PatientPhoneChange)).one()
    assert (change.old_value, change.old_invalid, change.changed_by) == (
        "+447700900456",
        True,
        user.id,
    )
    audit = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "patient.phone_corrected")
    ).one()
    assert "+44" not in str(audit.detail)


@pytest.mark.parametrize(
    ("phone", "number", "message"),
    [
        ("mobile", "+1 202 555 0142", "Enter a UK phone number"),
        ("mobile", "0113 496 0123", "Enter a UK mobile number, starting 07"),
        ("mobile", "", "Enter the correct phone number"),
        ("", "07700 900111", "Choose which number to correct"),
    ],
)
def test_a_number_that_is_not_a_uk_number_is_refused_at_the_field_and_nothing_saved(
    app_client: TestClient, session: Session, phone: str, number: str, message: str
) -> None:
    patient = _caller(session)
    _, csrf = _navigator(session, app_client)
    _found_and_opened(app_client, csrf, patient)

    page = app_client.post(
        f"/patients/{patient.id}/phones",
        data={"csrf_token": csrf, "phone": phone, "number": number},
    )
    api = app_client.post(
        f"/api/patients/{patient.id}/phones",
        json={"phone": phone, "number": number},
        headers={"X-CSRF-Token": csrf},
    )

    assert page.status_code == 422
    assert "nhsuk-error-summary" in page.text
    assert message in page.text
    assert api.status_code == 422
    session.expire_all()
    assert session.get_one(Patient, patient.id).mobile_phone == "+447700900456"
    assert session.scalar(select(func.count(PatientPhoneChange.id))) == 0


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+447700900123", "07700 900123"),
        ("+441134960123", "0113 496 0123"),
        ("+442079460000", "020 7946 0000"),
        ("+441632960000", "01632 960000"),
        ("+441214960000", "0121 496 0000"),
    ],
)
def test_phones_are_written_the_uk_way(stored: str, shown: str) -> None:
    assert display_phone(stored) == shown
