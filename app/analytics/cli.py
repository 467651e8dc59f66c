"""`navigator report impact --from DATE --to DATE [--json]`: the impact report on the command
line, the same figures as the dashboard and `GET /api/analytics/impact`."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from app.analytics import service
from app.analytics.formatting import money, to_text
from app.analytics.periods import Period
from app.analytics.schemas import ImpactReport
from app.console import JsonFlag, emit, handles_domain_errors
from app.db.session import Database
from app.errors import DomainError
from app.isodate import parse_iso_date
from app.settings import get_settings

report_app = typer.Typer(help="Managers' reports.", no_args_is_help=True)


def _parse_day(value: str) -> date:
    try:
        return parse_iso_date(value)
    except ValueError as error:
        raise typer.BadParameter(f"{value!r} is not a date like 2026-09-01") from error


@report_app.command("impact")
@handles_domain_errors
def report_impact(
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    end: Annotated[str, typer.Option("--to", help="Day after the last day (YYYY-MM-DD).")],
    as_json: JsonFlag = False,
) -> None:
    """Avoided DNAs against the randomised hold-out, savings and equity figures for a period."""
    settings = get_settings()
    database = Database(settings)
    try:
        period = Period(_parse_day(start), _parse_day(end))
        with database.unit_of_work() as session:
            report = service.impact(session, settings, period)
    except DomainError as error:
        if not as_json:
            raise
        # One JSON object on stdout even for a failure, so scripts can read the reason.
        emit({"error": error.message, "code": error.code}, error.message, as_json=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    emit(report.model_dump(mode="json", by_alias=True), human_summary(report), as_json=as_json)


def human_summary(report: ImpactReport) -> str:
    estimate = report.estimate
    call, holdout = estimate.call_arm, estimate.holdout
    lines = [
        f"Impact of navigator calls, {report.period.label} (both days included) "
        f"(programme started {report.programme_start})",
        f"  Call arm: {call.dnas} DNAs in {call.appointments} appointments "
        f"({call.dna_rate:.1%}, 95% CI {call.ci_low:.1%} to {call.ci_high:.1%})",
        f"  Hold-out: {holdout.dnas} DNAs in {holdout.appointments} appointments "
        f"({holdout.dna_rate:.1%}, 95% CI {holdout.ci_low:.1%} to {holdout.ci_high:.1%})",
        f"  Avoided DNAs: {estimate.avoided_dnas:.1f} "
        f"(95% CI {estimate.avoided_ci_low:.1f} to {estimate.avoided_ci_high:.1f})",
        f"  Gross savings (before navigator time): {money(estimate.savings_low)} to "
        f"{money(estimate.savings_high)} "
        f"at {money(estimate.cost_per_dna_low)}-{money(estimate.cost_per_dna_high)} per DNA",
    ]
    if estimate.navigator_cost is not None and estimate.net_savings_low is not None:
        lines.append(
            f"  Net savings, after navigator time ({money(estimate.navigator_cost)} for "
            f"{estimate.attempts} call attempts): {money(estimate.net_savings_low)} to "
            f"{money(estimate.net_savings_high or 0.0)}"
        )
    protocol = report.per_protocol
    if protocol.reached_dna_rate is not None:
        lines.append(
            f"  Among those reached (per protocol, not randomised): DNA rate "
            f"{protocol.reached_dna_rate:.1%} in {protocol.reached} appointments"
        )
    if report.model_expected is not None:
        expected = report.model_expected
        lines.append(
            f"  Model-based (not measured): {expected.expected_dnas:.1f} DNAs expected, "
            f"{expected.observed_dnas} observed among those reached"
        )
    lines.append("")
    lines += [
        to_text(table) + "\n" for table in report.tables if table.slug.startswith("impact-by")
    ]
    lines.append(estimate.method)
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add `navigator report ...` to the root CLI."""
    app.add_typer(report_app, name="report")


__all__ = ["register"]
