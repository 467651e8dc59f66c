"""Managers' pages and JSON API: access by role, rendering, CSV downloads and bad input."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.analytics.pages import period_query
from app.analytics.periods import uk_date
from app.auth.roles import Role
from tests.analytics.helpers import (
    EMPTY_PERIOD,
    PERIOD,
    PERIOD_END,
    PERIOD_START,
    create_arm,
)
from tests.auth.helpers import create_user, sign_in

# The API's "to" is the day after the last day; the pages' "to" is the last day, included.
QUERY = f"from={PERIOD_START.isoformat()}&to={PERIOD_END.isoformat()}"
PAGE_QUERY = period_query(PERIOD)


def _programme(session: Session) -> None:
    create_arm(session, arm="call", attended=95, dnas=5, reached_attended=39, reached_dnas=1)
    # Hold-out: 100 appointments, 12 DNAs, four of them in a group too small to report.
    create_arm(session, arm="holdout", attended=85, dnas=11)
    create_arm(session, arm="holdout", attended=3, dnas=1, ethnic_category="N")
    session.commit()


def _manager(session: Session, client: TestClient) -> None:
    create_user(session, role=Role.MANAGER, username="manager1")
    session.commit()
    sign_in(client, "manager1")


def test_manager_sees_the_dashboard_with_charts_and_tables(
    session: Session, app_client: TestClient
) -> None:
    _programme(session)
    _manager(session, app_client)

    page = app_client.get(f"/analytics?{PAGE_QUERY}")

    assert page.status_code == 200
    html = page.text
    assert "7 avoided DNAs" in html
    assert "£700 to £1,120" in html
    # Every chart is an accessible SVG with a title and description, and a table behind it.
    assert html.count('role="img"') >= 4
    assert '<desc id="chart-desc-' in html
    assert "DNA rate by IMD decile (1 = most deprived)" in html
    assert 'id="table-dna-rate-by-imd-decile"' in html
    assert 'id="table-ethnicity-recording-by-clinic"' in html
    # The CSP forbids inline script and style: the page uses neither.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert " style=" not in html
    assert "/analytics/csv/dna-rate-by-ethnic-group?" in html


def test_a_navigator_may_not_open_analytics(session: Session, app_client: TestClient) -> None:
    _programme(session)
    create_user(session, role=Role.NAVIGATOR, username="nav1")
    session.commit()
    sign_in(app_client, "nav1")

    assert app_client.get(f"/analytics?{PAGE_QUERY}").status_code == 403
    assert app_client.get(f"/api/analytics/impact?{QUERY}").status_code == 403
    assert app_client.get(f"/analytics/csv/impact-arms?{PAGE_QUERY}").status_code == 403


def test_the_api_needs_a_signed_in_user(app_client: TestClient) -> None:
    assert app_client.get(f"/api/analytics/dashboard?{QUERY}").status_code == 401


def test_api_gives_the_same_impact_figures(session: Session, app_client: TestClient) -> None:
    _programme(session)
    _manager(session, app_client)

    body = app_client.get(f"/api/analytics/impact?{QUERY}").json()

    assert body["period"]["from"] == PERIOD_START.isoformat()
    assert body["estimate"]["call_arm"]["appointments"] == 100
    assert body["estimate"]["holdout"]["appointments"] == 100
    assert body["estimate"]["avoided_dnas"] == pytest.approx(7.0)
    assert body["per_protocol"]["reached"] == 40
    groups = next(t for t in body["tables"] if t["slug"] == "impact-by-ethnic-group")
    black = next(row for row in groups["rows"] if row["group"] == "Black or Black British")
    assert black["avoided_dnas"] is None
    assert "suppressed" in black["note"]


def test_api_explains_a_missing_estimate_instead_of_a_number(
    session: Session, app_client: TestClient
) -> None:
    create_arm(session, arm="call", attended=90, dnas=10)
    session.commit()
    _manager(session, app_client)

    response = app_client.get(f"/api/analytics/impact?{QUERY}")

    assert response.status_code == 409
    assert "hold-out share was zero" in response.json()["detail"]
    dashboard = app_client.get(f"/api/analytics/dashboard?{QUERY}").json()
    assert dashboard["impact"] is None
    assert "hold-out share was zero" in dashboard["impact_message"]
    page = app_client.get(f"/analytics?{PAGE_QUERY}")
    assert page.status_code == 200
    assert "No impact estimate for this period" in page.text


def test_every_table_downloads_as_csv_with_suppressed_cells_marked(
    session: Session, app_client: TestClient
) -> None:
    _programme(session)
    _manager(session, app_client)

    response = app_client.get(f"/analytics/csv/dna-rate-by-ethnic-group?{PAGE_QUERY}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    by_group = {row["Ethnic group (six groups)"]: row for row in rows}
    assert by_group["White"]["Appointments"] == "196"
    assert by_group["Black or Black British"]["DNA rate"] == "*"
    assert "suppressed" in by_group["Black or Black British"]["Note"]
    api = app_client.get(f"/api/analytics/csv/impact-arms?{QUERY}")
    assert api.status_code == 200
    assert "Call arm (offered a navigator call)" in api.text
    missing = app_client.get(f"/analytics/csv/no-such-table?{PAGE_QUERY}")
    assert missing.status_code == 404


def test_board_pack_is_one_printable_page(session: Session, app_client: TestClient) -> None:
    _programme(session)
    _manager(session, app_client)

    page = app_client.get(f"/analytics/board-pack?{PAGE_QUERY}")

    assert page.status_code == 200
    assert f"{PERIOD.label()} (both days included)" in page.text
    assert '<link rel="stylesheet" href="/analytics/assets/analytics.css">' in page.text
    assert "Impact by ethnic group" in page.text
    css = app_client.get("/analytics/assets/analytics.css")
    assert css.status_code == 200
    assert "@media print" in css.text


def test_a_board_pack_with_no_one_reached_does_not_say_no_group_was_left_behind(
    session: Session, app_client: TestClient
) -> None:
    create_arm(session, arm="call", attended=95, dnas=5)
    create_arm(session, arm="holdout", attended=85, dnas=11)
    session.commit()
    _manager(session, app_client)

    page = app_client.get(f"/analytics/board-pack?{PAGE_QUERY}")

    assert page.status_code == 200
    assert "No call reached anyone in this period" in page.text
    assert "No group was left behind" not in page.text


def test_bad_periods_are_explained_on_the_page(session: Session, app_client: TestClient) -> None:
    _programme(session)
    _manager(session, app_client)

    wrong = app_client.get(f"/analytics?period=custom&from=31/2/{PERIOD_START.year}&to=")
    assert wrong.status_code == 200
    assert "Enter the first day as a real date" in wrong.text
    assert "Enter the last day of the custom range" in wrong.text
    backwards = app_client.get(f"/analytics?from={uk_date(PERIOD_END)}&to={uk_date(PERIOD_START)}")
    assert "is before the first day" in backwards.text
    empty = app_client.get(f"/analytics?{period_query(EMPTY_PERIOD)}")
    assert empty.status_code == 200
    assert f"No appointments start between {EMPTY_PERIOD.label()}" in empty.text
    empty_query = f"from={EMPTY_PERIOD.start}&to={EMPTY_PERIOD.end}"
    api = app_client.get(f"/api/analytics/dashboard?{empty_query}")
    assert api.status_code == 409
    assert "No appointments start between" in api.json()["detail"]
