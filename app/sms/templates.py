"""Message texts: built-in defaults per kind and language, rendering, and placeholder rules.

Templates live in `sms_templates` (seeded from the defaults below, edited as new versions);
the latest version of (kind, language) is used, then the English one. Placeholders are
Python format fields from a fixed list, checked when a template is saved. Replies ask for
numbers, never for words such as CANCEL or STOP that Twilio treats as opt-out keywords.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime

from app.localtime import TrustCalendar
from app.reference.codes import specialty_name
from app.sms.tables import MessageKind

PLACEHOLDERS = frozenset({"date", "time", "site", "what", "reply"})
DEFAULT_LANGUAGE = "en"
SENSITIVE_WHAT = "your hospital appointment"

# English texts. Every text keeps clear of clinical detail beyond the specialty name, and
# `{what}` drops even that for clinics marked sensitive.
_EN = {
    MessageKind.REMINDER: (
        "Reminder: {what} is on {date} at {time} at {site}. "
        "Reply 1 to confirm, 2 to cancel, 3 to rearrange."
    ),
    MessageKind.CONFIRM_REBOOKED: (
        "Your appointment has been rearranged: it is now on {date} at {time} at {site}. "
        "Reply 2 to cancel or 3 to rearrange."
    ),
    MessageKind.CONFIRM_SUPPORT: (
        "We have arranged the support you asked for at {what} on {date} at {time} at {site}."
    ),
    MessageKind.CONFIRM_CANCELLED: (
        "As you asked, {what} on {date} at {time} has been cancelled. Reply 3 to rearrange."
    ),
    MessageKind.REPLY_ACK: "Thank you, we have your reply. A member of staff will call if needed.",
    MessageKind.HELP: (
        "Outpatient reminders. Reply 1 to confirm, 2 to cancel, 3 to rearrange. "
        "Reply STOP to stop texts."
    ),
}

# For review by a qualified translator: these Gujarati, Polish and Punjabi (Gurmukhi) texts
# are working drafts, and carry no clinic or specialty detail at all.
_GU = {
    MessageKind.REMINDER: (
        "યાદ અપાવવું: તમારી હોસ્પિટલ એપોઇન્ટમેન્ટ {date} ના રોજ {time} વાગ્યે {site} ખાતે છે. "
        "પુષ્ટિ માટે 1, રદ કરવા 2, ફેરફાર માટે 3 જવાબ આપો."
    ),
    MessageKind.CONFIRM_REBOOKED: (
        "તમારી એપોઇન્ટમેન્ટ બદલાઈ છે: હવે {date} ના રોજ {time} વાગ્યે {site} ખાતે. "
        "રદ કરવા 2, ફેરફાર માટે 3 જવાબ આપો."
    ),
    MessageKind.REPLY_ACK: "આભાર, અમને તમારો જવાબ મળ્યો છે.",
}
_PL = {
    MessageKind.REMINDER: (
        "Przypomnienie: wizyta w szpitalu {date} o godz. {time}, {site}. "
        "Odpowiedz 1, aby potwierdzić, 2, aby odwołać, 3, aby zmienić termin."
    ),
    MessageKind.CONFIRM_REBOOKED: (
        "Termin wizyty zmieniono na {date}, godz. {time}, {site}. "
        "Odpowiedz 2, aby odwołać, 3, aby zmienić termin."
    ),
    MessageKind.CONFIRM_SUPPORT: (
        "Zorganizowaliśmy pomoc, o którą prosiłeś/aś, na wizytę {date} o godz. {time}, {site}."
    ),
    MessageKind.CONFIRM_CANCELLED: (
        "Zgodnie z prośbą wizyta {date} o godz. {time} została odwołana. "
        "Odpowiedz 3, aby umówić nowy termin."
    ),
    MessageKind.REPLY_ACK: "Dziękujemy, otrzymaliśmy odpowiedź.",
    MessageKind.HELP: (
        "Przypomnienia o wizytach. Odpowiedz 1 (potwierdź), 2 (odwołaj), 3 (zmień termin). "
        "STOP, aby zrezygnować."
    ),
}
_PA = {
    MessageKind.REMINDER: (
        "ਯਾਦ-ਦਹਾਨੀ: ਤੁਹਾਡੀ ਹਸਪਤਾਲ ਮੁਲਾਕਾਤ {date} ਨੂੰ {time} ਵਜੇ {site} ਵਿਖੇ ਹੈ। "
        "ਪੁਸ਼ਟੀ ਲਈ 1, ਰੱਦ ਕਰਨ ਲਈ 2, ਬਦਲਣ ਲਈ 3 ਜਵਾਬ ਦਿਓ।"
    ),
    MessageKind.REPLY_ACK: "ਧੰਨਵਾਦ, ਸਾਨੂੰ ਤੁਹਾਡਾ ਜਵਾਬ ਮਿਲ ਗਿਆ ਹੈ।",
}

DEFAULT_TEMPLATES: dict[tuple[str, str], str] = {
    (str(kind), language): body
    for language, texts in (("en", _EN), ("gu", _GU), ("pl", _PL), ("pa", _PA))
    for kind, body in texts.items()
}
LANGUAGES = {"en": "English", "gu": "Gujarati", "pl": "Polish", "pa": "Punjabi"}


@dataclass(frozen=True)
class AppointmentFacts:
    """What a message may say about an appointment (nothing else reaches the text)."""

    start_at: datetime
    site: str | None
    specialty_code: str | None
    sensitive: bool


def placeholder_problems(body: str) -> list[str]:
    """Why a template body cannot be saved (empty list when it can)."""
    problems: list[str] = []
    if not body.strip():
        problems.append("The text must not be empty.")
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(body) if name is not None}
    except ValueError as error:
        return [*problems, f"The text has an unbalanced brace: {error}."]
    unknown = sorted(name for name in fields if name not in PLACEHOLDERS)
    if unknown:
        allowed = ", ".join("{" + name + "}" for name in sorted(PLACEHOLDERS))
        problems.append(f"Unknown placeholders {unknown}; use only {allowed}.")
    return problems


def template_values(facts: AppointmentFacts, calendar: TrustCalendar) -> dict[str, str]:
    local = calendar.local(facts.start_at)
    what = (
        SENSITIVE_WHAT
        if facts.sensitive or not facts.specialty_code
        else f"your {specialty_name(facts.specialty_code)} appointment"
    )
    return {
        "date": f"{local:%a} {local.day} {local:%b %Y}",
        "time": f"{local:%H:%M}",
        "site": facts.site or "the hospital",
        "what": what,
        "reply": "1, 2 or 3",
    }


def render(body: str, values: dict[str, str]) -> str:
    return body.format(**values)


def example_values() -> dict[str, str]:
    """Values for previews while editing: a plausible appointment, clearly an example."""
    return {
        "date": "Tue 1 Dec 2026",
        "time": "09:30",
        "site": "Leicester Royal Infirmary",
        "what": "your Respiratory medicine appointment",
        "reply": "1, 2 or 3",
    }
