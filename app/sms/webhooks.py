"""Twilio webhooks: status callbacks and inbound replies, signature-checked in a dependency.

The signature is checked against the configured public URL (`settings.public_base_url` plus
the path and query), never the Host header a proxy or attacker controls, and the check fails
closed: no auth token configured, no header, or a wrong signature all get 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from app.clock import ClockDep
from app.db.session import SessionDep
from app.errors import InvalidInputError, PermissionDeniedError
from app.settings import Settings
from app.sms import service

router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"])


def public_url(settings: Settings, request: Request) -> str:
    url = settings.public_base_url.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


async def verified_twilio_form(request: Request) -> dict[str, str]:
    """The webhook's form fields, once `X-Twilio-Signature` is proven to be Twilio's."""
    settings: Settings = request.app.state.settings
    token = settings.twilio_auth_token.get_secret_value()
    signature = request.headers.get("x-twilio-signature", "")
    form = await request.form()
    fields = {key: str(value) for key, value in form.items()}
    if not token or not signature:
        raise PermissionDeniedError("Twilio signature missing or no auth token configured.")
    if not RequestValidator(token).validate(public_url(settings, request), fields, signature):
        raise PermissionDeniedError("Twilio signature does not match.")
    return fields


TwilioForm = Annotated[dict[str, str], Depends(verified_twilio_form)]
DbSession = SessionDep


@router.post("/status", status_code=204)
def status_callback(
    request: Request, form: TwilioForm, session: DbSession, clock: ClockDep
) -> Response:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    status = form.get("MessageStatus") or form.get("SmsStatus") or ""
    if sid and status:
        service.record_status(
            session,
            sid=sid,
            status=status,
            error_code=form.get("ErrorCode") or None,
            idempotency_key=request.query_params.get("key"),
            now=clock.now(),
        )
    return Response(status_code=204)


@router.post("/inbound")
def inbound_message(form: TwilioForm, session: DbSession, clock: ClockDep) -> Response:
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    if not sid:
        raise InvalidInputError("An inbound message needs a MessageSid.")
    outcome = service.handle_inbound(
        session,
        sid=sid,
        from_number=form.get("From", ""),
        to_number=form.get("To", ""),
        body=form.get("Body", ""),
        now=clock.now(),
    )
    twiml = MessagingResponse()
    if outcome.reply:
        twiml.message(outcome.reply)
    return Response(content=str(twiml), media_type="application/xml")
