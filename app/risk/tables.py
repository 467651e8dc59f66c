"""The model registry and the stored scores of appointments."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UTCDateTime, utcnow


class RiskModel(Base):
    """One trained model version; exactly one may be active at a time."""

    __tablename__ = "risk_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    artefact_path: Mapped[str] = mapped_column(Text)
    # SHA-256 of the artefact file: a tampered or swapped file is refused at load.
    artefact_sha256: Mapped[str] = mapped_column(String(64))
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    card: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RiskScore(Base):
    """The latest score of an appointment: risk, band and plain-words reasons."""

    __tablename__ = "risk_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    appointment_id: Mapped[int] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), unique=True
    )
    model_version: Mapped[str] = mapped_column(String(64))
    risk: Mapped[float] = mapped_column(Float)
    band: Mapped[str] = mapped_column(String(8))  # "low", "medium" or "high"
    reasons: Mapped[list[str]] = mapped_column(JSON)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_risk_scores_band", "band"),)


class DecisionOutcome(StrEnum):
    PROMOTED = "promoted"  # the challenger became the active model
    KEPT = "kept"  # the champion stays active
    NOT_TRAINED = "not_trained"  # no challenger could be trained (the reason says why)


class RiskModelDecision(Base):
    """One monthly review: the champion's drift since it was trained, the challenger trained on
    every outcome up to then, their paired comparison, and which became (or stayed) active."""

    __tablename__ = "risk_model_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16))
    champion_version: Mapped[str | None] = mapped_column(String(64))
    challenger_version: Mapped[str | None] = mapped_column(String(64))
    active_version: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    # Aggregates only (AUROC, intervals, rates by month and group): never patient data.
    comparison: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    drift: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_risk_model_decisions_decided_at", "decided_at"),)
