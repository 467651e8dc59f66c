"""`navigator report targeting`, `navigator simulate targeting` and `navigator targeting ...`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

import typer

from app.analytics.cli import report_app
from app.clock import current_clock
from app.console import JsonFlag, emit, handles_domain_errors, progress_bar
from app.db.session import Database
from app.errors import DomainError
from app.settings import get_settings
from app.targeting import service
from app.targeting.periods import report_period
from app.targeting.simulation import simulate_targeting

simulate_app = typer.Typer(help="Simulations on a synthetic trust.", no_args_is_help=True)
targeting_app = typer.Typer(help="The benefit model and the queue policy.", no_args_is_help=True)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f} pts"


def _num(value: float | None, signed: bool = False) -> str:
    """A figure to four places, or "n/a" (an interval needs 2 repeats or bootstrap replicates)."""
    if value is None:
        return "n/a"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def report_human(report: dict[str, Any], first: date, after_last: date) -> str:
    """The report in words; the period as local days (the report's own bounds are UTC
    moments, which in summer time fall on the evening before)."""
    overall = report["overall"]
    last = after_last - timedelta(days=1)
    lines = [
        f"Call effect on the DNA rate, appointments {first.isoformat()} to {last.isoformat()} "
        "(call arm minus hold-out, intention to treat)",
        f"  Overall: {_pct(overall['difference'])} (95% CI {_pct(overall['ci_low'])} to "
        f"{_pct(overall['ci_high'])}); {overall['n_call']} call arm, "
        f"{overall['n_holdout']} hold-out",
    ]
    for table in report["subgroups"].values():
        lines.append(f"  {table['label']}:")
        for level in table["levels"]:
            if level["suppressed"]:
                figure = f"suppressed ({level['reason']})"
            else:
                figure = (
                    f"{_pct(level['difference'])} ({_pct(level['ci_low'])} to "
                    f"{_pct(level['ci_high'])})"
                )
            lines.append(
                f"    {level['level']}: {figure}; n {level['n_call']} / {level['n_holdout']}"
            )
    model = report["benefit_model"]
    if model:
        validation = model["validation"]
        low, high = validation["qini_area_ci"]
        lines.append(
            f"Benefit model {model['version']}: out-of-time Qini area "
            f"{validation['qini_area']:.4f} (95% CI {_num(low)} to {_num(high)}); ranking by risk "
            f"{validation['risk_qini_area']:.4f}"
        )
    else:
        lines.append("No benefit model is active.")
    lines.append(report["queue_policy"]["message"])
    return "\n".join(lines)


def _fail_json(error: DomainError) -> typer.Exit:
    emit({"error": error.message, "code": error.code}, error.message, as_json=True)
    return typer.Exit(1)


@handles_domain_errors
def report_targeting(
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="Day after the last day (YYYY-MM-DD).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The call's effect by subgroup from the randomised hold-out, and the benefit model."""
    settings = get_settings()
    now = current_clock().now()
    database = Database(settings)
    try:
        first, after_last, start_at, end_at = report_period(settings, now, start, end)
        with database.unit_of_work() as session:
            report = service.targeting_report(session, settings, start=start_at, end=end_at)
    except DomainError as error:
        if not as_json:
            raise
        raise _fail_json(error) from None
    finally:
        database.dispose()
    emit(report, report_human(report, first, after_last), as_json=as_json)


def simulation_human(result: dict[str, Any]) -> str:
    policies = result["policies"]
    settings = result["settings"]

    def policy_line(label: str, name: str) -> str:
        policy = policies[name]
        return (
            f"  {label}{policy['avoided_per_call']:.4f} DNAs avoided per call "
            f"(95% CI {_num(policy['ci_low'])} to {_num(policy['ci_high'])}), "
            f"{policy['calls']} calls"
        )

    def difference_line(label: str, key: str) -> str:
        difference = result[key]
        relative = difference.get("relative")
        share = "" if relative is None else f", {relative:+.1%}"
        return (
            f"  {label}{difference['estimate']:+.4f}{share} "
            f"(95% CI {_num(difference['ci_low'], True)} to "
            f"{_num(difference['ci_high'], True)})"
        )

    lines = [
        f"{settings['repeats']} programmes: {settings['history_weeks']} weeks of history, "
        f"{settings['weeks']} weeks under each policy, {settings['capacity_per_day']} calls a "
        f"day; {'heterogeneous' if settings['heterogeneous_effects'] else 'homogeneous'} "
        "true call effects",
        policy_line("risk:    ", "risk"),
        policy_line("benefit: ", "benefit"),
        difference_line("difference (benefit - risk): ", "difference"),
        f"  under the switching rule (benefit policy on in "
        f"{result['benefit_model']['switched_repeats']} of {settings['repeats']} repeats, "
        "risk in the rest; the true benefit would have passed the rule in "
        f"{result['benefit_model']['true_benefit_passes_repeats']}):",
        policy_line("  ", "switching_rule"),
        difference_line("  difference from risk: ", "difference_switching_rule"),
        "  ranking by the risk score alone (no group bonus, no floor):",
        policy_line("  ", "risk_score"),
        difference_line("  benefit minus risk score alone: ", "difference_vs_risk_score"),
    ]
    for group, floor in result["floors"].items():
        lines.append(
            f"  {group}: {floor['share']:.1%} of calls, floor {floor['floor']:.1%}"
            f" ({'met' if floor['met'] else 'NOT met'})"
        )
    return "\n".join(lines)


@simulate_app.command("targeting")
@handles_domain_errors
def simulate(
    weeks: Annotated[int, typer.Option(help="Programme weeks under each policy.")] = 26,
    repeats: Annotated[int, typer.Option(help="Programmes to replay.")] = 20,
    history_weeks: Annotated[int, typer.Option(help="Weeks of history before.")] = 52,
    homogeneous: Annotated[
        bool, typer.Option("--homogeneous", help="The same true call effect for everyone.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    as_json: JsonFlag = False,
) -> None:
    """Replay programmes under the risk and benefit policies at equal capacity."""
    settings = get_settings()
    with progress_bar("Simulating programmes", total=repeats) as progress:
        result = simulate_targeting(
            settings,
            weeks=weeks,
            history_weeks=history_weeks,
            repeats=repeats,
            heterogeneous=not homogeneous,
            seed=seed,
            progress=progress,
        )
    emit(result, simulation_human(result), as_json=as_json)


@targeting_app.command("train")
@handles_domain_errors
def train(as_json: JsonFlag = False) -> None:
    """Train, validate out of time, register and activate a benefit model."""
    settings = get_settings()
    now = current_clock().now()
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            result = service.train_benefit_model(session, settings, now=now)
            decision = service.queue_decision(session, settings)
            card = result.card
    finally:
        database.dispose()
    metrics = card["metrics"]
    low, high = metrics["qini_area_ci"]
    human = (
        f"Benefit model {card['version']} trained on {card['rows']['training']} appointments in "
        f"{result.seconds:.1f}s; out-of-time Qini area {metrics['qini_area']:.4f} "
        f"(95% CI {_num(low)} to {_num(high)}).\n{decision.message}"
    )
    emit(
        {"card": card, "queue_policy": decision.effective, "message": decision.message},
        human,
        as_json=as_json,
    )


@targeting_app.command("status")
@handles_domain_errors
def status(as_json: JsonFlag = False) -> None:
    """Which policy the queue runs now, and why."""
    settings = get_settings()
    database = Database(settings)
    try:
        with database.unit_of_work() as session:
            decision = service.queue_decision(session, settings)
    finally:
        database.dispose()
    emit(
        {
            "requested": decision.requested,
            "effective": decision.effective,
            "message": decision.message,
        },
        decision.message,
        as_json=as_json,
    )


def register(app: typer.Typer) -> None:
    report_app.command("targeting")(report_targeting)
    app.add_typer(simulate_app, name="simulate")
    app.add_typer(targeting_app, name="targeting")


__all__ = ["register"]
