"""API shapes of the risk feature."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RiskModelOut(BaseModel):
    version: str
    trained_at: datetime
    active: bool
    activated_at: datetime | None
    artefact_sha256: str
    auroc: float | None
    ethnicity_is_input: bool | None


class RiskModelCard(BaseModel):
    version: str
    active: bool
    card: dict[str, Any]
