"""JSON API of the risk model registry: list models, read the active card, activate one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from app.auth.audit import record_audit
from app.auth.dependencies import require_role
from app.auth.roles import Role
from app.auth.tables import User
from app.clock import ClockDep
from app.db.session import SessionDep
from app.risk import service
from app.risk.schemas import RiskModelCard, RiskModelOut
from app.risk.tables import RiskModel

# Managers read the registry and cards; only admins change which model scores patients,
# because activation changes who is offered calls for everyone.
router = APIRouter(
    prefix="/api/risk", tags=["risk"], dependencies=[Depends(require_role(Role.MANAGER))]
)


def _summary(model: RiskModel) -> RiskModelOut:
    metrics = model.card.get("metrics") or {}
    return RiskModelOut(
        version=model.version,
        trained_at=model.trained_at,
        active=model.active,
        activated_at=model.activated_at,
        artefact_sha256=model.artefact_sha256,
        auroc=metrics.get("auroc"),
        ethnicity_is_input=model.card.get("ethnicity_is_input"),
    )


@router.get("/models", response_model=list[RiskModelOut])
def list_models(session: SessionDep) -> list[RiskModelOut]:
    return [_summary(model) for model in service.list_models(session)]


@router.get("/models/active", response_model=RiskModelCard)
def active_model(session: SessionDep) -> RiskModelCard:
    """The active model's card: evaluation, baselines, fairness table, intended use."""
    model = service.get_active_model(session)
    return RiskModelCard(version=model.version, active=True, card=model.card)


@router.post("/models/{version}/activate", response_model=RiskModelOut)
def activate(
    version: str,
    session: SessionDep,
    clock: ClockDep,
    user: Annotated[User, Depends(require_role(Role.ADMIN))],
) -> RiskModelOut:
    model = service.activate_model(session, version, now=clock.now())
    record_audit(
        session, user_id=user.id, action="risk_model.activated", detail={"version": version}
    )
    return _summary(model)
