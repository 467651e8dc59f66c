"""Message texts: languages, fallback, sensitive clinics, reply words, versioned edits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from app.clock import FixedClock
from app.errors import InvalidInputError
from app.localtime import TrustCalendar
from app.sms import service
from app.sms.templates import DEFAULT_TEMPLATES, AppointmentFacts, render, template_values

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
    # No Somali text yet, and no Gujarati help text: English is used.
    assert service.pick_template(templates, "reminder", "so")[2] == "en"
    assert service.pick_template(templates, "help", "gu")[2] == "en"


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


@pytest.mark.parametrize("body", ["Hello {name}", "Broken {date", "   "])
def test_templates_with_unknown_placeholders_or_no_text_are_refused(
    session: Session, body: str, clock: FixedClock
) -> None:
    with pytest.raises(InvalidInputError):
        service.save_template(
            session, kind="reminder", language="en", body=body, user_id=None, now=clock.now()
        )


def test_preview_shows_segments_for_the_rendered_text() -> None:
    preview = service.preview_template("reminder", "pl", "Wizyta {date} o {time}, {site}.")
    assert preview.problems == []
    assert "Leicester Royal Infirmary" in preview.preview
    assert preview.segments.encoding == "GSM-7"
    polish = service.preview_template("reminder", "pl", "Wizyta się odbędzie {date}.")
    assert polish.segments.encoding == "UCS-2"
