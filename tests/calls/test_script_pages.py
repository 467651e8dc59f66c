"""The managers' script pages: a no-op save makes no version, a banner after each change,
versions side by side, restoring an earlier version, adding a specialty's script, and
unsafe Markdown refused with every problem listed and nothing saved."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.roles import Role
from app.auth.tables import AuditEvent
from app.calls import documents
from app.calls.tables import CallDocument
from tests.auth.helpers import create_user, sign_in


def _manager(session: Session, client: TestClient) -> str:
    user = create_user(session, role=Role.MANAGER)
    session.commit()
    return sign_in(client, user.username)


def _versions(session: Session, slug: str) -> list[int]:
    """The versions on record; the read ends its transaction, so the app's next request never
    waits for the test's hold on an SQLite database."""
    session.expire_all()
    versions = list(
        session.scalars(
            select(CallDocument.version)
            .where(CallDocument.slug == slug)
            .order_by(CallDocument.version)
        )
    )
    session.rollback()
    return versions


def _audit_actions(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("call_document.%"))
            .order_by(AuditEvent.id)
        )
    )


def test_saving_shows_a_banner_and_unchanged_text_makes_no_new_version(
    app_client: TestClient, session: Session
) -> None:
    csrf = _manager(session, app_client)
    current = app_client.get("/manage/scripts/sop")
    body = documents.latest_documents(session)["sop"].body
    session.rollback()  # end the read, so the server can write

    # The browser sends CRLF line ends: still the same text.
    same = app_client.post(
        "/manage/scripts/sop",
        data={"csrf_token": csrf, "action": "save", "body": body.replace("\n", "\r\n")},
    )
    changed = app_client.post(
        "/manage/scripts/sop",
        data={"csrf_token": csrf, "action": "save", "body": body + "\nA new last line.\n"},
    )

    assert current.status_code == 200
    assert "Nothing was saved: the text is the same as the current version." in same.text
    assert "The new version was saved." in changed.text
    assert 'data-testid="success-banner"' in changed.text
    assert "Current version: 2." in changed.text
    assert _versions(session, "sop") == [1, 2]
    assert _audit_actions(session) == ["call_document.edited"]


def test_unsafe_markdown_is_refused_with_every_problem_listed_and_nothing_saved(
    app_client: TestClient, session: Session
) -> None:
    csrf = _manager(session, app_client)
    body = (
        "# Script\n\n<script>alert(1)</script>\n\n"
        "Say hello <b>kindly</b>.\n\n[Open](javascript:alert(1)) and [ok](https://www.nhs.uk)"
    )

    refused = app_client.post(
        "/manage/scripts/script", data={"csrf_token": csrf, "action": "save", "body": body}
    )

    assert refused.status_code == 422
    assert 'class="nhsuk-error-summary"' in refused.text
    assert '<a href="#body">Line 3 has HTML (&lt;script&gt;alert(1)&lt;/script&gt;)' in (
        refused.text
    )
    assert '<a href="#body">Line 5 has HTML (&lt;b&gt;)' in refused.text
    assert "Line 7 links to a javascript: address" in refused.text
    assert "https" in refused.text
    assert _versions(session, "script") == [1]
    assert _audit_actions(session) == []


def test_two_versions_are_compared_side_by_side(app_client: TestClient, session: Session) -> None:
    csrf = _manager(session, app_client)
    for text in (
        "# Title\n\nKeep this.\nOld words.\n",
        "# Title\n\nKeep this.\nNew words.\nMore.\n",
    ):
        app_client.post(
            "/manage/scripts/sop", data={"csrf_token": csrf, "action": "save", "body": text}
        )

    page = app_client.get("/manage/scripts/sop/compare", params={"old": 2, "new": 3})
    default = app_client.get("/manage/scripts/sop/compare")
    missing = app_client.get("/manage/scripts/sop/compare", params={"old": 99})

    assert page.status_code == 200
    assert "Compare version 2 with version 3" in page.text
    assert "<del>Old words.</del>" in page.text
    assert "<ins>New words.</ins>" in page.text
    assert "<strong>Changed</strong>" in page.text
    assert "<strong>Added</strong>" in page.text
    assert "<ins>More.</ins>" in page.text
    assert "Compare version 2 with version 3" in default.text  # the last change by default
    assert missing.status_code == 404


def test_an_earlier_version_is_restored_as_a_new_audited_version(
    app_client: TestClient, session: Session
) -> None:
    csrf = _manager(session, app_client)
    app_client.get("/manage/scripts")
    original = documents.latest_documents(session)["script-bsl"].body
    session.rollback()  # end the read, so the server can write
    app_client.post(
        "/manage/scripts/script-bsl",
        data={"csrf_token": csrf, "action": "save", "body": "# BSL\n\nA rewrite.\n"},
    )

    restored = app_client.post(
        "/manage/scripts/script-bsl/revert", data={"csrf_token": csrf, "version": "1"}
    )
    again = app_client.post(
        "/manage/scripts/script-bsl/revert", data={"csrf_token": csrf, "version": "1"}
    )

    assert "The earlier version was restored as a new version." in restored.text
    assert "Current version: 3." in restored.text
    assert "Nothing was saved" in again.text
    assert _versions(session, "script-bsl") == [1, 2, 3]
    assert documents.latest_documents(session)["script-bsl"].body.strip() == original.strip()
    assert _audit_actions(session) == ["call_document.edited", "call_document.reverted"]
    reverted = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "call_document.reverted")
    ).one()
    assert reverted.detail == {"slug": "script-bsl", "version": 3, "from_version": 1}


def test_a_manager_adds_a_specialty_script_from_the_page(
    app_client: TestClient, session: Session
) -> None:
    csrf = _manager(session, app_client)
    listing = app_client.get("/manage/scripts")
    assert '<option value="340">Respiratory medicine</option>' in listing.text

    added = app_client.post("/manage/scripts", data={"csrf_token": csrf, "specialty": "340"})
    twice = app_client.post("/manage/scripts", data={"csrf_token": csrf, "specialty": "340"})
    unknown = app_client.post("/manage/scripts", data={"csrf_token": csrf, "specialty": ""})

    assert "The specialty&#39;s script was added" in added.text
    assert '<h1 class="nhsuk-heading-l">Call script: Respiratory medicine</h1>' in added.text
    assert twice.status_code == 409
    assert '<a href="#specialty">Respiratory medicine already has its own script' in twice.text
    assert unknown.status_code == 422
    assert '<a href="#specialty">Choose a specialty from the list</a>' in unknown.text
    assert _versions(session, "script-specialty-340") == [1]
    assert '<option value="340">' not in app_client.get("/manage/scripts").text
    assert _audit_actions(session) == ["call_document.created"]


def test_navigators_cannot_change_scripts(app_client: TestClient, session: Session) -> None:
    user = create_user(session, role=Role.NAVIGATOR)
    session.commit()
    csrf = sign_in(app_client, user.username)

    for method, path, data in [
        ("get", "/manage/scripts/sop/compare", None),
        ("post", "/manage/scripts", {"csrf_token": csrf, "specialty": "340"}),
        ("post", "/manage/scripts/sop/revert", {"csrf_token": csrf, "version": "1"}),
    ]:
        response = getattr(app_client, method)(path, data=data) if data else app_client.get(path)
        assert response.status_code == 403, path
    assert _audit_actions(session) == []
