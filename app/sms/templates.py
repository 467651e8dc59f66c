"""Message texts: built-in defaults per kind and language, rendering, and placeholder rules.

Templates live in `sms_templates` (seeded from the defaults below, edited as new versions);
the latest version of (kind, language) is used, then the English one. Placeholders are
Python format fields from a fixed list, checked when a template is saved. Replies ask for
numbers, never for words such as CANCEL or STOP that Twilio treats as opt-out keywords.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date, datetime

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

# NEEDS A QUALIFIED TRANSLATOR'S CHECK before live use: the Gujarati, Polish and Punjabi
# (Gurmukhi) texts below, and their day and month names in `DATE_WORDS`, are working drafts
# written without a qualified translator. They carry no clinic or specialty detail at all.
# `NEEDS_TRANSLATOR_CHECK` names them, and the SMS page says so beside each.
_GU = {
    MessageKind.REMINDER: (
        "યાદ અપાવવું: તમારી હોસ્પિટલ એપોઇન્ટમેન્ટ {date} ના રોજ {time} વાગ્યે {site} ખાતે છે. "
        "પુષ્ટિ માટે 1, રદ કરવા 2, ફેરફાર માટે 3 જવાબ આપો."
    ),
    MessageKind.CONFIRM_REBOOKED: (
        "તમારી એપોઇન્ટમેન્ટ બદલાઈ છે: હવે {date} ના રોજ {time} વાગ્યે {site} ખાતે. "
        "રદ કરવા 2, ફેરફાર માટે 3 જવાબ આપો."
    ),
    MessageKind.CONFIRM_SUPPORT: (
        "તમે માંગેલી મદદ તમારી હોસ્પિટલ એપોઇન્ટમેન્ટ માટે ગોઠવી દીધી છે: "
        "{date} ના રોજ {time} વાગ્યે {site} ખાતે."
    ),
    MessageKind.CONFIRM_CANCELLED: (
        "તમારી વિનંતી મુજબ {date} ના રોજ {time} વાગ્યેની તમારી હોસ્પિટલ એપોઇન્ટમેન્ટ રદ કરી છે. "
        "નવી તારીખ માટે 3 જવાબ આપો."
    ),
    MessageKind.REPLY_ACK: "આભાર, અમને તમારો જવાબ મળ્યો છે.",
    MessageKind.HELP: (
        "હોસ્પિટલ એપોઇન્ટમેન્ટના સંદેશા. પુષ્ટિ માટે 1, રદ કરવા 2, ફેરફાર માટે 3 જવાબ આપો. "
        "સંદેશા બંધ કરવા STOP જવાબ આપો."
    ),
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
    MessageKind.CONFIRM_REBOOKED: (
        "ਤੁਹਾਡੀ ਮੁਲਾਕਾਤ ਬਦਲ ਦਿੱਤੀ ਗਈ ਹੈ: ਹੁਣ {date} ਨੂੰ {time} ਵਜੇ {site} ਵਿਖੇ। "
        "ਰੱਦ ਕਰਨ ਲਈ 2, ਬਦਲਣ ਲਈ 3 ਜਵਾਬ ਦਿਓ।"
    ),
    MessageKind.CONFIRM_SUPPORT: (
        "ਤੁਹਾਡੀ ਮੰਗੀ ਹੋਈ ਮਦਦ ਦਾ ਪ੍ਰਬੰਧ ਤੁਹਾਡੀ ਹਸਪਤਾਲ ਮੁਲਾਕਾਤ ਲਈ ਕਰ ਦਿੱਤਾ ਗਿਆ ਹੈ: "
        "{date} ਨੂੰ {time} ਵਜੇ {site} ਵਿਖੇ।"
    ),
    MessageKind.CONFIRM_CANCELLED: (
        "ਤੁਹਾਡੀ ਬੇਨਤੀ ਅਨੁਸਾਰ {date} ਨੂੰ {time} ਵਜੇ ਦੀ ਤੁਹਾਡੀ ਹਸਪਤਾਲ ਮੁਲਾਕਾਤ ਰੱਦ ਕਰ ਦਿੱਤੀ ਗਈ ਹੈ। "
        "ਨਵੀਂ ਮੁਲਾਕਾਤ ਲਈ 3 ਜਵਾਬ ਦਿਓ।"
    ),
    MessageKind.REPLY_ACK: "ਧੰਨਵਾਦ, ਸਾਨੂੰ ਤੁਹਾਡਾ ਜਵਾਬ ਮਿਲ ਗਿਆ ਹੈ।",
    MessageKind.HELP: (
        "ਹਸਪਤਾਲ ਮੁਲਾਕਾਤਾਂ ਦੇ ਸੁਨੇਹੇ। ਪੁਸ਼ਟੀ ਲਈ 1, ਰੱਦ ਕਰਨ ਲਈ 2, ਬਦਲਣ ਲਈ 3 ਜਵਾਬ ਦਿਓ। "
        "ਸੁਨੇਹੇ ਬੰਦ ਕਰਨ ਲਈ STOP ਜਵਾਬ ਦਿਓ।"
    ),
}
NEEDS_TRANSLATOR_CHECK = frozenset({"gu", "pl", "pa"})


@dataclass(frozen=True)
class DateWords:
    """How a language writes an appointment's day: weekday names Monday first, month names
    January first (in the form a date uses, e.g. Polish genitive "grudnia"), and the order."""

    weekdays: tuple[str, ...]
    months: tuple[str, ...]
    pattern: str  # fields: weekday, day, month, year

    def format(self, day: date) -> str:
        return self.pattern.format(
            weekday=self.weekdays[day.weekday()],
            day=day.day,
            month=self.months[day.month - 1],
            year=day.year,
        )


DATE_WORDS: dict[str, DateWords] = {
    "en": DateWords(
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        "{weekday} {day} {month} {year}",
    ),
    "pl": DateWords(
        ("poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela"),
        (
            "stycznia",
            "lutego",
            "marca",
            "kwietnia",
            "maja",
            "czerwca",
            "lipca",
            "sierpnia",
            "września",
            "października",
            "listopada",
            "grudnia",
        ),
        "{weekday}, {day} {month} {year}",
    ),
    "gu": DateWords(
        ("સોમવાર", "મંગળવાર", "બુધવાર", "ગુરુવાર", "શુક્રવાર", "શનિવાર", "રવિવાર"),
        (
            "જાન્યુઆરી",
            "ફેબ્રુઆરી",
            "માર્ચ",
            "એપ્રિલ",
            "મે",
            "જૂન",
            "જુલાઈ",
            "ઑગસ્ટ",
            "સપ્ટેમ્બર",
            "ઑક્ટોબર",
            "નવેમ્બર",
            "ડિસેમ્બર",
        ),
        "{weekday}, {day} {month} {year}",
    ),
    "pa": DateWords(
        ("ਸੋਮਵਾਰ", "ਮੰਗਲਵਾਰ", "ਬੁੱਧਵਾਰ", "ਵੀਰਵਾਰ", "ਸ਼ੁੱਕਰਵਾਰ", "ਸ਼ਨਿੱਚਰਵਾਰ", "ਐਤਵਾਰ"),
        (
            "ਜਨਵਰੀ",
            "ਫ਼ਰਵਰੀ",
            "ਮਾਰਚ",
            "ਅਪ੍ਰੈਲ",
            "ਮਈ",
            "ਜੂਨ",
            "ਜੁਲਾਈ",
            "ਅਗਸਤ",
            "ਸਤੰਬਰ",
            "ਅਕਤੂਬਰ",
            "ਨਵੰਬਰ",
            "ਦਸੰਬਰ",
        ),
        "{weekday}, {day} {month} {year}",
    ),
}


def date_in(language: str, day: date) -> str:
    """The day in the language's own words (English for a language without its own)."""
    return DATE_WORDS.get(language, DATE_WORDS[DEFAULT_LANGUAGE]).format(day)


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
    """Every reason a template body cannot be saved, all at once (empty list when it can)."""
    problems: list[str] = []
    if not body.strip():
        problems.append("Enter the message text.")
    allowed = ", ".join("{" + name + "}" for name in sorted(PLACEHOLDERS))
    fields: list[tuple[str, str, str | None]] = []
    try:
        for _, name, spec, conversion in string.Formatter().parse(body):
            if name is not None:
                fields.append((name, spec or "", conversion))
    except ValueError:
        problems.append(
            "The text has a { or } without its partner: write placeholders such as {date} in full."
        )
    seen: set[str] = set()
    for name, spec, conversion in fields:
        shown = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if shown in seen:
            continue
        seen.add(shown)
        if not name:
            problems.append(f"Empty braces {{}} are not a placeholder: use only {allowed}.")
        elif name not in PLACEHOLDERS:
            problems.append(f"{shown} is not a placeholder: use only {allowed}.")
        elif spec or conversion:
            problems.append(f"Write {shown} as {{{name}}}, with nothing after the name.")
    return problems


def template_values(
    facts: AppointmentFacts, calendar: TrustCalendar, language: str = DEFAULT_LANGUAGE
) -> dict[str, str]:
    """The placeholders' values for one appointment, the date in the text's language."""
    local = calendar.local(facts.start_at)
    what = (
        SENSITIVE_WHAT
        if facts.sensitive or not facts.specialty_code
        else f"your {specialty_name(facts.specialty_code)} appointment"
    )
    return {
        "date": date_in(language, local.date()),
        "time": f"{local:%H:%M}",
        "site": facts.site or "the hospital",
        "what": what,
        "reply": "1, 2 or 3",
    }


def render(body: str, values: dict[str, str]) -> str:
    return body.format(**values)


def example_values(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """Values for previews while editing: a plausible appointment, clearly an example."""
    return {
        "date": date_in(language, date(2026, 12, 1)),
        "time": "09:30",
        "site": "Leicester Royal Infirmary",
        "what": "your Respiratory medicine appointment",
        "reply": "1, 2 or 3",
    }
