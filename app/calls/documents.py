"""Call scripts and SOPs: versioned Markdown documents, chosen per call and rendered safely.

A call shows the base script (or a specialty's own variant, slug `script-specialty-<code>`),
the needs-specific sections that apply to the patient and the clinics, and the SOP. The
default set ships as package data (`app/calls/documents/*.md`) and is seeded into the database
on first use; managers add versions, old versions are kept, and each call records the
versions it showed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from markdown_it import MarkdownIt
from markdown_it.token import Token
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.calls.tables import CallDocument
from app.errors import ConflictError, InvalidInputError, NotFoundError
from app.patients.tables import Patient
from app.reference.codes import SPECIALTIES, CommunicationNeed

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


def _normalised(body: str) -> str:
    """Browsers send a textarea with CRLF line ends; stored text has LF and one final newline."""
    return body.replace("\r\n", "\n").replace("\r", "\n").rstrip() + "\n"


# Schemes a script may link to; anything else (javascript:, vbscript:, data:, file: ...) is
# refused on save rather than silently dropped by the renderer.
SAFE_LINK_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")
# A second parser that accepts everything, only to find what the safe one would neutralise.
_inspector = MarkdownIt("commonmark", {"html": True})
_inspector.validateLink = lambda url: True  # type: ignore[method-assign]


def _line_of(token: Token, fallback: int | None) -> int | None:
    return token.map[0] + 1 if token.map else fallback


def unsafe_markdown_problems(body: str) -> list[str]:
    """Every raw HTML element and unsafe link in a body, by line, in words (empty when safe)."""
    problems: list[str] = []
    for block in _inspector.parse(body):
        line = _line_of(block, None)
        if block.type == "html_block":
            problems.append(
                f"Line {line} has HTML ({block.content.strip().splitlines()[0][:40]}): "
                "use Markdown instead, for example **bold** or - a list item"
            )
        first_line = line
        for token in block.children or []:
            if token.type in ("softbreak", "hardbreak") and first_line is not None:
                # A paragraph over several lines: the problem is on the line it is on.
                first_line += 1
                continue
            line = first_line
            if token.type == "html_inline" and not token.content.startswith("</"):
                problems.append(
                    f"Line {line} has HTML ({token.content[:40]}): use Markdown instead"
                )
            target = token.attrGet("href") if token.type == "link_open" else None
            if token.type == "image":
                target = token.attrGet("src")
            if target is None:
                continue
            cleaned = re.sub(r"[\x00-\x20]", "", str(target)).lower()
            scheme = _SCHEME.match(cleaned)
            if scheme and scheme.group(1) not in SAFE_LINK_SCHEMES:
                problems.append(
                    f"Line {line} links to a {scheme.group(1)}: address: links may only go to "
                    "http, https, mailto or tel addresses"
                )
    return problems


@dataclass(frozen=True)
class Saved:
    """The document's current version after a save; `changed` is False for a no-op save."""

    document: CallDocument
    changed: bool


def save_version(
    session: Session, *, slug: str, body: str, user_id: int, title: str | None = None
) -> Saved:
    """Save a new version of a document (a manager's edit); earlier versions stay. Text that
    is the same as the current version's saves nothing. Every problem is reported at once."""
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
    else:
        errors += [
            {"field": "body", "message": problem} for problem in unsafe_markdown_problems(body)
        ]
    if errors:
        raise InvalidInputError("The document was not saved.", details=errors)
    body = _normalised(body)
    current = session.scalar(
        select(CallDocument)
        .where(CallDocument.slug == slug)
        .order_by(CallDocument.version.desc())
        .limit(1)
    )
    new_title = (title or _title_of(body, slug)).strip()[:200]
    if current is not None and _normalised(current.body) == body and current.title == new_title:
        return Saved(current, changed=False)
    document = CallDocument(
        slug=slug,
        version=(current.version if current else 0) + 1,
        title=new_title,
        body=body,
        created_by=user_id,
    )
    session.add(document)
    session.flush()
    return Saved(document, changed=True)


def add_version(
    session: Session, *, slug: str, body: str, user_id: int, title: str | None = None
) -> CallDocument:
    """`save_version`, for callers that only need the current version."""
    return save_version(session, slug=slug, body=body, user_id=user_id, title=title).document


def get_version(session: Session, slug: str, version: int) -> CallDocument:
    found = session.scalar(
        select(CallDocument).where(CallDocument.slug == slug, CallDocument.version == version)
    )
    if found is None:
        raise NotFoundError(f"No version {version} of that document.")
    return found


def revert_to(session: Session, *, slug: str, version: int, user_id: int) -> Saved:
    """Make an earlier version current again, as a new version (history only grows)."""
    earlier = get_version(session, slug, version)
    return save_version(session, slug=slug, body=earlier.body, user_id=user_id)


def specialty_slug(code: str) -> str:
    return f"script-specialty-{code}"


def missing_specialty_scripts(session: Session) -> list[tuple[str, str]]:
    """(code, name) of the known specialties that have no script of their own yet."""
    present = set(session.scalars(select(CallDocument.slug).distinct()))
    return [
        (code, name)
        for code, name in sorted(SPECIALTIES.items(), key=lambda item: item[1])
        if specialty_slug(code) not in present
    ]


def add_specialty_script(session: Session, *, code: str, user_id: int) -> CallDocument:
    """A specialty's own script, started from the current base script with its own title."""
    ensure_default_documents(session)
    if code not in SPECIALTIES:
        raise InvalidInputError(
            "The script was not added.",
            details=[{"field": "specialty", "message": "Choose a specialty from the list"}],
        )
    slug = specialty_slug(code)
    if session.scalar(select(CallDocument.id).where(CallDocument.slug == slug).limit(1)):
        raise ConflictError(
            f"{SPECIALTIES[code]} already has its own script.",
            details=[
                {
                    "field": "specialty",
                    "message": f"{SPECIALTIES[code]} already has its own script: edit it instead",
                }
            ],
        )
    base = latest_documents(session)[BASE_SCRIPT].body
    lines = base.splitlines()
    heading = f"# Call script: {SPECIALTIES[code]}"
    if lines and lines[0].startswith("# "):
        lines[0] = heading
    else:
        lines.insert(0, heading)
    return save_version(session, slug=slug, body="\n".join(lines), user_id=user_id).document


@dataclass(frozen=True)
class DiffRow:
    """One line of a side-by-side comparison: `kind` is same, changed, removed or added."""

    kind: str
    old_number: int | None
    old_text: str
    new_number: int | None
    new_text: str


def compare(old: str, new: str) -> list[DiffRow]:
    """The two texts line by line, aligned (difflib), for a side-by-side table."""
    old_lines, new_lines = _normalised(old).splitlines(), _normalised(new).splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows += [
                DiffRow("same", i + 1, old_lines[i], j + 1, new_lines[j])
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            ]
            continue
        olds, news = list(range(i1, i2)), list(range(j1, j2))
        for index in range(max(len(olds), len(news))):
            i = olds[index] if index < len(olds) else None
            j = news[index] if index < len(news) else None
            kind = (
                "changed"
                if i is not None and j is not None
                else "removed"
                if j is None
                else "added"
            )
            rows.append(
                DiffRow(
                    kind,
                    None if i is None else i + 1,
                    "" if i is None else old_lines[i],
                    None if j is None else j + 1,
                    "" if j is None else new_lines[j],
                )
            )
    return rows


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
