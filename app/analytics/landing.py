"""The manager's landing dashboard: today's queues, last complete month's headline, and the
alerts that need a manager (each with the page that deals with it).

Everything here is read from what other features already record (the calls feature's queue,
the impact and reach reports, the job runs, the feed inbox, the active risk model's card); the
landing page adds no figure of its own, so it always agrees with the page it links to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.analytics import repository, service
from app.analytics.dimensions import sources_of
from app.analytics.periods import Period, last_complete_month
from app.analytics.schemas import ImpactEstimate
from app.analytics.stats import LEFT_BEHIND_RATIO, funnel_flag, funnel_limits
from app.calls import service as calls_service
from app.calls.tables import CallStatus
from app.db import dialect
from app.errors import NotReadyError
from app.feed.tables import DEAD_LETTER_STATUSES, FeedMessage
from app.jobs.tables import JobRun, RunStatus
from app.risk.card import FAIRNESS_LABELS
from app.risk.repository import active_model, latest_decision
from app.settings import Settings

# What each daily job does, in words, and where a manager sees its work.
JOB_PAGES = {
    "queue_build": ("the morning call-queue build", "/manage/queues"),
    "sms_schedule": ("the SMS reminder schedule", "/sms"),
}


@dataclass(frozen=True, slots=True)
class QueueToday:
    day: date
    capacity: int
    queued: int
    done: int
    reached: int
    in_progress: int
    waiting: int
    waiting_beyond_capacity: int


@dataclass(frozen=True, slots=True)
class MonthHeadline:
    period: Period
    estimate: ImpactEstimate | None
    message: str | None


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # job, reach, data-quality, feed, model
    title: str
    detail: str
    href: str
    link_text: str


@dataclass(frozen=True, slots=True)
class Landing:
    today: date
    queue: QueueToday
    month: MonthHeadline
    alerts: list[Alert] = field(default_factory=list)


def landing(session: Session, settings: Settings, now: datetime) -> Landing:
    dialect.tune_for_reporting(session)
    today = service.today(settings, now)
    month = last_complete_month(today)
    alerts = [
        *job_alerts(session, today),
        *left_behind_alerts(session, settings, month),
        *data_quality_alerts(session, settings, month),
        *feed_alerts(session),
        *model_alerts(session),
    ]
    return Landing(
        today=today,
        queue=queue_today(session, settings, today, now),
        month=month_headline(session, settings, month),
        alerts=alerts,
    )


def queue_today(session: Session, settings: Settings, today: date, now: datetime) -> QueueToday:
    """The calls feature's own overview of today (the figures /manage/queues shows)."""
    view = calls_service.overview(session, settings, queue_date=today, now=now)
    counts = view.counts
    return QueueToday(
        day=today,
        capacity=view.capacity,
        queued=view.calls_queued_today,
        done=counts[CallStatus.COMPLETED] + counts[CallStatus.UNREACHABLE],
        reached=counts[CallStatus.COMPLETED],
        in_progress=counts[CallStatus.IN_PROGRESS],
        waiting=counts[CallStatus.READY] + counts[CallStatus.RETRY],
        waiting_beyond_capacity=view.call_arm_waiting_beyond_capacity,
    )


def month_headline(session: Session, settings: Settings, month: Period) -> MonthHeadline:
    try:
        report = service.impact(session, settings, month, by_group=False)
    except NotReadyError as error:
        return MonthHeadline(period=month, estimate=None, message=error.message)
    return MonthHeadline(period=month, estimate=report.estimate, message=None)


def job_alerts(session: Session, today: date) -> list[Alert]:
    """The latest run of each daily job, when it failed (or died: still 'running' from an
    earlier day)."""
    latest = select(JobRun.name, func.max(JobRun.id).label("id")).group_by(JobRun.name).subquery()
    alerts = []
    for run in session.scalars(select(JobRun).join(latest, latest.c.id == JobRun.id)):
        died = run.status == RunStatus.RUNNING and run.day < today
        if run.status != RunStatus.FAILED and not died:
            continue
        what, href = JOB_PAGES.get(run.name, (f"the {run.name.replace('_', ' ')} job", "/"))
        how = f"failed ({run.error})" if run.status == RunStatus.FAILED else "never finished"
        alerts.append(
            Alert(
                kind="job",
                title=f"A daily job failed: {what}",
                detail=(
                    f"Its latest run, for {run.day:%-d %B %Y}, {how}. The worker's log has the "
                    "details; the job runs again at its next scheduled time."
                ),
                href=href,
                link_text="See what it affects",
            )
        )
    return alerts


def left_behind_alerts(session: Session, settings: Settings, month: Period) -> list[Alert]:
    start, end = month.bounds(settings.calendar)
    cube = repository.appointment_cube(
        session,
        start=start,
        end=end,
        sources=sources_of(service.REACH_DIMENSIONS),
        timezone=settings.timezone,
        contact_lookback=service.contact_lookback(settings),
    )
    section = service.reach(session, settings, month, cube)
    alerts = []
    for table in section.tables:
        dimension = re.sub(r"\s*\(.*\)$", "", table.columns[0].label)  # "(six groups)"
        for row in table.rows:
            if not row.get("left_behind"):
                continue
            alerts.append(
                Alert(
                    kind="reach",
                    title=f"A group left behind: {row['group']} ({_lower(dimension)})",
                    detail=(
                        f"In {month.label()} this group had {row['share_of_dnas']:.1%} of DNAs "
                        f"but {row['share_of_reached']:.1%} of patients reached by a call "
                        f"(ratio {row['reach_to_burden']:.2f}, "
                        f"95% interval {row['ratio_ci_low']:.2f} to {row['ratio_ci_high']:.2f}; "
                        f"flagged under {LEFT_BEHIND_RATIO})."
                    ),
                    href="/analytics?period=last-month#reach-heading",
                    link_text="See who is reached",
                )
            )
    return alerts


def data_quality_alerts(session: Session, settings: Settings, month: Period) -> list[Alert]:
    """Clinics whose ethnicity recording is beyond the funnel plot's 99.8% limits."""
    start, end = month.bounds(settings.calendar)
    clinics, totals = repository.recording_quality(session, start=start, end=end)
    if not totals.get("patients"):
        return []
    trust_share = totals["unrecorded"] / totals["patients"]
    outliers = []
    for code, _specialty, counts in clinics:
        share = counts["unrecorded"] / counts["patients"]
        limits = funnel_limits(trust_share, counts["patients"])
        if funnel_flag(share, limits) == "alarm" and share > trust_share:
            outliers.append((code, share))
    if not outliers:
        return []
    named = ", ".join(f"{code} ({share:.0%})" for code, share in sorted(outliers)[:5])
    more = f" and {len(outliers) - 5} more" if len(outliers) > 5 else ""
    return [
        Alert(
            kind="data-quality",
            title=f"Ethnicity recording outliers: {len(outliers)} clinic"
            + ("s" if len(outliers) > 1 else ""),
            detail=(
                f"In {month.label()}, ethnicity was not stated or not known for more patients "
                f"than chance explains (beyond the 99.8% funnel limit around the trust's "
                f"{trust_share:.0%}) at {named}{more}."
            ),
            href="/analytics?period=last-month#quality-heading",
            link_text="See data quality",
        )
    ]


def feed_alerts(session: Session) -> list[Alert]:
    waiting = session.scalar(
        select(func.count()).where(FeedMessage.status.in_(list(DEAD_LETTER_STATUSES)))
    )
    if not waiting:
        return []
    return [
        Alert(
            kind="feed",
            title=f"{waiting} PAS feed message{'s' if waiting > 1 else ''} not applied",
            detail=(
                "Dead letters: messages from the PAS that could not be read or applied. "
                "Bookings they carry are missing until they are replayed or dismissed."
            ),
            href="/feed",
            link_text="See the dead letters",
        )
    ]


def model_alerts(session: Session) -> list[Alert]:
    """Calibration and ranking flags the active model's card already records, and calibration
    drift since training found by the latest monthly review (app/risk/drift.py) when it was of
    the model still active."""
    model = active_model(session)
    if model is None:
        return []
    card: dict[str, Any] = model.card or {}
    review = latest_decision(session)
    drift: dict[str, Any] = (review.drift or {}) if review is not None else {}
    alerts = [
        Alert(
            kind="model",
            title="The risk model's calibration has drifted since training",
            detail=str(alert.get("message")),
            href="/model#drift-heading",
            link_text="See the drift",
        )
        # The most recent month beyond the limit; the model page lists every month.
        for alert in (drift.get("alerts") or [])[-1:]
        if drift.get("model_version") == model.version
    ]
    alerts += [
        Alert(
            kind="model",
            title="The risk model is miscalibrated for a group",
            detail=str(flag.get("message")),
            href="/model",
            link_text="See the model card",
        )
        for flag in (card.get("calibration_by_group") or {}).get("flags") or []
    ]
    for attribute, table in (card.get("fairness") or {}).items():
        if table.get("gap_flagged") and table.get("gap_beyond_noise"):
            alerts.append(
                Alert(
                    kind="model",
                    title="The risk model ranks one group much worse than another",
                    detail=(
                        f"By {_lower(FAIRNESS_LABELS.get(attribute, attribute))}, the best and "
                        f"worst groups' AUROC differ by {table['auroc_gap']:.3f} (limit "
                        f"{table['gap_limit']:.2f}), beyond what chance explains."
                    ),
                    href="/model",
                    link_text="See the model card",
                )
            )
    return alerts


def _lower(text: str) -> str:
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


__all__ = ["Alert", "Landing", "landing"]
