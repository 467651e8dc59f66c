"""Strict dates everywhere (`app.isodate`): `0`, `1e3` and `2026-1-1` are never a day.

Pydantic reads `0` as 1 January 1970 and Python's `date.fromisoformat` reads `20261124`, so
a mistyped filter answered for the wrong day. The first test enumerates every route of the
app, its parameters, its sub-dependencies' parameters and the fields of its body models, and
fails on any date or date-time that is not `IsoDate`/`IsoDateTime`: a new route cannot
forget. Pages that read their date boxes as text (the analytics and targeting periods, the
audit page's and the rebooking's NHS date inputs) are listed in `PAGE_DATE_FIELDS` and
tested the same way, answered with the NHS error summary instead of a 422.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.calls.queue import build_queue
from app.calls.tables import CallOutcome
from app.clock import FixedClock
from app.db.session import Database
from app.isodate import STRICT_DATE_VALIDATORS, parse_date_parts, parse_iso_date
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.calls.helpers import create_eligible_appointment
from tests.clock import CALENDAR, TODAY
from tests.factories import create_patient

BAD_DATES = ["0", "1e3", "2026-1-1"]
ERROR_SUMMARY = "nhsuk-error-summary"


def _is_strict(metadata: list[Any]) -> bool:
    return any(getattr(item, "func", None) in STRICT_DATE_VALIDATORS for item in metadata)


def date_fields(
    annotation: Any, metadata: list[Any], where: str, seen: set[type]
) -> list[tuple[str, bool]]:
    """(where, strict?) for every date or date-time `annotation` reads, models included."""
    if typing.get_origin(annotation) is typing.Annotated:
        inner, *extra = typing.get_args(annotation)
        return date_fields(inner, [*metadata, *extra], where, seen)
    if annotation in (date, datetime):
        return [(where, _is_strict(metadata))]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in seen:
            return []
        seen.add(annotation)
        return [
            found
            for name, field in annotation.model_fields.items()
            for found in date_fields(field.annotation, field.metadata, f"{where}.{name}", seen)
        ]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) or origin in (list, tuple, set, dict):
        return [
            found
            for argument in typing.get_args(annotation)
            for found in date_fields(argument, metadata, where, seen)
        ]
    return []


def _parameters(dependant: Dependant) -> Iterator[tuple[str, FieldInfo]]:
    for kind in ("path_params", "query_params", "header_params", "cookie_params", "body_params"):
        for parameter in getattr(dependant, kind):
            yield f"{kind.removesuffix('_params')}.{parameter.alias}", parameter.field_info
    for sub in dependant.dependencies:
        yield from _parameters(sub)


def loose_date_parameters(app: FastAPI) -> tuple[list[str], int]:
    """(every loose date parameter as 'METHOD path where', how many date parameters in all)."""
    problems: list[str] = []
    checked = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        label = f"{','.join(sorted(context.methods or []))} {context.path}"
        for where, info in _parameters(route.dependant):
            for field, strict in date_fields(info.annotation, list(info.metadata), where, set()):
                checked += 1
                if not strict:
                    problems.append(f"{label} {field}")
    return problems, checked


@pytest.fixture
def app(settings: Settings, database: Database, clock: FixedClock) -> FastAPI:
    return create_app(settings, database, clock=clock)


def test_every_date_parameter_of_every_route_is_strict(app: FastAPI) -> None:
    problems, _ = loose_date_parameters(app)
    assert not problems, f"date parameters without IsoDate/IsoDateTime: {problems}"


class _ProbeBody(BaseModel):
    when: datetime | None = None


def _probe_query(day: date | None = None) -> None:
    return None


def _probe_body(body: _ProbeBody) -> None:
    return None


def test_the_enumeration_sees_query_and_body_dates() -> None:
    # Guards the guard: a bare `date` query parameter and a `datetime` body field are found.
    probe = FastAPI()
    router = APIRouter()
    router.add_api_route("/probe", _probe_query, methods=["GET"])
    router.add_api_route("/probe", _probe_body, methods=["POST"])
    probe.include_router(router)
    problems, checked = loose_date_parameters(probe)
    assert sorted(problems) == ["GET /probe query.day", "POST /probe body.body.when"]
    assert checked == 2


def test_the_app_has_date_parameters_in_every_family(app: FastAPI) -> None:
    _, checked = loose_date_parameters(app)
    assert checked >= 24  # calls, SMS, analytics (8 routes x 2), audit, appointments, targeting


# Every API family's date parameters: (method, path, where the bad value goes, a good query).
API_DATES = [
    ("GET", "/api/calls/queue", "date", {}),
    ("GET", "/api/calls/overview", "date", {}),
    ("POST", "/api/calls/queue/build", "date", {}),
    ("GET", "/api/sms/stats", "from", {"to": "2026-11-24"}),
    ("GET", "/api/sms/stats", "to", {}),
    ("GET", "/api/analytics/dashboard", "from", {"to": "2026-11-24"}),
    ("GET", "/api/analytics/csv/dna-rate-by-clinic", "to", {"from": "2026-11-01"}),
    ("GET", "/api/audit", "date", {}),
    ("GET", "/api/appointments", "from", {}),
    ("GET", "/api/appointments", "to", {}),
    ("GET", "/api/targeting/report", "from", {}),
    ("GET", "/api/targeting/report", "to", {}),
]


@pytest.fixture
def admin(app: FastAPI, session: Session) -> Iterator[tuple[TestClient, str]]:
    create_user(session, role=Role.ADMIN, username="dates-admin")
    session.commit()
    with TestClient(app) as client:
        yield client, sign_in(client, "dates-admin")


@pytest.mark.parametrize("bad", BAD_DATES)
@pytest.mark.parametrize(("method", "path", "name", "rest"), API_DATES)
def test_api_date_parameters_refuse_non_iso_dates_with_a_422_naming_the_field(
    admin: tuple[TestClient, str],
    method: str,
    path: str,
    name: str,
    rest: dict[str, str],
    bad: str,
) -> None:
    client, csrf = admin
    response = client.request(
        method, path, params={**rest, name: bad}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == f"query.{name}"
    assert "YYYY-MM-DD" in response.json()["errors"][0]["message"]


def test_api_date_parameters_still_read_an_iso_date(admin: tuple[TestClient, str]) -> None:
    client, csrf = admin
    for method, path, name, rest in API_DATES:
        value = "2026-11-01" if name == "from" else "2026-11-24"
        response = client.request(
            method, path, params={**rest, name: value}, headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code != 422, (path, name, response.text)


@pytest.mark.parametrize("bad", [0, "0", "1e3", "2026-1-1", "2026-12-01 14:30", "1700000000"])
def test_a_rebooking_time_in_a_json_body_is_an_iso_date_time(
    admin: tuple[TestClient, str], bad: object
) -> None:
    client, csrf = admin
    response = client.post(
        "/api/calls/999999/outcomes",
        json={"outcomes": [{"kind": "rebooked", "appointment_id": 1, "new_start_at": bad}]},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.outcomes.0.new_start_at"


# --- pages: date boxes read as text, answered with the NHS error summary ------------------

PAGE_DATE_FIELDS = [
    ("/analytics", "from", {"period": "custom", "to": "1/11/2026"}),
    ("/analytics", "to", {"period": "custom", "from": "1/11/2026"}),
    ("/analytics/board-pack", "from", {"period": "custom", "to": "1/11/2026"}),
    ("/targeting", "from", {}),
    ("/targeting", "to", {}),
    ("/sms", "from", {"to": "1/11/2026"}),
    ("/sms", "to", {"from": "1/11/2026"}),
]


@pytest.mark.parametrize("bad", BAD_DATES)
@pytest.mark.parametrize(("path", "name", "rest"), PAGE_DATE_FIELDS)
def test_page_date_fields_refuse_non_iso_dates_with_the_error_summary(
    admin: tuple[TestClient, str], path: str, name: str, rest: dict[str, str], bad: str
) -> None:
    client, _ = admin
    response = client.get(path, params={**rest, name: bad})
    assert ERROR_SUMMARY in response.text, (path, name)
    assert f'href="#{name}"' in response.text


# The audit page's NHS date input: each box on its own, and what `int()` used to accept.
BAD_DATE_BOXES = [
    {"date-day": "0", "date-month": "1", "date-year": "2026"},
    {"date-day": "1", "date-month": "1", "date-year": "1e3"},
    {"date-day": "1", "date-month": "1", "date-year": "2026-1"},
    {"date-day": "1", "date-month": "1", "date-year": "20261"},
    {"date-day": "1", "date-month": "1", "date-year": "1_000"},
    {"date-day": "+1", "date-month": "1", "date-year": "2026"},
    {"date-day": "١", "date-month": "1", "date-year": "2026"},
    {"date-day": "1", "date-month": "1", "date-year": "26"},
]


@pytest.mark.parametrize("boxes", BAD_DATE_BOXES)
def test_the_audit_pages_date_input_refuses_anything_but_a_real_day(
    admin: tuple[TestClient, str], boxes: dict[str, str]
) -> None:
    client, _ = admin
    response = client.get("/audit", params=boxes)
    assert ERROR_SUMMARY in response.text
    assert "Date must be a real date" in response.text


def test_the_audit_page_reads_a_real_day(admin: tuple[TestClient, str]) -> None:
    client, _ = admin
    response = client.get(
        "/audit", params={"date-day": "1", "date-month": "11", "date-year": "2026"}
    )
    assert response.status_code == 200
    assert ERROR_SUMMARY not in response.text


@pytest.mark.parametrize("boxes", BAD_DATE_BOXES)
def test_a_rebooking_date_typed_on_the_call_screen_must_be_a_real_day(
    app: FastAPI, session: Session, settings: Settings, clock: FixedClock, boxes: dict[str, str]
) -> None:
    start = CALENDAR.at(TODAY + timedelta(days=7), time(12))
    appointment = create_eligible_appointment(
        session, patient=create_patient(session), start_at=start
    )
    build_queue(
        session, settings.model_copy(update={"calls_holdout_share": 0.0}), TODAY, now=clock.now()
    )
    create_user(session, role=Role.NAVIGATOR, username="dates-navigator")
    session.commit()
    with TestClient(app) as client:
        csrf = sign_in(client, "dates-navigator")
        taken = client.post("/queue/next", data={"csrf_token": csrf}, follow_redirects=False)
        call_path = taken.headers["location"]
        client.post(
            f"{call_path}/attempts",
            data={"csrf_token": csrf, "result": "answered", "channel": "mobile"},
        )
        prefix = f"rebook-{appointment.id}"
        response = client.post(
            f"{call_path}/outcomes",
            data={
                "csrf_token": csrf,
                f"decision-{appointment.id}": "rebooked",
                f"{prefix}-day": boxes["date-day"],
                f"{prefix}-month": boxes["date-month"],
                f"{prefix}-year": boxes["date-year"],
                f"{prefix}-time": "10:00",
            },
        )
    assert response.status_code == 422
    assert ERROR_SUMMARY in response.text
    assert f'href="#{prefix}"' in response.text
    assert session.scalar(select(func.count(CallOutcome.id))) == 0


@pytest.mark.parametrize(
    "bad", [*BAD_DATES, "20261124", "2026-W48-2", " 2026-11-24", "２０２６-11-24"]
)
def test_the_shared_parsers_read_only_yyyy_mm_dd(bad: str) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_iso_date(bad)
    assert parse_iso_date("2026-11-24") == date(2026, 11, 24)
    assert parse_date_parts("24", "11", "2026") == date(2026, 11, 24)
    assert parse_date_parts("1", "2", "2026") == date(2026, 2, 1)


@pytest.mark.parametrize("bad", BAD_DATES)
def test_the_analytics_csv_link_refuses_a_non_iso_date(
    admin: tuple[TestClient, str], bad: str
) -> None:
    client, _ = admin
    response = client.get(
        "/analytics/csv/dna-rate-by-clinic",
        params={"period": "custom", "from": bad, "to": "1/11/2026"},
    )
    assert response.status_code == 404  # the link's period is refused, as on the page
    assert "text/csv" not in response.headers.get("content-type", "")
    assert "real date" in response.text


# --- the command line: the same rule for every date option ---------------------------------

CLI_DATES = [
    ["queue", "build", "--date"],
    ["sms", "schedule", "--date"],
    ["train", "--as-of"],
    ["score", "--from"],
    ["report", "impact", "--to", "2026-11-24", "--from"],
    ["report", "targeting", "--from"],
    ["synth", "--out", "unused", "--today"],
]


@pytest.mark.parametrize("bad", BAD_DATES)
@pytest.mark.parametrize("command", CLI_DATES, ids=[" ".join(c[:2]) for c in CLI_DATES])
def test_command_line_date_options_refuse_non_iso_dates(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, command: list[str], bad: str
) -> None:
    from typer.testing import CliRunner

    from app.cli import app as cli
    from app.settings import get_settings

    monkeypatch.setenv("NAVIGATOR_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("NAVIGATOR_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, [*command, bad])
    finally:
        get_settings.cache_clear()
    assert result.exit_code != 0, result.output
    assert "2026-" in result.output or "YYYY-MM-DD" in result.output  # says what a date is
