"""Schemathesis fuzzing of the JSON API, signed in as each role, on the in-process ASGI app.

Every operation of the OpenAPI schema gets a bounded, derandomised set of generated requests
(`MAX_EXAMPLES`, valid and invalid data); no answer may be a 5xx and every answer must match
its documented status codes, content type and schema. What it found is kept as plain
regression tests in `tests/fuzz/test_regressions.py`.

One pytest test per operation, driven by hypothesis directly (schemathesis' own pytest
plugin does not run under this pytest version).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.orm import Session

from app.auth.dependencies import CSRF_HEADER, SESSION_COOKIE
from app.auth.policy import required_role
from app.auth.roles import Role
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.auth.helpers import create_user, sign_in
from tests.factories import create_appointment

# 15 per operation; the moved-clock runs of scripts/test.sh send the first few of the same
# (derandomised) examples, since those runs are about dates, not inputs.
MAX_EXAMPLES = int(os.environ.get("NAVIGATOR_FUZZ_EXAMPLES", "15"))
# Signing out ends the session every other example uses; the auth tests cover it.
SKIPPED = {("DELETE", "/api/auth/session")}
# Operations whose schema-valid input can still break a domain rule, answered 422 with the
# documented error body: a document slug must name a script or SOP and its body must not be
# blank, an attempt's channel must fit its result, an identity check needs an answered attempt,
# a note must not be blank, a call is reassigned only to a navigator, a template kind and
# language must exist, an analytics period needs both ends in order and a table slug must name
# a table.
# Schemathesis' "valid data must be accepted" check does not apply to them; every other
# check does.
DOMAIN_RULES = {
    ("POST", "/api/calls/documents/{slug}"),
    ("POST", "/api/calls/{call_id}/attempts"),
    ("POST", "/api/calls/{call_id}/outcomes"),
    ("POST", "/api/calls/{call_id}/identity"),
    ("POST", "/api/calls/{call_id}/notes"),
    ("POST", "/api/calls/{call_id}/reassign"),
    ("POST", "/api/calls/{call_id}/corrections"),
    ("PUT", "/api/sms/templates/{kind}/{language}"),
    ("POST", "/api/sms/templates/{kind}/{language}/preview"),
    ("GET", "/api/analytics/dashboard"),
    ("GET", "/api/analytics/dna-rates"),
    ("GET", "/api/analytics/impact"),
    ("GET", "/api/analytics/outcomes"),
    ("GET", "/api/analytics/reach"),
    ("GET", "/api/analytics/data-quality"),
    ("GET", "/api/analytics/tables/{slug}"),
    ("GET", "/api/analytics/csv/{slug}"),
    ("GET", "/api/targeting/report"),  # the period must end after it starts
    # A search needs a UK phone, a valid NHS number or a name, and a known reason; a logged
    # call a known direction and result; a corrected number a UK number.
    ("GET", "/api/patients/search"),
    ("POST", "/api/patients/{patient_id}/calls"),
    ("POST", "/api/patients/{patient_id}/phones"),
    ("POST", "/api/patients/{patient_id}/open"),
    # An audit search's last day may not be before its first, a user id must name an account
    # and an NHS number must pass its check digit and belong to a patient (and never come in
    # the web address).
    ("GET", "/api/audit"),
    ("POST", "/api/audit/search"),
    ("POST", "/api/audit/export"),
}


# The schema, generated once: FastAPI takes a third of a second to build it for each new app,
# which was half the fuzz's time. Each test's app serves this same document (checked below).
SCHEMA = create_app(Settings(_env_file=None)).openapi()


def schema_operations() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in SCHEMA["paths"].items()
        for method in item
        if (method.upper(), path) not in SKIPPED
    )


OPERATIONS = schema_operations()


def reachable(role: Role, method: str, path: str) -> bool:
    needed = required_role(method, path)
    return needed is None or role.includes(needed)


# An authenticated pass per role over the operations that role may call (below its rank
# each is a documented 403, which the access matrix already checks).
ROLE_OPERATIONS = [
    (role, method, path)
    for role in Role
    for method, path in OPERATIONS
    if reachable(role, method, path)
]


@pytest.fixture
def fuzz_role(request: pytest.FixtureRequest) -> Role:
    role: Role = getattr(request, "param", Role.ADMIN)
    return role


@pytest.fixture
def fuzz_app(settings: Settings, database: Database, session: Session, fuzz_role: Role) -> FastAPI:
    # A little data so reads return real rows, not only empty pages and 404s.
    for _ in range(3):
        create_appointment(session)
    create_user(session, role=fuzz_role, username=f"fuzz-{fuzz_role.value}")
    session.commit()
    app = create_app(settings.model_copy(update={"login_failure_delay_ms": 0}), database)
    app.openapi_schema = copy.deepcopy(SCHEMA)
    return app


@pytest.fixture
def fuzz_headers(fuzz_app: FastAPI, fuzz_role: Role) -> dict[str, str]:
    with TestClient(fuzz_app) as client:
        csrf = sign_in(client, f"fuzz-{fuzz_role.value}")
        token = client.cookies.get(SESSION_COOKIE)
    return {"Cookie": f"{SESSION_COOKIE}={token}", CSRF_HEADER: csrf}


def test_every_schema_operation_is_fuzzed(settings: Settings, database: Database) -> None:
    assert len(OPERATIONS) >= 8
    # The fuzzed apps serve the schema generated once above: the one a test app builds itself.
    assert create_app(settings, database).openapi() == SCHEMA


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fuzz_role", "method", "path"),
    ROLE_OPERATIONS,
    indirect=["fuzz_role"],
    ids=[f"{role.value}-{method}-{path}" for role, method, path in ROLE_OPERATIONS],
)
def test_the_api_never_fails_and_answers_as_documented(
    fuzz_app: FastAPI,
    fuzz_headers: dict[str, str],
    fuzz_role: Role,
    method: str,
    path: str,
    record_property: Callable[[str, object], None],
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operation = schema[path][method]
    examples = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        examples.append(1)
        excluded = [positive_data_acceptance] if (method, path) in DOMAIN_RULES else None
        case.call_and_validate(headers=fuzz_headers, excluded_checks=excluded)

    run()
    record_property("examples", len(examples))  # summed into the README's figures
    assert examples
