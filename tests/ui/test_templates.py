"""The shared form macros and the base layout that every feature's pages are built from."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from app.ui.templating import template_dirs, templates

IMPORT = (
    '{% from "macros/forms.html" import error_summary, csrf_field, input, radios, checkboxes, '
    "textarea, date_input, select, button %}"
)


def _render(source: str, **context: object) -> str:
    return templates().env.from_string(IMPORT + source).render(**context)


def test_the_error_summary_links_each_message_to_its_field() -> None:
    html = _render(
        "{{ error_summary(errors) }}",
        errors={"reason": "Select a reason", "when": "Enter a real date"},
    )
    assert 'class="nhsuk-error-summary"' in html
    assert 'role="alert"' in html
    assert '<a href="#reason">Select a reason</a>' in html
    assert '<a href="#when">Enter a real date</a>' in html
    assert _render("{{ error_summary({}) }}").strip() == ""


def test_an_input_with_an_error_is_labelled_and_described_by_hint_and_error() -> None:
    html = _render(
        '{{ input("nhs", "NHS number", value="<x>", hint="10 digits", error="Enter 10 digits") }}'
    )
    assert '<label class="nhsuk-label" for="nhs">NHS number</label>' in html
    assert 'aria-describedby="nhs-hint nhs-error"' in html
    assert "nhsuk-form-group--error" in html
    assert 'value="&lt;x&gt;"' in html  # escaped
    assert '<span class="nhsuk-u-visually-hidden">Error:</span> Enter 10 digits' in html


def test_radios_and_checkboxes_mark_the_chosen_items_and_the_first_has_the_field_id() -> None:
    radios = _render(
        '{{ radios("outcome", "Outcome", [("confirmed", "Confirmed"), ("rebooked", "Rebooked")],'
        ' value="rebooked") }}'
    )
    boxes = _render(
        '{{ checkboxes("support", "Support", [{"value": "travel", "text": "Travel", '
        '"hint": "Costs or parking"}, {"value": "bsl", "text": "BSL interpreter"}],'
        ' values=["bsl"]) }}'
    )
    assert 'id="outcome" name="outcome" type="radio" value="confirmed">' in radios
    assert 'id="outcome-2" name="outcome" type="radio" value="rebooked" checked>' in radios
    assert "<legend" in radios
    assert 'value="bsl" checked' in boxes
    assert 'value="travel" aria-describedby="support-item-hint"' in boxes


def test_the_date_input_shows_a_date_or_what_was_typed() -> None:
    from_date = _render('{{ date_input("when", "Date", value=day) }}', day=date(2026, 11, 24))
    typed = _render(
        '{{ date_input("when", "Date", value={"day": "31", "month": "2", "year": "2026"},'
        ' error="Enter a real date") }}'
    )
    assert 'id="when" name="when-day" type="text" inputmode="numeric" value="24"' in from_date
    assert 'name="when-year" type="text" inputmode="numeric" value="2026"' in from_date
    assert 'value="31"' in typed
    assert "nhsuk-input--error" in typed


def test_textarea_select_button_and_csrf_field() -> None:
    html = _render(
        '{{ textarea("notes", "Notes", value="call back") }}'
        '{{ select("role", "Role", [("a", "A"), ("b", "B")], value="b") }}'
        '{{ button("Save", secondary=True) }}{{ csrf_field("tok") }}'
    )
    assert ">call back</textarea>" in html
    assert '<option value="b" selected>B</option>' in html
    assert "nhsuk-button nhsuk-button--secondary" in html
    assert '<input type="hidden" name="csrf_token" value="tok">' in html


def test_feature_template_folders_are_searched_after_the_shared_ones() -> None:
    dirs = template_dirs()
    assert dirs[0].parts[-2:] == ("ui", "templates")
    assert Path("app/auth/templates").resolve() in dirs


def test_the_base_layout_loads_no_inline_script() -> None:
    base = (template_dirs()[0] / "base.html").read_text()
    assert '<script type="module" src="/static/js/navigator.js"></script>' in base
    assert base.count("<script") == 1
    assert 'href="#maincontent"' in base
    assert '<main class="nhsuk-main-wrapper" id="maincontent">' in base
