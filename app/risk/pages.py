"""The model card page for managers (`/model`): the active DNA-risk model, how it compares with
the baselines, its calibration chart and fairness table, its drift since training and the
monthly reviews' decisions, and every registered model, which admins may activate."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from app.auth.audit import record_audit
from app.auth.dependencies import require_role, verify_csrf
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import SessionDep
from app.risk import repository, service
from app.risk.card import FAIRNESS_LABELS
from app.ui.templating import render

router = APIRouter(include_in_schema=False)
Manager = Annotated[User, Depends(require_role(Role.MANAGER))]
Admin = Annotated[User, Depends(require_role(Role.ADMIN))]

# Geometry of the calibration chart (SVG user units; the SVG scales to its container).
CHART_SIZE = 320
CHART_MARGIN = 48
BASELINE_LABELS = {
    "prior_dna_rate": "Patient's prior DNA rate alone",
    "logistic_regression": "Logistic regression on the same features",
    "default_gradient_boosting": "Gradient boosting with default settings, same features",
}


def calibration_chart(reliability: list[dict[str, Any]]) -> dict[str, Any]:
    """Points of the reliability curve in chart coordinates, and the axis ticks.

    Both axes share one scale (0 to just above the largest risk shown) so the diagonal is the
    line of perfect calibration.
    """
    largest = max([0.05] + [max(b["predicted"], b["observed"]) for b in reliability if b["count"]])
    top = math.ceil(largest * 1.05 / 0.05) * 0.05
    plot = CHART_SIZE - 2 * CHART_MARGIN

    def x(value: float) -> float:
        return round(CHART_MARGIN + value / top * plot, 1)

    def y(value: float) -> float:
        return round(CHART_SIZE - CHART_MARGIN - value / top * plot, 1)

    points = [
        {"x": x(b["predicted"]), "y": y(b["observed"]), **b} for b in reliability if b["count"]
    ]
    steps = round(top / 0.05)
    stride = max(1, math.ceil(steps / 6))
    ticks = [
        {"value": f"{round(i * 5)}%", "x": x(i * 0.05), "y": y(i * 0.05)}
        for i in range(0, steps + 1, stride)
    ]
    return {
        "size": CHART_SIZE,
        "low": CHART_MARGIN,
        "high": CHART_SIZE - CHART_MARGIN,
        "diagonal_end": {"x": x(top), "y": y(top)},
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "points": points,
        "ticks": ticks,
    }


# Geometry of the drift chart: one point per month, observed minus predicted in points.
DRIFT_WIDTH = 560
DRIFT_HEIGHT = 260
DRIFT_LEFT = 56
DRIFT_RIGHT = 16
DRIFT_TOP = 16
DRIFT_BOTTOM = 44


def drift_chart(months: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    """Each month's calibration-in-the-large (observed minus predicted DNA rate, in points)
    with its 95% interval, the zero line and the alert limits, in chart coordinates."""
    points_of = [
        (m["observed_minus_predicted"] * 100, [v * 100 for v in m["observed_minus_predicted_ci"]])
        for m in months
    ]
    largest = max([limit * 100 * 1.5, 1.0] + [max(abs(lo), abs(hi)) for _, (lo, hi) in points_of])
    step = next(s for s in (0.5, 1, 2, 5, 10, 20, 50) if largest / s <= 4)
    top = math.ceil(largest / step) * step
    plot_width = DRIFT_WIDTH - DRIFT_LEFT - DRIFT_RIGHT
    plot_height = DRIFT_HEIGHT - DRIFT_TOP - DRIFT_BOTTOM

    def y(value: float) -> float:
        return round(DRIFT_TOP + (top - value) / (2 * top) * plot_height, 1)

    gap = plot_width / max(len(months), 1)
    points = []
    for index, (month, (value, (low, high))) in enumerate(zip(months, points_of, strict=True)):
        points.append(
            {
                "x": round(DRIFT_LEFT + gap * (index + 0.5), 1),
                "y": y(value),
                "low_y": y(low),
                "high_y": y(high),
                "label": month["short_label"],
                "flagged": bool(month.get("flag")),
            }
        )
    count = round(top / step)
    ticks = [
        {"value": f"{i * step:+g}" if i else "0", "y": y(i * step)}
        for i in range(-count, count + 1)
    ]
    return {
        "width": DRIFT_WIDTH,
        "height": DRIFT_HEIGHT,
        "left": DRIFT_LEFT,
        "right": DRIFT_WIDTH - DRIFT_RIGHT,
        "top": DRIFT_TOP,
        "bottom": DRIFT_HEIGHT - DRIFT_BOTTOM,
        "zero_y": y(0),
        "limit_high_y": y(limit * 100),
        "limit_low_y": y(-limit * 100),
        "polyline": " ".join(f"{p['x']},{p['y']}" for p in points),
        "points": points,
        "ticks": ticks,
    }


@router.get("/model")
def model_card(request: Request, session: SessionDep, user: Manager) -> Response:
    models = service.list_models(session)
    active = repository.active_model(session)
    context: dict[str, Any] = {
        "page_title": "DNA-risk model",
        "models": models,
        "active": active,
        "card": active.card if active else None,
        "baseline_labels": BASELINE_LABELS,
        "fairness_labels": FAIRNESS_LABELS,
        # Activation changes who is offered calls for everyone, so only admins get the button.
        "can_activate": user.has_role(Role.ADMIN),
    }
    if active is not None:
        context["chart"] = calibration_chart(active.card["metrics"].get("reliability") or [])
    decisions = repository.list_decisions(session)
    context["decisions"] = decisions
    drift = decisions[0].drift if decisions else {}
    context["drift"] = drift or None
    context["reviewed_at"] = decisions[0].decided_at if decisions else None
    if drift.get("months"):
        context["drift_chart"] = drift_chart(drift["months"], float(drift["limit"]))
    return render(request, "risk/model.html", context)


@router.post("/model/{version}/activate")
def activate_model(
    version: str,
    session: SessionDep,
    user: Admin,
    clock: ClockDep,
    _csrf: Annotated[None, Depends(verify_csrf)],
) -> Response:
    service.activate_model(session, version, now=clock.now())
    record_audit(
        session, user_id=user.id, action="risk_model.activated", detail={"version": version}
    )
    return RedirectResponse("/model", status_code=303)
