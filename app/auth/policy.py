"""The declared access policy: who may call each route (path template and method).

Every route of the application must appear here; `tests/test_access_policy.py` enumerates the
routes of `create_app()` and really calls each one anonymously and as every role, so the
policy and the `require_role` guards on the routes cannot drift apart.

Levels: `anonymous` (no session needed: sign-in, health, Twilio webhooks, which prove their
origin with a signature instead), then the roles in rank order. Navigators see only what a
call needs; analytics, audit and model cards are for managers; user administration and model
activation for admins. `/metrics` takes a bearer token or an admin session.

A route that is not declared here fails a test.
"""

from __future__ import annotations

from typing import Literal

from app.auth.roles import Role

Access = Literal["anonymous", "navigator", "manager", "admin"]

ANONYMOUS: Access = "anonymous"
NAVIGATOR: Access = "navigator"
MANAGER: Access = "manager"
ADMIN: Access = "admin"

# (method, path template) -> lowest level that may call it.
ROUTE_POLICY: dict[tuple[str, str], Access] = {
    # Service and documentation
    ("GET", "/health"): ANONYMOUS,
    ("GET", "/openapi.json"): ANONYMOUS,
    ("GET", "/docs"): ANONYMOUS,
    ("GET", "/docs/oauth2-redirect"): ANONYMOUS,
    ("GET", "/redoc"): ANONYMOUS,
    ("GET", "/metrics"): ADMIN,
    # Signing in and out (the sign-in form is CSRF-bound to its own cookie; signing out
    # needs the session's CSRF token but no role)
    ("GET", "/"): NAVIGATOR,
    ("GET", "/sign-in"): ANONYMOUS,
    ("POST", "/sign-in"): ANONYMOUS,
    ("POST", "/sign-out"): ANONYMOUS,
    ("POST", "/api/auth/session"): ANONYMOUS,
    ("DELETE", "/api/auth/session"): NAVIGATOR,
    ("GET", "/api/auth/me"): NAVIGATOR,
    # Audit log: managers
    ("GET", "/audit"): MANAGER,
    ("POST", "/audit"): MANAGER,
    ("POST", "/audit/export"): MANAGER,
    ("GET", "/api/audit"): MANAGER,
    ("POST", "/api/audit/search"): MANAGER,
    ("POST", "/api/audit/export"): MANAGER,
    # User administration: admins
    ("GET", "/admin/users"): ADMIN,
    ("GET", "/admin/users/new"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}/role"): ADMIN,
    ("GET", "/admin/users/{user_id}/deactivate"): ADMIN,
    ("POST", "/admin/users/{user_id}/deactivate"): ADMIN,
    ("POST", "/admin/users/{user_id}/activate"): ADMIN,
    ("POST", "/admin/users/{user_id}/unlock"): ADMIN,
    # Targeting: the call's effect by subgroup and the queue policy (managers)
    ("GET", "/targeting"): MANAGER,
    ("GET", "/api/targeting/report"): MANAGER,
    ("GET", "/api/targeting/policy"): MANAGER,
    # Booking requests: the booking team (managers)
    ("GET", "/bookings"): MANAGER,
    ("GET", "/bookings.csv"): MANAGER,
    ("POST", "/bookings/{request_id}/withdraw"): MANAGER,
    # Read APIs a call needs
    ("GET", "/api/patients"): NAVIGATOR,
    ("GET", "/api/patients/{patient_id}"): NAVIGATOR,
    ("GET", "/api/appointments"): NAVIGATOR,
    ("GET", "/api/appointments/{appointment_id}"): NAVIGATOR,
    # Calls: navigators work the queue; managers see the overview, build queues, edit scripts
    ("GET", "/api/calls/queue"): NAVIGATOR,
    ("POST", "/api/calls/next"): NAVIGATOR,
    ("GET", "/api/calls/overview"): MANAGER,
    ("POST", "/api/calls/queue/build"): MANAGER,
    ("GET", "/api/calls/documents"): NAVIGATOR,
    ("GET", "/api/calls/documents/{slug}"): NAVIGATOR,
    ("POST", "/api/calls/documents/{slug}"): MANAGER,
    ("GET", "/api/calls/patients/{patient_id}"): NAVIGATOR,
    ("GET", "/api/calls/{call_id}"): NAVIGATOR,
    ("GET", "/api/calls/{call_id}/history"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/attempts"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/outcomes"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/complete"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/heartbeat"): NAVIGATOR,
    ("POST", "/api/calls/tasks/{task_id}/done"): NAVIGATOR,
    ("GET", "/api/calls/tomorrow"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/identity"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/notes"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/release"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/reassign"): MANAGER,
    ("POST", "/api/calls/{call_id}/outcomes/{outcome_id}/undo"): NAVIGATOR,
    ("POST", "/api/calls/{call_id}/corrections"): NAVIGATOR,
    # Calls pages: a navigator's day; managers' overview and script editing
    ("GET", "/queue"): NAVIGATOR,
    ("POST", "/queue/next"): NAVIGATOR,
    ("GET", "/calls/{call_id}"): NAVIGATOR,
    ("POST", "/calls/{call_id}/attempts"): NAVIGATOR,
    ("POST", "/calls/{call_id}/outcomes"): NAVIGATOR,
    ("POST", "/calls/{call_id}/complete"): NAVIGATOR,
    ("GET", "/queue/tomorrow"): NAVIGATOR,
    ("POST", "/calls/{call_id}/identity"): NAVIGATOR,
    ("POST", "/calls/{call_id}/notes"): NAVIGATOR,
    ("POST", "/calls/{call_id}/release"): NAVIGATOR,
    ("POST", "/calls/{call_id}/outcomes/{outcome_id}/undo"): NAVIGATOR,
    ("POST", "/calls/{call_id}/corrections"): NAVIGATOR,
    ("POST", "/manage/calls/reassign"): MANAGER,
    ("GET", "/history"): NAVIGATOR,
    ("GET", "/patients/{patient_id}/history"): NAVIGATOR,
    # Tasks: the team's worklist (navigators and managers)
    ("GET", "/tasks"): NAVIGATOR,
    ("POST", "/tasks/{task_id}/done"): NAVIGATOR,
    ("POST", "/tasks/{task_id}/undo"): NAVIGATOR,
    ("GET", "/api/tasks"): NAVIGATOR,
    ("POST", "/api/tasks/{task_id}/done"): NAVIGATOR,
    ("POST", "/api/tasks/{task_id}/undo"): NAVIGATOR,
    # Patients: find a patient who rang (audited search), log a call, correct a phone
    ("GET", "/patients/search"): NAVIGATOR,
    ("POST", "/patients/{patient_id}/open"): NAVIGATOR,
    ("GET", "/patients/{patient_id}"): NAVIGATOR,
    ("POST", "/patients/{patient_id}/calls"): NAVIGATOR,
    ("POST", "/patients/{patient_id}/phones"): NAVIGATOR,
    ("GET", "/api/patients/search"): NAVIGATOR,
    ("POST", "/api/patients/{patient_id}/open"): NAVIGATOR,
    ("POST", "/api/patients/{patient_id}/calls"): NAVIGATOR,
    ("POST", "/api/patients/{patient_id}/phones"): NAVIGATOR,
    # Account: change my own password
    ("GET", "/account/password"): NAVIGATOR,
    ("POST", "/account/password"): NAVIGATOR,
    ("GET", "/manage/queues"): MANAGER,
    ("GET", "/manage/scripts"): MANAGER,
    ("POST", "/manage/scripts"): MANAGER,
    ("GET", "/manage/scripts/{slug}"): MANAGER,
    ("POST", "/manage/scripts/{slug}"): MANAGER,
    ("GET", "/manage/scripts/{slug}/compare"): MANAGER,
    ("POST", "/manage/scripts/{slug}/revert"): MANAGER,
    # SMS: navigators read a patient's messages; managers see stats and edit templates
    ("GET", "/api/sms/patients/{patient_id}/messages"): NAVIGATOR,
    ("GET", "/api/sms/appointments/{appointment_id}/messages"): NAVIGATOR,
    ("GET", "/api/sms/stats"): MANAGER,
    ("GET", "/api/sms/templates"): MANAGER,
    ("POST", "/api/sms/templates/{kind}/{language}/preview"): MANAGER,
    ("PUT", "/api/sms/templates/{kind}/{language}"): MANAGER,
    ("GET", "/sms"): MANAGER,
    ("GET", "/api/feed/dead-letters"): MANAGER,
    ("POST", "/api/feed/dead-letters/{message_id}/replay"): MANAGER,
    ("POST", "/api/feed/dead-letters/{message_id}/dismiss"): MANAGER,
    ("GET", "/feed"): MANAGER,
    ("POST", "/feed/{message_id}/replay"): MANAGER,
    ("POST", "/feed/{message_id}/dismiss"): MANAGER,
    ("GET", "/sms/templates/{kind}/{language}"): MANAGER,
    ("POST", "/sms/templates/{kind}/{language}"): MANAGER,
    ("POST", "/sms/templates/{kind}/{language}/restore"): MANAGER,
    ("GET", "/sms/templates/{kind}/{language}/compare"): MANAGER,
    # Twilio webhooks: anonymous, authenticated by the X-Twilio-Signature HMAC
    ("POST", "/webhooks/twilio/status"): ANONYMOUS,
    ("POST", "/webhooks/twilio/inbound"): ANONYMOUS,
    # Risk model registry: managers read, admins activate
    ("GET", "/api/risk/models"): MANAGER,
    ("GET", "/api/risk/models/active"): MANAGER,
    ("POST", "/api/risk/models/{version}/activate"): ADMIN,
    ("GET", "/model"): MANAGER,
    ("POST", "/model/{version}/activate"): ADMIN,
    # Analytics: managers
    ("GET", "/dashboard"): MANAGER,
    ("GET", "/analytics"): MANAGER,
    ("GET", "/analytics/board-pack"): MANAGER,
    ("GET", "/analytics/csv/{slug}"): MANAGER,
    ("GET", "/analytics/assets/analytics.css"): ANONYMOUS,
    ("GET", "/api/analytics/dashboard"): MANAGER,
    ("GET", "/api/analytics/dna-rates"): MANAGER,
    ("GET", "/api/analytics/impact"): MANAGER,
    ("GET", "/api/analytics/outcomes"): MANAGER,
    ("GET", "/api/analytics/reach"): MANAGER,
    ("GET", "/api/analytics/data-quality"): MANAGER,
    ("GET", "/api/analytics/tables/{slug}"): MANAGER,
    ("GET", "/api/analytics/csv/{slug}"): MANAGER,
}

ROLE_OF_LEVEL: dict[Access, Role | None] = {
    ANONYMOUS: None,
    NAVIGATOR: Role.NAVIGATOR,
    MANAGER: Role.MANAGER,
    ADMIN: Role.ADMIN,
}


def required_role(method: str, path: str) -> Role | None:
    """The lowest role for a route (None: anonymous). KeyError for an undeclared route."""
    return ROLE_OF_LEVEL[ROUTE_POLICY[(method.upper(), path)]]
