"""Server-side SVG charts: accessible (role="img", a title and a description), no script, no
inline style (the pages' Content-Security-Policy forbids both), and always drawn from a
`Table` that the page shows beside the chart, so nothing is only in a picture.

Colours are from the NHS identity palette and every series is also told apart by shape or
label, never by colour alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from app.analytics.schemas import Table
from app.analytics.stats import funnel_limits

NHS_BLUE = "#005eb8"
NHS_DARK_BLUE = "#003087"
NHS_ORANGE = "#ed8b00"
NHS_DARK_GREY = "#425563"
NHS_MID_GREY = "#768692"
NHS_PALE_GREY = "#e8edee"
NHS_RED = "#da291c"
NHS_WARM_YELLOW = "#ffb81c"
FONT = 'font-family="Frutiger W01, Arial, sans-serif"'

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float | None  # None: suppressed or not available
    low: float | None = None
    high: float | None = None


def _frame(width: int, height: int, title: str, description: str, body: str) -> Markup:
    number = next(_ids)
    title_id, desc_id = f"chart-title-{number}", f"chart-desc-{number}"
    # Every interpolated text is escaped; the rest is markup built here from numbers.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" class="analytics-chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="{title_id} {desc_id}">'
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(description)}</desc>{body}</svg>'
    )


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 0.1
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    description: str,
    percent: bool = True,
    reference: float | None = None,
    reference_label: str = "Overall",
) -> Markup:
    """Horizontal bars with optional 95% interval whiskers and a dashed reference line."""
    label_width, bar_area, row = 250, 420, 28
    width = label_width + bar_area + 90
    height = 40 + row * max(len(bars), 1) + 30
    top = max([bar.high or bar.value or 0.0 for bar in bars] + [reference or 0.0, 0.0])
    scale_max = _nice_max(top * 1.05)

    def x(value: float) -> float:
        return label_width + bar_area * min(value, scale_max) / scale_max

    fmt = _percent if percent else (lambda value: f"{value:,.0f}")
    parts = []
    for tick in range(5):
        value = scale_max * tick / 4
        parts.append(
            f'<line x1="{x(value):.1f}" y1="30" x2="{x(value):.1f}" y2="{height - 30}" '
            f'stroke="{NHS_PALE_GREY}"/>'
            f'<text x="{x(value):.1f}" y="{height - 12}" text-anchor="middle" font-size="12" '
            f'{FONT} fill="{NHS_DARK_GREY}">{escape(fmt(value))}</text>'
        )
    for index, bar in enumerate(bars):
        y = 40 + index * row
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 14}" text-anchor="end" font-size="13" {FONT} '
            f'fill="#212b32">{escape(bar.label[:38])}</text>'
        )
        if bar.value is None:
            parts.append(
                f'<text x="{label_width + 4}" y="{y + 14}" font-size="12" {FONT} '
                f'fill="{NHS_DARK_GREY}">suppressed (too few)</text>'
            )
            continue
        parts.append(
            f'<rect x="{label_width}" y="{y + 2}" width="{x(bar.value) - label_width:.1f}" '
            f'height="{row - 10}" fill="{NHS_BLUE}"/>'
        )
        end = x(bar.value)
        if bar.low is not None and bar.high is not None:
            mid = y + 2 + (row - 10) / 2
            parts.append(
                f'<line x1="{x(bar.low):.1f}" y1="{mid:.1f}" x2="{x(bar.high):.1f}" '
                f'y2="{mid:.1f}" stroke="{NHS_DARK_BLUE}" stroke-width="2"/>'
                f'<line x1="{x(bar.low):.1f}" y1="{mid - 6:.1f}" x2="{x(bar.low):.1f}" '
                f'y2="{mid + 6:.1f}" stroke="{NHS_DARK_BLUE}" stroke-width="2"/>'
                f'<line x1="{x(bar.high):.1f}" y1="{mid - 6:.1f}" x2="{x(bar.high):.1f}" '
                f'y2="{mid + 6:.1f}" stroke="{NHS_DARK_BLUE}" stroke-width="2"/>'
            )
            end = max(end, x(bar.high))
        parts.append(
            f'<text x="{end + 6:.1f}" y="{y + 14}" font-size="12" {FONT} '
            f'fill="#212b32">{escape(fmt(bar.value))}</text>'
        )
    if reference is not None:
        parts.append(
            f'<line x1="{x(reference):.1f}" y1="30" x2="{x(reference):.1f}" y2="{height - 30}" '
            f'stroke="{NHS_ORANGE}" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{x(reference):.1f}" y="22" text-anchor="middle" font-size="12" {FONT} '
            f'fill="{NHS_DARK_GREY}">{escape(reference_label)} {escape(fmt(reference))}</text>'
        )
    return _frame(width, height, title, description, "".join(parts))


def rate_bars(table: Table, *, title: str, overall: float | None = None) -> Markup:
    """Bars with whiskers from a DNA-rate table (columns group, dna_rate, ci_low, ci_high)."""
    bars = [
        Bar(str(row["group"]), row["dna_rate"], row["ci_low"], row["ci_high"]) for row in table.rows
    ]
    shown = [bar for bar in bars if bar.value is not None]
    highest = max(shown, key=lambda bar: bar.value or 0.0, default=None)
    description = (
        f"DNA rate with 95% confidence intervals for {len(bars)} groups. "
        + (
            f"Highest: {highest.label} at {_percent(highest.value or 0.0)}. "
            if highest is not None
            else ""
        )
        + "The table below the chart gives every figure."
    )
    return bar_chart(bars, title=title, description=description, reference=overall)


def outcome_bars(table: Table) -> Markup:
    rows = [row for row in table.rows if row.get("count") is not None]
    bars = [Bar(str(row["measure"]), float(row["count"])) for row in rows]
    description = "Counts of calls and of each call outcome. The table below gives every figure."
    return bar_chart(bars, title=table.title, description=description, percent=False)


def arms_over_time(table: Table) -> Markup:
    """Weekly DNA rate of the call arm (circles, solid) and the hold-out (squares, dashed)."""
    width, height, left, right, top, bottom = 760, 340, 60, 20, 40, 60
    # A week only partly inside the period is in the table, marked, but not drawn beside
    # whole weeks (a few days' appointments read as a real dip or spike).
    rows = [row for row in table.rows if not row.get("partial")]
    left_out = len(table.rows) - len(rows)
    values = [
        row[key]
        for row in rows
        for key in ("call_ci_high", "holdout_ci_high", "call_dna_rate", "holdout_dna_rate")
        if row.get(key) is not None
    ]
    scale_max = _nice_max(max(values, default=0.1) * 1.05)
    count = max(len(rows), 1)

    def x(index: int) -> float:
        return left + (width - left - right) * (index + 0.5) / count

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - value / scale_max)

    parts = []
    for tick in range(5):
        value = scale_max * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y(value):.1f}" x2="{width - right}" y2="{y(value):.1f}" '
            f'stroke="{NHS_PALE_GREY}"/><text x="{left - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end" font-size="12" {FONT} fill="{NHS_DARK_GREY}">'
            f"{_percent(value)}</text>"
        )
    for index, row in enumerate(rows):
        parts.append(
            f'<text x="{x(index):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
            f'font-size="11" {FONT} fill="{NHS_DARK_GREY}">{_short_day(str(row["week"]))}</text>'
        )
    series = (
        ("call", NHS_BLUE, "", -5, "circle"),
        ("holdout", NHS_ORANGE, ' stroke-dasharray="6 4"', 5, "square"),
    )
    for prefix, colour, dash, shift, shape in series:
        points = []
        for index, row in enumerate(rows):
            rate = row.get(f"{prefix}_dna_rate")
            if rate is None:
                continue
            cx, cy = x(index) + shift, y(rate)
            points.append(f"{cx:.1f},{cy:.1f}")
            low, high = row.get(f"{prefix}_ci_low"), row.get(f"{prefix}_ci_high")
            if low is not None and high is not None:
                parts.append(
                    f'<line x1="{cx:.1f}" y1="{y(low):.1f}" x2="{cx:.1f}" y2="{y(high):.1f}" '
                    f'stroke="{colour}" stroke-width="2"/>'
                )
            if shape == "circle":
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{colour}"/>')
            else:
                parts.append(
                    f'<rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" '
                    f'fill="{colour}"/>'
                )
        if len(points) > 1:
            parts.append(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
    legend_y = height - 18
    parts.append(
        f'<circle cx="{left + 8}" cy="{legend_y - 4}" r="5" fill="{NHS_BLUE}"/>'
        f'<text x="{left + 20}" y="{legend_y}" font-size="12" {FONT} fill="#212b32">'
        "Call arm (solid line, circles)</text>"
        f'<rect x="{left + 260}" y="{legend_y - 9}" width="10" height="10" fill="{NHS_ORANGE}"/>'
        f'<text x="{left + 276}" y="{legend_y}" font-size="12" {FONT} fill="#212b32">'
        "Hold-out (dashed line, squares)</text>"
    )
    description = (
        f"Weekly DNA rate of the call arm and the hold-out over {len(rows)} whole weeks, each "
        "with its 95% confidence interval as a vertical line; a suppressed week is a gap. The "
        "table below gives every figure."
    )
    if left_out:
        description += (
            f" {left_out} partial week{'s' if left_out > 1 else ''} at the ends of the period "
            "(marked in the table) not drawn."
        )
    return _frame(width, height, table.title, description, "".join(parts))


def _short_day(iso_day: str) -> str:
    """'2026-09-07' -> '7 Sep' (the UK way, for an axis)."""
    return escape(f"{date.fromisoformat(iso_day):%-d %b}")


def funnel_plot(table: Table, *, unit: str) -> Markup:
    """Share of ethnicity Z or 99 against volume, with 95% and 99.8% control limits."""
    width, height, left, right, top, bottom = 760, 380, 70, 20, 30, 60
    rows = [row for row in table.rows if row.get("patients")]
    if not rows:
        return _frame(width, 60, table.title, "No units to plot.", "")
    target = float(rows[0]["trust_share"])
    max_n = max(int(row["patients"]) for row in rows)
    max_share = max([float(row["share"]) for row in rows] + [float(rows[0]["upper_998"])])
    y_max = _nice_max(min(1.0, max_share * 1.1) or 0.1)
    x_max = _nice_max(max_n * 1.05)

    def x(n: float) -> float:
        return left + (width - left - right) * n / x_max

    def y(value: float) -> float:
        return top + (height - top - bottom) * (1 - min(value, y_max) / y_max)

    parts = []
    for tick in range(5):
        share, n = y_max * tick / 4, x_max * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y(share):.1f}" x2="{width - right}" y2="{y(share):.1f}" '
            f'stroke="{NHS_PALE_GREY}"/><text x="{left - 6}" y="{y(share) + 4:.1f}" '
            f'text-anchor="end" font-size="12" {FONT} fill="{NHS_DARK_GREY}">{_percent(share)}'
            f'</text><text x="{x(n):.1f}" y="{height - bottom + 18}" text-anchor="middle" '
            f'font-size="12" {FONT} fill="{NHS_DARK_GREY}">{n:,.0f}</text>'
        )
    steps = [max(1.0, x_max * i / 60) for i in range(61)]
    for attribute, colour, dash in (
        ("upper95", NHS_MID_GREY, ' stroke-dasharray="4 3"'),
        ("lower95", NHS_MID_GREY, ' stroke-dasharray="4 3"'),
        ("upper998", NHS_RED, ""),
        ("lower998", NHS_RED, ""),
    ):
        points = " ".join(
            f"{x(n):.1f},{y(getattr(funnel_limits(target, round(n)), attribute)):.1f}"
            for n in steps
        )
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>'
        )
    parts.append(
        f'<line x1="{left}" y1="{y(target):.1f}" x2="{width - right}" y2="{y(target):.1f}" '
        f'stroke="{NHS_DARK_BLUE}" stroke-width="2"/>'
    )
    for row in rows:
        cx, cy = x(int(row["patients"])), y(float(row["share"]))
        flag = row["flag"]
        if flag == "within limits":
            parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{NHS_BLUE}"/>')
        else:
            # Outliers are also a different shape (a diamond) and labelled, not only red.
            parts.append(
                f'<polygon points="{cx:.1f},{cy - 7:.1f} {cx + 7:.1f},{cy:.1f} {cx:.1f},'
                f'{cy + 7:.1f} {cx - 7:.1f},{cy:.1f}" fill="{NHS_RED}"/>'
                f'<text x="{cx + 9:.1f}" y="{cy + 4:.1f}" font-size="11" {FONT} '
                f'fill="#212b32">{escape(str(row["unit"])[:24])} ({escape(str(flag))})</text>'
            )
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 14}" text-anchor="middle" '
        f'font-size="12" {FONT} fill="#212b32">Patients seen (volume)</text>'
    )
    outliers = [str(row["unit"]) for row in rows if row["flag"] != "within limits"]
    description = (
        f"Funnel plot of {len(rows)} {unit}s: share of patients with ethnicity not stated or not "
        f"known against the number seen, around the trust average of {_percent(target)}, with "
        "95% (grey dashed) and 99.8% (red) control limits. "
        + (
            f"Outside the limits: {', '.join(outliers)}. "
            if outliers
            else "No unit lies outside the limits. "
        )
        + "The table below gives every figure."
    )
    return _frame(width, height, table.title, description, "".join(parts))
