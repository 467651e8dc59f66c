"""Managers' analytics: DNA rates, impact against the randomised hold-out, outcome mix, reach
against DNA burden, and data quality, for a chosen period.

Every figure is computed from the records (appointments, the calls feature's trial record, the
contact log) by SQL aggregation in `repository`; this module turns counts into rates,
intervals and plain-words messages, and never invents a figure it cannot support: an empty
period, a period before the programme, a zero hold-out or a group too small each get a
message instead of a number.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.analytics import repository
from app.analytics.dimensions import DIMENSIONS, EQUITY_DIMENSIONS, Dimension, sources_of
from app.analytics.fairness import fairness
from app.analytics.periods import Period
from app.analytics.schemas import (
    ArmFigures,
    Column,
    Dashboard,
    DnaRatesReport,
    ImpactEstimate,
    ImpactReport,
    ModelExpected,
    PeriodOut,
    PerProtocol,
    Section,
    Table,
)
from app.analytics.stats import (
    LEFT_BEHIND_RATIO,
    SUPPRESSED_REASON,
    SUPPRESSION_THRESHOLD,
    funnel_flag,
    funnel_limits,
    newcombe_difference_interval,
    rate_with_interval,
    share_ratio_interval,
    wilson_interval,
)
from app.calls.tables import Arm, OutcomeKind
from app.db import dialect
from app.errors import NotReadyError
from app.settings import Settings
from app.sms.providers import delivery_tracked
from app.tasks.tables import TaskKind

DNA_DENOMINATOR = (
    "DNA rate = DNAs (attendance codes 3 and 7) divided by appointments with an attended or "
    "DNA outcome (codes 5, 6, 3 and 7), for appointments starting in the period. Cancelled "
    "(2, 4) and not-yet-known (0) appointments are left out. Rates built on fewer than "
    f"{SUPPRESSION_THRESHOLD} appointments are suppressed."
)
IMPACT_DENOMINATOR = (
    "Intention to treat: every eligible appointment starting in the period, in the arm it was "
    "randomised to (called or held out), whether or not the call reached the patient, with a "
    "known final outcome. Cancellations stay in the denominator, because turning a would-be "
    "DNA into a cancellation that frees the slot is part of what a call does."
)
IMPACT_METHOD = (
    "Avoided DNAs = (hold-out DNA rate - call-arm DNA rate) x call-arm appointments. The 95% "
    "interval of the difference is Newcombe's hybrid score interval (method 10, from the two "
    "Wilson intervals), scaled by the call-arm size. Savings = avoided DNAs x cost per DNA."
)
PER_PROTOCOL_LABEL = (
    "Per protocol, not randomised: appointments whose patient the call reached, against the "
    "whole hold-out. People who can be reached attend more anyway, so this overstates the "
    "effect; the intention-to-treat figure is the honest one."
)
MODEL_EXPECTED_LABEL = (
    "Model-based, not a measured effect: the risk model's calibrated risks at assignment, "
    "summed over appointments whose patient the call reached, minus the DNAs observed among "
    "them."
)
MIN_ARM_SIZE = SUPPRESSION_THRESHOLD

# Every outcome kind the calls feature records, in the words managers read.
OUTCOME_LABELS: dict[OutcomeKind, str] = {
    OutcomeKind.CONFIRMED: "Confirmed attendance",
    OutcomeKind.REBOOKED: "Rebooked",
    OutcomeKind.CANCELLED: "Cancelled (slot freed)",
    OutcomeKind.TRAVEL_COSTS: "Help with travel costs",
    OutcomeKind.PARKING: "Parking arranged",
    OutcomeKind.TRANSPORT: "Transport arranged",
    OutcomeKind.LONGER_APPOINTMENT: "Longer appointment",
    OutcomeKind.BSL_INTERPRETER: "BSL interpreter booked",
    OutcomeKind.SPOKEN_INTERPRETER: "Spoken-language interpreter booked",
    OutcomeKind.OTHER_ADJUSTMENT: "Other reasonable adjustment",
    OutcomeKind.DECLINED_HELP: "Declined help",
    OutcomeKind.UNREACHABLE: "Could not be reached",
}
# A cancellation or a rebooking releases the original slot for another patient.
SLOT_FREEING_OUTCOMES = (OutcomeKind.CANCELLED, OutcomeKind.REBOOKED)

RATE_COLUMNS = [
    Column(key="appointments", label="Appointments", format="count"),
    Column(key="dnas", label="DNAs", format="count"),
    Column(key="dna_rate", label="DNA rate", format="percent"),
    Column(key="ci_low", label="95% CI low", format="percent"),
    Column(key="ci_high", label="95% CI high", format="percent"),
    Column(key="note", label="Note"),
]


def today(settings: Settings, now: datetime) -> date:
    """The trust's local day at `now` (the default period ends here)."""
    return settings.calendar.today(now)


def period_out(period: Period) -> PeriodOut:
    return PeriodOut.model_validate(period.as_dict())


def _rate_cells(events: int, total: int) -> dict[str, Any]:
    rate = rate_with_interval(events, total)
    return {
        "appointments": rate.total,
        "dnas": rate.events,
        "dna_rate": rate.rate,
        "ci_low": rate.ci_low,
        "ci_high": rate.ci_high,
        "note": rate.reason or "",
    }


def _aggregate(
    dimension: Dimension, pairs: Iterable[tuple[Any, dict[str, int]]]
) -> list[tuple[str, dict[str, int]]]:
    """Fold raw SQL groups into the dimension's reporting groups, in reporting order."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for raw, counts in pairs:
        for label in dimension.groups(raw):
            for key, value in counts.items():
                totals[label][key] += value
    return [(label, dict(totals[label])) for label in sorted(totals, key=dimension.order)]


# --- DNA rates -----------------------------------------------------------------------------------


def appointment_cube(session: Session, settings: Settings, period: Period) -> repository.Grouped:
    """The one pass over the period's appointments that DNA rates and reach both read."""
    start, end = period.bounds(settings.calendar)
    return repository.appointment_cube(
        session,
        start=start,
        end=end,
        sources=[*sources_of(DIMENSIONS), "day"],
        timezone=settings.timezone,
        contact_lookback=contact_lookback(settings),
    )


def contact_lookback(settings: Settings) -> timedelta:
    """How long before an appointment its calls and reminders can be made: the calls window
    and the SMS reminder offsets (whichever features are configured), plus two weeks."""
    horizons = [
        settings.call_horizon_days,
        int(getattr(settings, "calls_window_end_days", 0)),
        *[int(days) for days in getattr(settings, "sms_reminder_offsets_days", [])],
    ]
    return timedelta(days=max(horizons) + 14)


def dna_rates(
    session: Session,
    settings: Settings,
    period: Period,
    cube: repository.Grouped | None = None,
) -> DnaRatesReport:
    dialect.tune_for_reporting(session)
    grouped = cube if cube is not None else appointment_cube(session, settings, period)
    days = sorted((repository.as_day(raw), counts) for raw, counts in grouped["day"])
    total = sum(counts["total"] for _, counts in days)
    if total == 0:
        raise NotReadyError(_no_outcomes_message(session, settings, period))
    dnas = sum(counts["dnas"] for _, counts in days)
    tables = [
        _time_table(
            "dna-rate-weekly", "DNA rate by week (weeks start on Monday)", days, _week, period
        ),
        _time_table("dna-rate-monthly", "DNA rate by month", days, _month, period),
    ]
    for dimension in DIMENSIONS.values():
        rows = [
            {"group": label, **_rate_cells(counts["dnas"], counts["total"])}
            for label, counts in _aggregate(dimension, grouped[dimension.source])
        ]
        note = None
        if dimension.slug == "communication-need":
            note = "A patient with several needs counts under each, so rows overlap."
        tables.append(
            Table(
                slug=f"dna-rate-by-{dimension.slug}",
                title=f"DNA rate by {_lower_first(dimension.title)}",
                note=note,
                columns=[Column(key="group", label=dimension.title), *RATE_COLUMNS],
                rows=rows,
            )
        )
    return DnaRatesReport(
        period=period_out(period),
        denominator=DNA_DENOMINATOR,
        overall=_rate_cells(dnas, total),
        tables=tables,
    )


def _lower_first(title: str) -> str:
    """'Age band' -> 'age band' inside a sentence; acronyms ('IMD 2019 decile') stay."""
    if len(title) > 1 and title[1].isupper():
        return title
    return title[0].lower() + title[1:]


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month(day: date) -> date:
    return day.replace(day=1)


def _time_table(
    slug: str,
    title: str,
    days: list[tuple[date, dict[str, int]]],
    bucket: Any,
    period: Period | None = None,
) -> Table:
    buckets: dict[date, dict[str, int]] = defaultdict(lambda: {"total": 0, "dnas": 0})
    for day, counts in days:
        buckets[bucket(day)]["total"] += counts["total"]
        buckets[bucket(day)]["dnas"] += counts["dnas"]
    rows = []
    for starting, c in sorted(buckets.items()):
        row = {"starting": starting.isoformat(), **_rate_cells(c["dnas"], c["total"])}
        partial = partial_note(starting, bucket, period)
        if partial:
            row["partial"] = True
            row["note"] = "; ".join(filter(None, [partial, row["note"]]))
        rows.append(row)
    return Table(
        slug=slug,
        title=title,
        note=PARTIAL_NOTE,
        columns=[Column(key="starting", label="Starting", format="date"), *RATE_COLUMNS],
        rows=rows,
    )


PARTIAL_NOTE = (
    "A week or month only partly inside the period is marked partial: its rate covers only "
    "the days inside, and charts leave it out rather than draw it beside whole ones."
)


def _bucket_end(starting: date, bucket: Any) -> date:
    if bucket is _month:
        return (starting.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starting + timedelta(days=7)


def partial_note(starting: date, bucket: Any, period: Period | None) -> str | None:
    """'partial: 3 of 7 days in the period' for a week (or month) cut by the period's ends."""
    if period is None:
        return None
    end = _bucket_end(starting, bucket)
    inside = (min(end, period.end) - max(starting, period.start)).days
    length = (end - starting).days
    if inside >= length:
        return None
    return f"partial: {inside} of {length} days in the period"


def _no_outcomes_message(session: Session, settings: Settings, period: Period) -> str:
    start, end = period.bounds(settings.calendar)
    counts = repository.appointment_counts(session, start=start, end=end)
    if counts["all"] == 0:
        first, last = repository.first_and_last_appointment(session)
        if first is None or last is None:
            return "There are no appointments on record yet: import a PAS extract first."
        return (
            f"No appointments start between {period.label()}. Appointments on record run from "
            f"{first:%-d %b %Y} to {last:%-d %b %Y}; choose a period in that range."
        )
    return (
        f"None of the {counts['all']} appointments between {period.label()} has an attended "
        "or DNA outcome yet, so there is no DNA rate to report. Choose an earlier period or "
        "import the latest outcomes."
    )


# --- Impact against the hold-out ---------------------------------------------------------------


def estimate_impact(
    *,
    call_appointments: int,
    call_dnas: int,
    holdout_appointments: int,
    holdout_dnas: int,
    calls_made: int,
    attempts: int,
    settings: Settings,
) -> ImpactEstimate:
    """Avoided DNAs and savings from the two arms' counts (intention to treat).

    Raises NotReadyError when there is no honest comparison: no hold-out at all, or an arm
    too small for an interval to mean anything.
    """
    if holdout_appointments == 0:
        raise NotReadyError(
            "No appointments were held out in this period (the hold-out share was zero), so "
            "there is no randomised comparison and no honest estimate of avoided DNAs. Keep a "
            "hold-out share above zero to measure impact."
        )
    if call_appointments == 0:
        raise NotReadyError(
            "No appointments in this period were assigned to the call arm with a known outcome, "
            "so there is no impact to measure."
        )
    if min(call_appointments, holdout_appointments) < MIN_ARM_SIZE:
        raise NotReadyError(
            f"Too few appointments to compare: {call_appointments} in the call arm and "
            f"{holdout_appointments} held out (at least {MIN_ARM_SIZE} in each are needed). "
            "Choose a longer period."
        )
    call_rate = call_dnas / call_appointments
    holdout_rate = holdout_dnas / holdout_appointments
    interval = newcombe_difference_interval(
        holdout_dnas, holdout_appointments, call_dnas, call_appointments
    )
    difference = holdout_rate - call_rate
    avoided = difference * call_appointments
    avoided_low = interval.low * call_appointments
    avoided_high = interval.high * call_appointments
    low_cost, high_cost = settings.analytics_cost_per_dna_low, settings.analytics_cost_per_dna_high
    navigator_cost = None
    if settings.analytics_navigator_hourly_cost is not None:
        navigator_cost = (
            attempts * settings.analytics_minutes_per_call / 60
        ) * settings.analytics_navigator_hourly_cost
    return ImpactEstimate(
        call_arm=_arm(call_dnas, call_appointments),
        holdout=_arm(holdout_dnas, holdout_appointments),
        difference=difference,
        difference_ci_low=interval.low,
        difference_ci_high=interval.high,
        avoided_dnas=avoided,
        avoided_ci_low=avoided_low,
        avoided_ci_high=avoided_high,
        cost_per_dna_low=low_cost,
        cost_per_dna_high=high_cost,
        savings_low=avoided * low_cost,
        savings_high=avoided * high_cost,
        savings_ci_low=avoided_low * low_cost,
        savings_ci_high=avoided_high * high_cost,
        calls_made=calls_made,
        attempts=attempts,
        navigator_cost=navigator_cost,
        net_savings_low=None if navigator_cost is None else avoided * low_cost - navigator_cost,
        net_savings_high=None if navigator_cost is None else avoided * high_cost - navigator_cost,
        method=IMPACT_METHOD,
    )


def _arm(dnas: int, appointments: int) -> ArmFigures:
    interval = wilson_interval(dnas, appointments)
    return ArmFigures(
        appointments=appointments,
        dnas=dnas,
        dna_rate=dnas / appointments,
        ci_low=interval.low,
        ci_high=interval.high,
    )


def impact(
    session: Session,
    settings: Settings,
    period: Period,
    activity: dict[str, int] | None = None,
    *,
    by_group: bool = True,
) -> ImpactReport:
    """The impact report for a period; NotReadyError with a plain message when there is none.

    `activity` (calls made, attempts) may be passed in when the caller has it already;
    `by_group=False` leaves out the weekly and by-group tables (one grouping instead of five,
    for the landing page's headline).
    """
    dialect.tune_for_reporting(session)
    first, _last = repository.programme_dates(session)
    if first is None:
        raise NotReadyError(
            "The call programme has not assigned any appointments to the call arm or the "
            "hold-out yet, so there is no impact to measure."
        )
    if period.end <= first:
        raise NotReadyError(
            f"This period ({period.label()}) ends before the programme started on "
            f"{first:%-d %b %Y}. Choose a period that includes days after the programme began."
        )
    start, end = period.bounds(settings.calendar)
    grouped = repository.arm_counts(
        session,
        start=start,
        end=end,
        sources_wanted=[*sources_of(EQUITY_DIMENSIONS), "day"] if by_group else [],
        timezone=settings.timezone,
    )
    arms = {key[0] if isinstance(key, tuple) else key: counts for key, counts in grouped["overall"]}
    call = arms.get(Arm.CALL, {})
    holdout = arms.get(Arm.HOLDOUT, {})
    if not call and not holdout:
        raise NotReadyError(
            f"No appointment assigned to the programme between {period.label()} has a known "
            "outcome yet. Impact can be measured once outcomes are imported."
        )
    if activity is None:
        activity = repository.call_activity(session, start=start, end=end)
    estimate = estimate_impact(
        call_appointments=call.get("total", 0),
        call_dnas=call.get("dnas", 0),
        holdout_appointments=holdout.get("total", 0),
        holdout_dnas=holdout.get("dnas", 0),
        calls_made=activity["calls_made"],
        attempts=activity["attempts"],
        settings=settings,
    )
    model_expected, model_message = _model_expected(call)
    tables = [_impact_headline_table(estimate)]
    if by_group:
        tables.append(_arms_over_time(grouped["day"], period))
        for slug in EQUITY_DIMENSIONS:
            tables.append(_impact_by_group(DIMENSIONS[slug], grouped[DIMENSIONS[slug].source]))
    return ImpactReport(
        period=period_out(period),
        programme_start=first.isoformat(),
        denominator=IMPACT_DENOMINATOR,
        estimate=estimate,
        per_protocol=_per_protocol(call, holdout),
        model_expected=model_expected,
        model_expected_message=model_message,
        tables=tables,
    )


def _per_protocol(call: dict[str, int], holdout: dict[str, int]) -> PerProtocol:
    reached, reached_dnas = call.get("reached", 0), call.get("reached_dnas", 0)
    holdout_rate = holdout["dnas"] / holdout["total"]
    if reached < MIN_ARM_SIZE:
        return PerProtocol(
            label=PER_PROTOCOL_LABEL,
            reached=reached,
            reached_dnas=reached_dnas,
            reached_dna_rate=None,
            holdout_dna_rate=holdout_rate,
            difference=None,
            difference_ci_low=None,
            difference_ci_high=None,
        )
    interval = newcombe_difference_interval(
        holdout["dnas"], holdout["total"], reached_dnas, reached
    )
    return PerProtocol(
        label=PER_PROTOCOL_LABEL,
        reached=reached,
        reached_dnas=reached_dnas,
        reached_dna_rate=reached_dnas / reached,
        holdout_dna_rate=holdout_rate,
        difference=holdout_rate - reached_dnas / reached,
        difference_ci_low=interval.low,
        difference_ci_high=interval.high,
    )


def _model_expected(call: dict[str, int]) -> tuple[ModelExpected | None, str | None]:
    with_risk = call.get("reached_with_risk", 0)
    if with_risk == 0:
        return None, (
            "No model-based estimate: none of the reached appointments had a risk score at "
            "assignment."
        )
    expected = call.get("reached_risk_micro", 0) / 1_000_000
    observed = call.get("reached_with_risk_dnas", 0)
    return (
        ModelExpected(
            label=MODEL_EXPECTED_LABEL,
            appointments=with_risk,
            expected_dnas=expected,
            observed_dnas=observed,
            avoided_dnas=expected - observed,
        ),
        None,
    )


def _impact_headline_table(estimate: ImpactEstimate) -> Table:
    rows = [
        {"arm": "Call arm (offered a navigator call)", **estimate.call_arm.model_dump()},
        {"arm": "Hold-out (standard reminders only)", **estimate.holdout.model_dump()},
    ]
    return Table(
        slug="impact-arms",
        title="DNA rate by randomised arm (intention to treat)",
        note=IMPACT_DENOMINATOR,
        columns=[
            Column(key="arm", label="Arm"),
            Column(key="appointments", label="Appointments", format="count"),
            Column(key="dnas", label="DNAs", format="count"),
            Column(key="dna_rate", label="DNA rate", format="percent"),
            Column(key="ci_low", label="95% CI low", format="percent"),
            Column(key="ci_high", label="95% CI high", format="percent"),
        ],
        rows=rows,
    )


IMPACT_GROUP_COLUMNS = [
    Column(key="call_appointments", label="Call arm appointments", format="count"),
    Column(key="call_dna_rate", label="Call arm DNA rate", format="percent"),
    Column(key="holdout_appointments", label="Hold-out appointments", format="count"),
    Column(key="holdout_dna_rate", label="Hold-out DNA rate", format="percent"),
    Column(key="difference", label="Difference (hold-out - call)", format="percent"),
    Column(key="difference_ci_low", label="95% CI low", format="percent"),
    Column(key="difference_ci_high", label="95% CI high", format="percent"),
    Column(key="avoided_dnas", label="Avoided DNAs", format="number"),
    Column(key="avoided_ci_low", label="Avoided 95% CI low", format="number"),
    Column(key="avoided_ci_high", label="Avoided 95% CI high", format="number"),
    Column(key="note", label="Note"),
]


def _impact_by_group(dimension: Dimension, pairs: list[tuple[Any, dict[str, int]]]) -> Table:
    by_arm: dict[str, list[tuple[Any, dict[str, int]]]] = defaultdict(list)
    for key, counts in pairs:
        arm, *raw = key
        by_arm[str(arm)].append((raw[0] if len(raw) == 1 else tuple(raw), counts))
    call = dict(_aggregate(dimension, by_arm[Arm.CALL]))
    holdout = dict(_aggregate(dimension, by_arm[Arm.HOLDOUT]))
    rows = []
    for label in sorted(set(call) | set(holdout), key=dimension.order):
        c, h = call.get(label, {}), holdout.get(label, {})
        rows.append({"group": label, **_group_effect(c, h)})
    return Table(
        slug=f"impact-by-{dimension.slug}",
        title=f"Impact by {_lower_first(dimension.title)}",
        note=(
            "Intention to treat within each group. Groups with fewer than "
            f"{MIN_ARM_SIZE} appointments in either arm are suppressed."
        ),
        columns=[Column(key="group", label=dimension.title), *IMPACT_GROUP_COLUMNS],
        rows=rows,
    )


def _group_effect(call: dict[str, int], holdout: dict[str, int]) -> dict[str, Any]:
    n_c, n_h = call.get("total", 0), holdout.get("total", 0)
    if min(n_c, n_h) < MIN_ARM_SIZE:
        return {column.key: None for column in IMPACT_GROUP_COLUMNS} | {
            "note": f"fewer than {MIN_ARM_SIZE} appointments in an arm: suppressed"
        }
    d_c, d_h = call.get("dnas", 0), holdout.get("dnas", 0)
    interval = newcombe_difference_interval(d_h, n_h, d_c, n_c)
    difference = d_h / n_h - d_c / n_c
    return {
        "call_appointments": n_c,
        "call_dna_rate": d_c / n_c,
        "holdout_appointments": n_h,
        "holdout_dna_rate": d_h / n_h,
        "difference": difference,
        "difference_ci_low": interval.low,
        "difference_ci_high": interval.high,
        "avoided_dnas": difference * n_c,
        "avoided_ci_low": interval.low * n_c,
        "avoided_ci_high": interval.high * n_c,
        "note": "",
    }


def _arms_over_time(pairs: list[tuple[Any, dict[str, int]]], period: Period | None = None) -> Table:
    weeks: dict[date, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"total": 0, "dnas": 0})
    )
    for (arm, raw_day), counts in pairs:
        week = _week(repository.as_day(raw_day))
        weeks[week][str(arm)]["total"] += counts["total"]
        weeks[week][str(arm)]["dnas"] += counts["dnas"]
    rows = []
    for week, arms in sorted(weeks.items()):
        row: dict[str, Any] = {"week": week.isoformat()}
        notes = []
        for arm, prefix in ((Arm.CALL, "call"), (Arm.HOLDOUT, "holdout")):
            rate = rate_with_interval(arms[arm]["dnas"], arms[arm]["total"])
            row |= {
                f"{prefix}_appointments": rate.total,
                f"{prefix}_dna_rate": rate.rate,
                f"{prefix}_ci_low": rate.ci_low,
                f"{prefix}_ci_high": rate.ci_high,
            }
            if rate.suppressed:
                notes.append(f"{prefix.replace('holdout', 'hold-out')}: {rate.reason}")
        partial = partial_note(week, _week, period)
        if partial:
            row["partial"] = True
            notes.insert(0, partial)
        row["note"] = "; ".join(notes)
        rows.append(row)
    return Table(
        slug="impact-over-time",
        title="DNA rate by week: call arm and hold-out",
        note=PARTIAL_NOTE,
        columns=[
            Column(key="week", label="Week starting", format="date"),
            Column(key="call_appointments", label="Call arm appointments", format="count"),
            Column(key="call_dna_rate", label="Call arm DNA rate", format="percent"),
            Column(key="call_ci_low", label="Call 95% CI low", format="percent"),
            Column(key="call_ci_high", label="Call 95% CI high", format="percent"),
            Column(key="holdout_appointments", label="Hold-out appointments", format="count"),
            Column(key="holdout_dna_rate", label="Hold-out DNA rate", format="percent"),
            Column(key="holdout_ci_low", label="Hold-out 95% CI low", format="percent"),
            Column(key="holdout_ci_high", label="Hold-out 95% CI high", format="percent"),
            Column(key="note", label="Note"),
        ],
        rows=rows,
    )


# --- Outcome mix and reach -----------------------------------------------------------------------


OUTCOME_MIX_DIMENSIONS = (*EQUITY_DIMENSIONS, "sex", "communication-need")


def calls_cube(session: Session, settings: Settings, period: Period) -> repository.Grouped:
    start, end = period.bounds(settings.calendar)
    return repository.calls_by_dimension(
        session,
        start=start,
        end=end,
        sources_wanted=sources_of(OUTCOME_MIX_DIMENSIONS),
        timezone=settings.timezone,
    )


def call_totals(grouped: repository.Grouped) -> dict[str, int]:
    """Period totals of the calls cube (every call has exactly one sex)."""
    return _totals(_aggregate(DIMENSIONS["sex"], grouped["sex"]))


def outcome_mix(
    session: Session,
    settings: Settings,
    period: Period,
    cube: repository.Grouped | None = None,
) -> Section:
    dialect.tune_for_reporting(session)
    grouped = cube if cube is not None else calls_cube(session, settings, period)
    activity = call_totals(grouped)
    if activity.get("calls", 0) == 0:
        return Section(
            available=False,
            message=f"No navigator calls covered appointments between {period.label()}.",
        )
    outcomes = {kind: activity.get(f"has_{kind}", 0) for kind in OUTCOME_LABELS}
    made = activity["calls_made"]
    summary_rows: list[dict[str, Any]] = [
        {"measure": "Calls queued", "count": activity["calls"], "share": None},
        {"measure": "Calls made (at least one attempt)", "count": made, "share": None},
        {
            "measure": "Patients reached",
            "count": activity["reached"],
            "share": activity["reached"] / made if made else None,
        },
        {
            "measure": "Unreachable after all attempts",
            "count": activity["unreachable"],
            "share": activity["unreachable"] / made if made else None,
        },
        {"measure": "Call attempts", "count": activity["attempts"], "share": None},
        {"measure": "Wrong numbers found", "count": activity["wrong_numbers"], "share": None},
    ]
    reached = activity["reached"]
    for kind, label in OUTCOME_LABELS.items():
        count = outcomes.get(kind, 0)
        summary_rows.append(
            {"measure": label, "count": count, "share": count / reached if reached else None}
        )
    freed = sum(outcomes.get(kind, 0) for kind in SLOT_FREEING_OUTCOMES)
    summary_rows.append(
        {
            "measure": "Calls that freed a slot (cancelled or rebooked)",
            "count": freed,
            "share": freed / reached if reached else None,
        }
    )
    start, end = period.bounds(settings.calendar)
    confirmed = repository.pas_confirmed_requests(
        session, start=start, end=end, timezone=settings.timezone
    )
    summary_rows.append(
        {"measure": "Rebookings confirmed by the PAS", "count": confirmed["rebookings_confirmed"],
         "share": None}
    )  # fmt: skip
    summary_rows.append(
        {"measure": "Freed slots refilled (same clinic session)",
         "count": confirmed["slots_refilled"], "share": None}
    )  # fmt: skip
    tables = [
        Table(
            slug="outcome-mix",
            title="Calls and their outcomes",
            note=(
                "Calls covering call-arm appointments starting in the period. Reach = reached / "
                "calls made; an outcome's share is per patient reached (a call can have several "
                "outcomes)."
            ),
            columns=[
                Column(key="measure", label="Measure"),
                Column(key="count", label="Count", format="count"),
                Column(key="share", label="Share", format="percent"),
            ],
            rows=summary_rows,
        )
    ]
    for slug in OUTCOME_MIX_DIMENSIONS:
        dimension = DIMENSIONS[slug]
        rows = []
        for label, counts in _aggregate(dimension, grouped[dimension.source]):
            rows.append({"group": label, **_outcome_cells(counts)})
        tables.append(
            Table(
                slug=f"outcome-mix-by-{slug}",
                title=f"Calls, reach and outcomes by {_lower_first(dimension.title)}",
                note=f"Groups with fewer than {SUPPRESSION_THRESHOLD} calls are suppressed.",
                columns=[Column(key="group", label=dimension.title), *OUTCOME_GROUP_COLUMNS],
                rows=rows,
            )
        )
    return Section(available=True, tables=tables)


OUTCOME_GROUP_COLUMNS = [
    Column(key="calls_made", label="Calls made", format="count"),
    Column(key="reached", label="Reached", format="count"),
    Column(key="reach_rate", label="Reach rate", format="percent"),
    Column(key="rebooked", label="Rebooked", format="count"),
    Column(key="cancelled", label="Cancelled", format="count"),
    Column(key="travel_support", label="Travel, parking or transport", format="count"),
    Column(key="interpreters", label="Interpreters", format="count"),
    Column(key="longer_appointment", label="Longer appointments", format="count"),
    Column(key="note", label="Note"),
]


def _outcome_cells(counts: dict[str, int]) -> dict[str, Any]:
    made = counts["calls_made"]
    if counts["calls"] < SUPPRESSION_THRESHOLD:
        return {column.key: None for column in OUTCOME_GROUP_COLUMNS} | {
            "note": f"fewer than {SUPPRESSION_THRESHOLD} calls: suppressed"
        }
    return {
        "calls_made": made,
        "reached": counts["reached"],
        "reach_rate": counts["reached"] / made if made else None,
        "rebooked": counts["has_rebooked"],
        "cancelled": counts["has_cancelled"],
        "travel_support": counts["has_travel_costs"]
        + counts["has_parking"]
        + counts["has_transport"],
        "interpreters": counts["has_bsl_interpreter"] + counts["has_spoken_interpreter"],
        "longer_appointment": counts["has_longer_appointment"],
        "note": "",
    }


REACH_COLUMNS = [
    Column(key="appointments", label="Appointments", format="count"),
    Column(key="share_of_appointments", label="Share of appointments", format="percent"),
    Column(key="dnas", label="DNAs", format="count"),
    Column(key="share_of_dnas", label="Share of DNAs", format="percent"),
    Column(key="called_rate", label="Called", format="percent"),
    Column(key="reached_rate", label="Reached by a call", format="percent"),
    Column(key="share_of_reached", label="Share of those reached", format="percent"),
    Column(key="sms_rate", label="SMS delivered", format="percent"),
    Column(key="reach_to_burden", label="Reach share / DNA share", format="ratio"),
    Column(key="ratio_ci_low", label="Ratio 95% CI low", format="ratio"),
    Column(key="ratio_ci_high", label="Ratio 95% CI high", format="ratio"),
    Column(key="note", label="Note"),
]
REACH_DIMENSIONS = (*EQUITY_DIMENSIONS, "sex", "communication-need", "learning-disability")
LEFT_BEHIND_RULE = (
    "A group is flagged as left behind when its share of patients reached by a call divided by "
    f"its share of DNAs is under {LEFT_BEHIND_RATIO}, decided on the unrounded ratio (shown "
    "to two decimals, with its 95% interval by the log method); groups that are not people at "
    "risk (no recorded need) are never flagged."
)


def reach(
    session: Session,
    settings: Settings,
    period: Period,
    cube: repository.Grouped | None = None,
    *,
    dimensions: Iterable[str] = REACH_DIMENSIONS,
) -> Section:
    """Who gets left behind: each group's share of those reached against its share of DNAs."""
    dialect.tune_for_reporting(session)
    grouped = cube if cube is not None else appointment_cube(session, settings, period)
    sms_tracked = delivery_tracked(settings)
    columns = [
        column.model_copy(update={"missing": "not tracked"})
        if column.key == "sms_rate" and not sms_tracked
        else column
        for column in REACH_COLUMNS
    ]
    sms_note = (
        ""
        if sms_tracked
        else f" SMS deliveries are not tracked by the {settings.sms_provider} provider."
    )
    tables = []
    for slug in dimensions:
        dimension = DIMENSIONS[slug]
        groups = _aggregate(dimension, grouped[dimension.source])
        if slug == "communication-need":
            # Overlapping rows: shares are of the whole period, taken from another dimension.
            totals = _totals(_aggregate(DIMENSIONS["sex"], grouped["sex"]))
        else:
            totals = _totals(groups)
        if totals["appointments"] == 0:
            return Section(
                available=False, message=f"No appointments start between {period.label()}."
            )
        rows = [
            {"group": label, **_reach_cells(label, counts, totals, sms_tracked=sms_tracked)}
            for label, counts in groups
        ]
        tables.append(
            Table(
                slug=f"reach-by-{slug}",
                title=f"Who is reached, against DNA burden, by {_lower_first(dimension.title)}",
                note=(
                    "Appointments starting in the period; calls and SMS from the contact log. "
                    + LEFT_BEHIND_RULE
                    + sms_note
                ),
                columns=[Column(key="group", label=dimension.title), *columns],
                rows=rows,
            )
        )
    return Section(available=True, tables=tables)


def _totals(groups: list[tuple[str, dict[str, int]]]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for _, counts in groups:
        for key, value in counts.items():
            totals[key] += value
    return dict(totals) | {"appointments": totals.get("appointments", 0)}


NOT_AT_RISK_GROUPS = frozenset({"No recorded need"})


def _reach_cells(
    label: str, counts: dict[str, int], totals: dict[str, int], *, sms_tracked: bool = True
) -> dict[str, Any]:
    n = counts["appointments"]
    if n < SUPPRESSION_THRESHOLD:
        return {column.key: None for column in REACH_COLUMNS} | {
            "note": SUPPRESSED_REASON,
            "left_behind": False,
        }
    dna_share = counts["dnas"] / totals["dnas"] if totals.get("dnas") else None
    reached_share = counts["reached"] / totals["reached"] if totals.get("reached") else None
    ratio = ratio_low = ratio_high = None
    if dna_share and reached_share is not None:
        ratio = reached_share / dna_share
        interval = share_ratio_interval(
            counts["reached"], totals["reached"], counts["dnas"], totals["dnas"]
        )
        ratio_low, ratio_high = interval.low, interval.high
    at_risk = label not in NOT_AT_RISK_GROUPS
    left_behind = ratio is not None and ratio < LEFT_BEHIND_RATIO and at_risk
    notes = []
    if left_behind and ratio is not None and ratio_high is not None:
        notes.append(f"left behind: ratio {ratio:.3f} is under {LEFT_BEHIND_RATIO}")
        if ratio_high >= LEFT_BEHIND_RATIO:
            notes.append("its interval reaches the threshold, so chance may explain it")
    elif not at_risk:
        notes.append("not people at risk: never flagged")
    if not sms_tracked:
        notes.append("SMS delivery not tracked")
    return {
        "appointments": n,
        "share_of_appointments": n / totals["appointments"],
        "dnas": counts["dnas"],
        "share_of_dnas": dna_share,
        "called_rate": counts["called"] / n,
        "reached_rate": counts["reached"] / n,
        "share_of_reached": reached_share,
        "sms_rate": counts["sms_delivered"] / n if sms_tracked else None,
        "reach_to_burden": ratio,
        "ratio_ci_low": ratio_low,
        "ratio_ci_high": ratio_high,
        "left_behind": left_behind,
        "note": "; ".join(notes),
    }


# --- Data quality ----------------------------------------------------------------------------


FUNNEL_COLUMNS = [
    Column(key="patients", label="Patients seen", format="count"),
    Column(key="unrecorded", label="Ethnicity Z or 99", format="count"),
    Column(key="share", label="Share Z or 99", format="percent"),
    Column(key="trust_share", label="Trust average", format="percent"),
    Column(key="lower_95", label="95% lower limit", format="percent"),
    Column(key="upper_95", label="95% upper limit", format="percent"),
    Column(key="lower_998", label="99.8% lower limit", format="percent"),
    Column(key="upper_998", label="99.8% upper limit", format="percent"),
    Column(key="flag", label="Funnel plot"),
]


def data_quality(
    session: Session,
    settings: Settings,
    period: Period,
    calls: repository.Grouped | None = None,
) -> Section:
    dialect.tune_for_reporting(session)
    start, end = period.bounds(settings.calendar)
    clinics, details = repository.recording_quality(session, start=start, end=end)
    if details["patients"] == 0:
        return Section(available=False, message=f"No appointments start between {period.label()}.")
    trust_share = details["unrecorded"] / details["patients"]
    by_specialty: dict[str | None, dict[str, int]] = defaultdict(
        lambda: {"patients": 0, "unrecorded": 0}
    )
    for _code, specialty, counts in clinics:
        by_specialty[specialty]["patients"] += counts["patients"]
        by_specialty[specialty]["unrecorded"] += counts["unrecorded"]
    recording: dict[str, list[tuple[Any, dict[str, int]]]] = {
        "clinic": [(code, counts) for code, _specialty, counts in clinics],
        "specialty": list(by_specialty.items()),
    }
    tables = []
    for source, title, labeller in (
        ("clinic", "Clinic", DIMENSIONS["clinic"]),
        ("specialty", "Specialty", DIMENSIONS["specialty"]),
    ):
        rows = []
        for label, counts in _aggregate(labeller, recording[source]):
            limits = funnel_limits(trust_share, counts["patients"])
            share = counts["unrecorded"] / counts["patients"]
            rows.append(
                {
                    "unit": label,
                    "patients": counts["patients"],
                    "unrecorded": counts["unrecorded"],
                    "share": share,
                    "trust_share": trust_share,
                    "lower_95": limits.lower95,
                    "upper_95": limits.upper95,
                    "lower_998": limits.lower998,
                    "upper_998": limits.upper998,
                    "flag": funnel_flag(share, limits),
                }
            )
        tables.append(
            Table(
                slug=f"ethnicity-recording-by-{source}",
                title=f"Ethnicity not stated (Z) or not known (99) by {title.lower()}",
                note=(
                    "Distinct patients with an appointment in the period at each clinic (a "
                    "specialty sums its clinics, so a patient seen in two of its clinics counts "
                    "twice). Control limits "
                    "around the trust average by volume (funnel plot, 95% and 99.8%): 'alarm' "
                    "is outside 99.8%, 'alert' outside 95%. Units are not suppressed: the "
                    "figure is about recording practice, not about patients."
                ),
                columns=[Column(key="unit", label=title), *FUNNEL_COLUMNS],
                rows=rows,
            )
        )
    raised = repository.tasks_raised(session, start=start, end=end)
    wrong = raised.get(TaskKind.DATA_QUALITY, {}).get("raised", 0)
    wrong_numbers = call_totals(
        calls if calls is not None else calls_cube(session, settings, period)
    ).get("wrong_numbers", 0)
    patients = details["patients"]
    detail_rows = [
        ("No phone number at all", details["no_phone"]),
        ("No usable mobile (no SMS reminders)", details["no_mobile"]),
        ("Mobile number given but invalid", details["invalid_mobile"]),
        ("Landline number given but invalid", details["invalid_landline"]),
        ("No LSOA (deprivation unknown)", details["no_lsoa"]),
        ("LSOA not recognised in IMD 2019", details["unknown_lsoa"]),
    ]
    tables.append(
        Table(
            slug="contact-details",
            title="Contact details and LSOAs of patients seen",
            note=f"Of {patients} distinct patients with an appointment in the period.",
            columns=[
                Column(key="measure", label="Problem"),
                Column(key="patients", label="Patients", format="count"),
                Column(key="share", label="Share", format="percent"),
            ],
            rows=[
                {
                    "measure": label,
                    "patients": count,
                    "share": count / patients if patients else None,
                }
                for label, count in detail_rows
            ]
            + [
                {
                    "measure": "Wrong numbers found by navigators (call attempts)",
                    "patients": wrong_numbers,
                    "share": None,
                },
                {
                    "measure": "Data-quality follow-ups raised for navigators",
                    "patients": wrong,
                    "share": None,
                },
            ],
        )
    )
    tables.append(_tasks_table(raised, period))
    return Section(available=True, tables=tables)


TASK_LABELS: dict[TaskKind, str] = {
    TaskKind.CANCEL_REQUEST: "Patient asked to cancel (by SMS)",
    TaskKind.REBOOK_REQUEST: "Patient asked to rebook (by SMS)",
    TaskKind.READ_REPLY: "SMS reply for a person to read",
    TaskKind.CONFIRMED_NOTE: "Patient confirmed by SMS (a note)",
    TaskKind.DATA_QUALITY: "Contact details found wrong",
    TaskKind.BOOKING_OVERDUE: "Rebooking or cancellation not yet in the PAS",
    TaskKind.SEND_LETTER: "Letter to send (no usable phone)",
}


def _tasks_table(raised: dict[str, dict[str, int]], period: Period) -> Table:
    rows: list[dict[str, Any]] = [
        {"kind": TASK_LABELS[kind], **raised.get(kind, {"raised": 0, "open": 0})}
        for kind in TaskKind
    ]
    rows.append(
        {
            "kind": "All follow-up tasks",
            "raised": sum(row["raised"] for row in rows),
            "open": sum(row["open"] for row in rows),
        }
    )
    return Table(
        slug="follow-up-tasks",
        title="Follow-up tasks raised for navigators",
        note=(
            f"Tasks created between {period.label()} (the tasks table itself, every kind), and "
            "how many of those are still open."
        ),
        columns=[
            Column(key="kind", label="Task"),
            Column(key="raised", label="Raised", format="count"),
            Column(key="open", label="Still open", format="count"),
        ],
        rows=rows,
    )


def tasks_raised_total(board: Dashboard) -> int | None:
    for table in board.data_quality.tables:
        if table.slug == "follow-up-tasks":
            return int(table.rows[-1]["raised"])
    return None


# --- The dashboard ----------------------------------------------------------------------------


def dashboard(session: Session, settings: Settings, period: Period) -> Dashboard:
    """Everything a manager sees for a period. Raises NotReadyError only when the period has no
    appointment with an outcome at all; a missing impact estimate is a message, not an error."""
    dialect.tune_for_reporting(session)
    cube = appointment_cube(session, settings, period)
    rates = dna_rates(session, settings, period, cube)
    calls = calls_cube(session, settings, period)
    impact_report: ImpactReport | None = None
    impact_message = None
    try:
        impact_report = impact(session, settings, period, call_totals(calls))
    except NotReadyError as error:
        impact_message = error.message
    reach_section = reach(session, settings, period, cube)
    return Dashboard(
        period=period_out(period),
        dna_rates=Section(available=True, tables=rates.tables, message=rates.denominator),
        impact=impact_report,
        impact_message=impact_message,
        outcomes=outcome_mix(session, settings, period, calls),
        reach=reach_section,
        data_quality=data_quality(session, settings, period, calls),
        fairness=fairness(session, reach_section),
        overall=rates.overall,
    )


def all_tables(board: Dashboard) -> list[Table]:
    tables = list(board.dna_rates.tables)
    if board.impact is not None:
        tables += board.impact.tables
    tables += board.outcomes.tables + board.reach.tables + board.data_quality.tables
    if board.fairness is not None:
        tables += board.fairness.tables
    return tables
