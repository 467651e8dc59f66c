"""Call scripts and SOPs: versioned Markdown documents, chosen per call and rendered safely.

A call shows the base script (or a specialty's own variant, slug `script-specialty-<code>`),
the needs-specific sections that apply to the patient and the clinics, and the SOP. The
default set ships as package data (`app/calls/documents/*.md`) and is seeded into the database
on first use; managers add versions, old versions are kept, and each call records the
versions it showed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from markdown_it import MarkdownIt
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.calls.tables import CallDocument
from app.errors import InvalidInputError, NotFoundError
from app.patients.tables import Patient
from app.reference.codes import CommunicationNeed

BASE_SCRIPT = "script"
SOP = "sop"
BSL_SECTION = "script-bsl"
INTERPRETER_SECTION = "script-interpreter"
EASY_READ_SECTION = "script-easy-read"
SENSITIVE_SECTION = "script-sensitive"
DEFAULT_SLUGS = (
    BASE_SCRIPT,
    BSL_SECTION,
    INTERPRETER_SECTION,
    EASY_READ_SECTION,
    SENSITIVE_SECTION,
    SOP,
)
SPECIALTY_SCRIPT = re.compile(r"^script-specialty-(\d{3})$")
MAX_BODY_CHARS = 50_000

# CommonMark with raw HTML switched off: any HTML a manager types is shown escaped, and
# markdown-it's link validation refuses javascript:/vbscript:/data: URLs.
_markdown = MarkdownIt("commonmark", {"html": False})


@lru_cache(maxsize=128)
def render_markdown(body: str) -> str:
    """HTML for a document body. Versions never change once saved, so the few bodies in use
    are rendered once per worker rather than on every call screen."""
    return _markdown.render(body)


def _default_body(slug: str) -> str:
    return resources.files("app.calls").joinpath(f"documents/{slug}.md").read_text("utf-8")


def _title_of(body: str, fallback: str) -> str:
    for line in body.splitlines():
        if line.startswith("# "):
            return line[2:].strip()[:200]
    return fallback


def ensure_default_documents(session: Session) -> int:
    """Seed version 1 of every default document that has no version yet; returns how many."""
    present = set(session.scalars(select(CallDocument.slug).distinct()))
    missing = [slug for slug in DEFAULT_SLUGS if slug not in present]
    if not missing:
        return 0
    try:
        # A savepoint: when two first requests race, the loser's insert fails on the unique
        # (slug, version) and is rolled back alone; the winner's rows serve both.
        with session.begin_nested():
            for slug in missing:
                body = _default_body(slug)
                session.add(
                    CallDocument(slug=slug, version=1, title=_title_of(body, slug), body=body)
                )
    except IntegrityError:
        return 0
    return len(missing)


def latest_documents(session: Session) -> dict[str, CallDocument]:
    """The newest version of every document, by slug."""
    newest = (
        select(CallDocument.slug, func.max(CallDocument.version).label("version"))
        .group_by(CallDocument.slug)
        .subquery()
    )
    rows = session.scalars(
        select(CallDocument).join(
            newest,
            (newest.c.slug == CallDocument.slug) & (newest.c.version == CallDocument.version),
        )
    )
    return {row.slug: row for row in rows}


def list_versions(session: Session, slug: str) -> list[CallDocument]:
    ensure_default_documents(session)
    versions = list(
        session.scalars(
            select(CallDocument)
            .where(CallDocument.slug == slug)
            .order_by(CallDocument.version.desc())
        )
    )
    if not versions:
        raise NotFoundError("No script or SOP with that name.")
    return versions


def add_version(
    session: Session, *, slug: str, body: str, user_id: int, title: str | None = None
) -> CallDocument:
    """Save a new version of a document (a manager's edit); earlier versions stay."""
    ensure_default_documents(session)
    errors = []
    if slug not in DEFAULT_SLUGS and not SPECIALTY_SCRIPT.match(slug):
        errors.append(
            {
                "field": "slug",
                "message": (
                    "Use an existing document or script-specialty-<treatment function code>."
                ),
            }
        )
    if not body.strip():
        errors.append({"field": "body", "message": "Enter the document text."})
    elif len(body) > MAX_BODY_CHARS:
        errors.append({"field": "body", "message": "The document is too long."})
    if errors:
        raise InvalidInputError("The document was not saved.", details=errors)
    current = session.scalar(
        select(func.max(CallDocument.version)).where(CallDocument.slug == slug)
    )
    document = CallDocument(
        slug=slug,
        version=(current or 0) + 1,
        title=(title or _title_of(body, slug)).strip()[:200],
        body=body,
        created_by=user_id,
    )
    session.add(document)
    session.flush()
    return document


@dataclass(frozen=True)
class Selection:
    """What a call shows: script sections in order, then the SOP."""

    script: list[CallDocument]
    sop: CallDocument

    @property
    def ids(self) -> list[int]:
        return [document.id for document in [*self.script, self.sop]]


def select_documents(
    session: Session,
    *,
    patient: Patient,
    specialty_codes: list[str],
    sensitive_clinic: bool,
) -> Selection:
    """The script sections and SOP for one call, chosen by specialty and the patient's needs."""
    ensure_default_documents(session)
    latest = latest_documents(session)
    base = next(
        (
            latest[f"script-specialty-{code}"]
            for code in specialty_codes
            if f"script-specialty-{code}" in latest
        ),
        latest[BASE_SCRIPT],
    )
    needs = set(patient.communication_need_list)
    sections = [base]
    if needs & {CommunicationNeed.BSL, CommunicationNeed.DEAFBLIND}:
        sections.append(latest[BSL_SECTION])
    if patient.interpreter_needed:
        sections.append(latest[INTERPRETER_SECTION])
    if patient.learning_disability or CommunicationNeed.EASY_READ in needs:
        sections.append(latest[EASY_READ_SECTION])
    if sensitive_clinic:
        sections.append(latest[SENSITIVE_SECTION])
    return Selection(script=sections, sop=latest[SOP])
