"""Scripts and SOPs: defaults seeded, chosen by needs and specialty, versioned, rendered safely."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.calls import documents
from app.calls.queue import build_queue
from app.calls.service import call_detail
from app.calls.tables import Call
from app.errors import InvalidInputError
from app.settings import Settings
from tests.calls.helpers import MORNING, QUEUE_DAY, calls_settings, in_window
from tests.factories import create_appointment, create_clinic, create_patient


def _slugs(session: Session, **patient: object) -> list[str]:
    sensitive = bool(patient.pop("sensitive", False))
    specialty = str(patient.pop("specialty", "120"))
    selection = documents.select_documents(
        session,
        patient=create_patient(session, **patient),
        specialty_codes=[specialty],
        sensitive_clinic=sensitive,
    )
    return [document.slug for document in selection.script] + [selection.sop.slug]


def test_the_default_script_and_sop_cover_what_the_sop_requires(session: Session) -> None:
    assert documents.ensure_default_documents(session) == len(documents.DEFAULT_SLUGS)
    assert documents.ensure_default_documents(session) == 0
    latest = documents.latest_documents(session)
    script = latest["script"].body.lower()
    for topic in ("date of birth", "rebook", "travel", "parking", "transport", "longer"):
        assert topic in script
    assert "never mention risk scores" in script
    assert "video relay" in latest["script-bsl"].body.lower()
    sop = latest["sop"].body.lower()
    for topic in (
        "retries",
        "wrong number",
        "safeguarding",
        "recording outcomes",
        "data protection",
    ):
        assert topic in sop


def test_sections_are_chosen_by_the_patients_needs_and_the_clinic(session: Session) -> None:
    assert _slugs(session) == ["script", "sop"]
    assert _slugs(session, communication_needs="bsl") == ["script", "script-bsl", "sop"]
    assert _slugs(session, interpreter_needed=True) == ["script", "script-interpreter", "sop"]
    assert _slugs(session, learning_disability=True) == ["script", "script-easy-read", "sop"]
    assert _slugs(session, communication_needs="easy_read") == ["script", "script-easy-read", "sop"]
    assert _slugs(session, sensitive=True) == ["script", "script-sensitive", "sop"]


def test_a_specialty_variant_replaces_the_base_script(session: Session) -> None:
    documents.add_version(
        session,
        slug="script-specialty-340",
        body="# Respiratory script\n\nAsk about inhalers.",
        user_id=3,
    )
    assert _slugs(session, specialty="340") == ["script-specialty-340", "sop"]
    assert _slugs(session, specialty="120") == ["script", "sop"]


def test_managers_add_versions_and_each_call_keeps_the_version_it_showed(
    session: Session, settings: Settings
) -> None:
    settings = calls_settings(settings)
    first_patient = create_patient(session, core20=True)
    create_appointment(session, patient=first_patient, start_at=in_window())
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    (first_call,) = session.query(Call).all()
    shown_before = call_detail(session, call_id=first_call.id, now=MORNING)
    assert shown_before.script[0].version == 1

    edited = documents.add_version(
        session, slug="script", body="# Call script\n\nA shorter, clearer script.", user_id=3
    )
    versions = documents.list_versions(session, "script")

    assert [v.version for v in versions] == [2, 1]
    assert edited.created_by == 3
    assert call_detail(session, call_id=first_call.id, now=MORNING).script[0].version == 1
    create_appointment(session, patient=create_patient(session, core20=True), start_at=in_window())
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    new_call = session.query(Call).filter(Call.id != first_call.id).one()
    detail = call_detail(session, call_id=new_call.id, now=MORNING)
    assert detail.script[0].version == 2
    assert "shorter, clearer" in detail.script[0].html
    assert new_call.documents_shown == [edited.id, detail.sop.id]


def test_markdown_is_rendered_with_html_escaped() -> None:
    html = documents.render_markdown(
        "# Title\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) **bold**"
    )
    assert "<h1>Title</h1>" in html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert "<strong>bold</strong>" in html


@pytest.mark.parametrize(
    ("slug", "body", "field"),
    [("made-up", "# Text", "slug"), ("script", "   ", "body")],
)
def test_invalid_edits_are_refused(session: Session, slug: str, body: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        documents.add_version(session, slug=slug, body=body, user_id=3)
    assert raised.value.details[0]["field"] == field
    assert [v.version for v in documents.list_versions(session, "script")] == [1]


def test_call_detail_shows_band_and_reasons_but_never_the_probability(
    session: Session, settings: Settings
) -> None:
    from tests.calls.helpers import create_eligible_appointment

    settings = calls_settings(settings)
    clinic = create_clinic(session, sensitive=True, specialty_code="330")
    appointment = create_eligible_appointment(session, clinic=clinic, risk=0.6173)
    build_queue(session, settings, QUEUE_DAY, now=MORNING)
    call = session.query(Call).one()

    detail = call_detail(session, call_id=call.id, now=MORNING)

    (shown,) = detail.appointments
    assert shown.id == appointment.id
    assert shown.risk_band == "high"
    assert shown.risk_reasons == ["Missed an appointment before"]
    assert shown.specialty == "Dermatology"
    assert "0.6173" not in detail.model_dump_json()
    assert "61.73" not in detail.model_dump_json()
    assert detail.patient.birth_date is not None
    assert [document.slug for document in detail.script] == ["script", "script-sensitive"]


def test_saving_the_same_text_makes_no_new_version(session: Session) -> None:
    first = documents.save_version(session, slug="sop", body="# SOP\n\nSame.\n", user_id=3)
    again = documents.save_version(session, slug="sop", body="# SOP\r\n\r\nSame.  \r\n", user_id=3)

    assert first.changed
    assert not again.changed
    assert again.document.id == first.document.id
    assert [v.version for v in documents.list_versions(session, "sop")] == [2, 1]


@pytest.mark.parametrize(
    "body",
    [
        "# T\n\n<script>alert(1)</script>",
        "# T\n\n<div onclick=x>hi</div>",
        "# T\n\nSay <em>this</em>",
        "# T\n\n[go](javascript:alert(1))",
        "# T\n\n[go](JAVASCRIPT:alert(1))",
        "# T\n\n<javascript:alert(1)>",
        "# T\n\n![x](data:image/png;base64,AAAA)",
        "# T\n\n[go][r]\n\n[r]: vbscript:msgbox",
    ],
)
def test_unsafe_markdown_is_refused_and_nothing_saved(session: Session, body: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        documents.save_version(session, slug="script", body=body, user_id=3)

    assert raised.value.details
    assert all(detail["field"] == "body" for detail in raised.value.details)
    assert [v.version for v in documents.list_versions(session, "script")] == [1]


def test_safe_links_and_plain_comparisons_are_accepted(session: Session) -> None:
    body = "# T\n\nIf the wait is < 2 days, see [NHS](https://www.nhs.uk) or [call](tel:111)."
    assert documents.unsafe_markdown_problems(body) == []


def test_each_unsafe_part_of_a_paragraph_is_named_by_its_own_line() -> None:
    body = "Intro\n<b>bold</b> here\n[x](javascript:alert(1))\n![i](data:x) and <img src=x>"

    assert documents.unsafe_markdown_problems(body) == [
        "Line 2 has HTML (<b>): use Markdown instead",
        "Line 3 links to a javascript: address: links may only go to http, https, mailto or "
        "tel addresses",
        "Line 4 links to a data: address: links may only go to http, https, mailto or tel "
        "addresses",
        "Line 4 has HTML (<img src=x>): use Markdown instead",
    ]


def test_the_comparison_aligns_changed_removed_and_added_lines() -> None:
    rows = documents.compare("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(row.kind, row.old_text, row.new_text) for row in rows] == [
        ("same", "a", "a"),
        ("changed", "b", "B"),
        ("same", "c", "c"),
        ("added", "", "d"),
    ]
