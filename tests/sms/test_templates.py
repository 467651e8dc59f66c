"""Message texts: languages, fallback, sensitive clinics, reply words, versioned edits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.errors import InvalidInputError
from app.localtime import TrustCalendar
from app.sms import service
from app.sms.tables import MessageKind, SmsTemplate
from app.sms.templates import (
    DATE_WORDS,
    DEFAULT_TEMPLATES,
    LANGUAGES,
    AppointmentFacts,
    placeholder_problems,
    render,
    template_values,
)

LONDON = TrustCalendar("Europe/London")


def test_every_default_renders_and_never_asks_patients_to_reply_cancel_or_stop_words() -> None:
    facts = AppointmentFacts(datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "LRI", "340", False)
    for (kind, _language), body in DEFAULT_TEMPLATES.items():
        text = render(body, template_values(facts, LONDON))
        if kind != "help":
            assert "STOP" not in text.upper().split()
        assert "CANCEL" not in text  # Twilio would treat a reply of CANCEL as an opt-out


def test_reminder_gives_local_time_across_the_clock_change() -> None:
    summer = AppointmentFacts(datetime(2026, 7, 1, 8, 30, tzinfo=UTC), "LRI", "120", False)
    winter = AppointmentFacts(datetime(2026, 12, 1, 8, 30, tzinfo=UTC), "LRI", "120", False)
    assert template_values(summer, LONDON)["time"] == "09:30"
    assert template_values(winter, LONDON)["time"] == "08:30"
    assert template_values(winter, LONDON)["date"] == "Tue 1 Dec 2026"


def test_sensitive_clinics_get_no_specialty_in_the_text() -> None:
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    open_clinic = template_values(AppointmentFacts(at, "LRI", "502", False), LONDON)
    sensitive = template_values(AppointmentFacts(at, "LRI", "502", True), LONDON)
    assert "Gynaecology" in open_clinic["what"]
    assert sensitive["what"] == "your hospital appointment"


def test_patient_language_is_used_with_english_fallback(session: Session) -> None:
    templates = service.current_templates(session)
    assert service.pick_template(templates, "reminder", "pl")[2] == "pl"
    assert service.pick_template(templates, "reminder", "gu")[2] == "gu"
    # No Somali text yet: English is used.
    assert service.pick_template(templates, "reminder", "so")[2] == "en"
    assert service.pick_template(templates, "help", "gu")[2] == "gu"


def test_edits_are_new_versions_and_the_latest_is_used(session: Session, clock: FixedClock) -> None:
    assert service.seed_default_templates(session, now=clock.now()) == len(DEFAULT_TEMPLATES)
    assert service.seed_default_templates(session, now=clock.now()) == 0
    edited = service.save_template(
        session,
        kind="reminder",
        language="en",
        body="See you {date} at {time}.",
        user_id=7,
        now=clock.now(),
    )
    assert edited.version == 2
    body, version, _ = service.pick_template(service.current_templates(session), "reminder", "en")
    assert (body, version) == ("See you {date} at {time}.", 2)


def test_saving_the_current_text_again_makes_no_version(
    session: Session, clock: FixedClock
) -> None:
    first = service.save_template(
        session, kind="reminder", language="en", body="See you {date}.", user_id=7, now=clock.now()
    )
    # A browser sends the same text with CRLF line endings and a trailing space.
    again = service.save_template(
        session,
        kind="reminder",
        language="en",
        body="See you {date}. \r\n",
        user_id=7,
        now=clock.now(),
    )
    built_in = service.save_template(
        session,
        kind="help",
        language="pl",
        body=DEFAULT_TEMPLATES[("help", "pl")],
        user_id=7,
        now=clock.now(),
    )

    assert (first.version, first.changed) == (1, True)
    assert (again.version, again.changed, again.body) == (1, False, "See you {date}.")
    assert (built_in.version, built_in.changed) == (0, False)
    assert session.scalars(select(SmsTemplate.version)).all() == [1]


@pytest.mark.parametrize("body", ["Hello {name}", "Broken {date", "   "])
def test_templates_with_unknown_placeholders_or_no_text_are_refused(
    session: Session, body: str, clock: FixedClock
) -> None:
    with pytest.raises(InvalidInputError):
        service.save_template(
            session, kind="reminder", language="en", body=body, user_id=None, now=clock.now()
        )


def test_every_shipped_language_has_a_text_for_every_kind_of_message() -> None:
    missing = [
        (str(kind), language)
        for kind in MessageKind
        for language in LANGUAGES
        if (str(kind), language) not in DEFAULT_TEMPLATES
    ]
    assert missing == []
    assert all(placeholder_problems(body) == [] for body in DEFAULT_TEMPLATES.values())


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Tue 1 Dec 2026"),
        ("pl", "wtorek, 1 grudnia 2026"),
        ("gu", "મંગળવાર, 1 ડિસેમ્બર 2026"),
        ("pa", "ਮੰਗਲਵਾਰ, 1 ਦਸੰਬਰ 2026"),
        ("so", "Tue 1 Dec 2026"),  # no words of its own: English
    ],
)
def test_dates_are_written_in_the_texts_own_language(language: str, expected: str) -> None:
    facts = AppointmentFacts(datetime(2026, 12, 1, 9, 30, tzinfo=UTC), "LRI", "340", False)
    assert template_values(facts, LONDON, language)["date"] == expected


def test_every_language_has_seven_day_and_twelve_month_names() -> None:
    for words in DATE_WORDS.values():
        assert len(set(words.weekdays)) == 7
        assert len(set(words.months)) == 12
    assert set(DATE_WORDS) == set(LANGUAGES)


def test_a_polish_reminder_uses_polish_day_and_month_names(session: Session) -> None:
    body, _, language = service.pick_template(service.current_templates(session), "reminder", "pl")
    facts = AppointmentFacts(datetime(2026, 11, 30, 9, 30, tzinfo=UTC), "LRI", "340", False)
    text = render(body, template_values(facts, LONDON, language))
    assert "poniedziałek, 30 listopada 2026" in text
    assert "Mon" not in text
    assert "Nov" not in text


def test_every_placeholder_problem_is_listed_at_once() -> None:
    problems = placeholder_problems("Hi {name}, {date} at {clinic} {time!r} {}")
    assert problems == [
        "{name} is not a placeholder: use only {date}, {reply}, {site}, {time}, {what}.",
        "{clinic} is not a placeholder: use only {date}, {reply}, {site}, {time}, {what}.",
        "Write {time!r} as {time}, with nothing after the name.",
        "Empty braces {} are not a placeholder: use only {date}, {reply}, {site}, {time}, {what}.",
    ]
    assert len(placeholder_problems("  ")) == 1
    broken = placeholder_problems("Hi {nme} and {date")
    assert any("without its partner" in problem for problem in broken)
    assert any("{nme}" in problem for problem in broken)


def test_preview_shows_segments_for_the_rendered_text() -> None:
    preview = service.preview_template("reminder", "pl", "Wizyta {date} o {time}, {site}.")
    assert preview.problems == []
    assert "Leicester Royal Infirmary" in preview.preview
    assert preview.segments.encoding == "GSM-7"
    polish = service.preview_template("reminder", "pl", "Wizyta się odbędzie {date}.")
    assert polish.segments.encoding == "UCS-2"
