"""The OpenAPI document with the error answers every operation can really give.

FastAPI documents only 200 and 422. Domain errors (`app.errors`) answer 400, 404 and 409,
and an unreachable database 503, with `{"detail", "code", "errors"?}` from any operation;
guarded operations (per `app.auth.policy`) also answer 401 and 403, webhooks 403 for a bad
signature; signing in answers 401 and 429, patient reads 429 (bulk-read limit), bodies
413 past their limit; 422 is either FastAPI's validation body or a domain
error. Documenting them lets clients and the schemathesis fuzz tests hold the API to its
schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.auth.policy import ROUTE_POLICY

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
DESCRIPTIONS = {
    "400": "The request could not be carried out",
    "401": "Not signed in (or the credentials were wrong)",
    "403": "The role does not allow this, or the CSRF token is missing or wrong",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "422": "The request or a value in it is not valid",
    "413": "The request body is larger than this route accepts",
    "429": "Too many attempts or reads; wait the Retry-After seconds and try again",
    "503": "The database is briefly unreachable; retry after the Retry-After seconds",
}
EVERY_OPERATION = ("400", "404", "409", "503")
GUARDED = ("401", "403")
SIGN_IN = ("401", "429")
PATIENT_READ_PREFIXES = ("/api/patients", "/api/appointments")


def _error_response(status: str) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def add_error_responses(document: dict[str, Any]) -> dict[str, Any]:
    document.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            statuses = list(EVERY_OPERATION)
            level = ROUTE_POLICY.get((method.upper(), path))
            if level is not None and level != "anonymous":
                statuses.extend(GUARDED)
            if (method.upper(), path) == ("POST", "/api/auth/session"):
                statuses.extend(SIGN_IN)
            if path.startswith("/webhooks/"):
                statuses.append("403")  # a missing or wrong X-Twilio-Signature
            if method.upper() in {"POST", "PUT", "PATCH"}:
                statuses.append("413")  # app.asgi.BodyLimitMiddleware
            if path.startswith(PATIENT_READ_PREFIXES) and method.upper() == "GET":
                statuses.append("429")  # app.auth.reads: the per-user bulk-read limit
            responses = operation.setdefault("responses", {})
            for status in statuses:
                responses.setdefault(status, _error_response(status))
            _allow_domain_422(responses)
    return document


def _allow_domain_422(responses: dict[str, Any]) -> None:
    """422 is FastAPI's request validation or a domain InvalidInputError: document both."""
    schema = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        responses["422"] = _error_response("422")
        return
    if "anyOf" not in schema:
        responses["422"]["content"]["application/json"]["schema"] = {
            "anyOf": [schema, {"$ref": "#/components/schemas/Error"}]
        }


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_error_responses(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
