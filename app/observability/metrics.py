"""Prometheus metrics: request counts and latency per route template, and service gauges.

Request metrics are counted by a middleware in each process. With several uvicorn workers
set `PROMETHEUS_MULTIPROC_DIR` to an empty writable directory shared by the workers (the
Docker image does): counters and histograms are then written to files there and `/metrics`
sums every worker. Without it each worker reports only its own requests.

Gauges (call queue sizes, outbox backlog, messages by state, model version in use, the risk
model's drift and last monthly review) are read
from the database when `/metrics` is scraped, so every worker reports the same figures. A
table that does not exist yet (a feature not migrated) is skipped, never an error.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import JSON, String, TextualSelect, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from app.asgi import route_template, watching_send
from app.db.base import UTCDateTime
from app.db.session import Database

logger = logging.getLogger("navigator.metrics")

REQUESTS = Counter(
    "navigator_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "navigator_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class RequestMetricsMiddleware:
    """Counts every HTTP request and times it, by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        def note_status(code: int, _headers: MutableHeaders) -> None:
            nonlocal status
            status = code

        try:
            await self.app(scope, receive, watching_send(send, note_status))
        finally:
            route = route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)


def install_metrics_middleware(app: FastAPI) -> None:
    app.add_middleware(RequestMetricsMiddleware)


def _rows(database: Database, sql: str | TextualSelect, **params: Any) -> list[Any] | None:
    """Rows of a read-only query, or None when its table is missing or the database is down."""
    try:
        with database.engine.connect() as connection:
            return list(connection.execute(text(sql) if isinstance(sql, str) else sql, params))
    except SQLAlchemyError:
        return None


class ServiceCollector(Collector):
    """Gauges read from the database at scrape time; `today` is the trust's local day of the
    scrape (from the app's clock), which picks today's call queue."""

    def __init__(self, database: Database, today: date) -> None:
        self.database = database
        self.today = today

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("navigator_database_up", "1 when the database answered this scrape.")
        up.add_metric([], 1.0 if _rows(self.database, "SELECT 1") is not None else 0.0)
        yield up
        yield from self._calls()
        yield from self._messages()
        yield from self._model()
        yield from self._drift()
        yield from self._jobs()

    def _calls(self) -> Iterable[Metric]:
        rows = _rows(
            self.database,
            "SELECT status, count(*) FROM calls WHERE queue_date = :today GROUP BY status",
            today=self.today,
        )
        if rows is None:
            return
        family = GaugeMetricFamily(
            "navigator_call_queue_size",
            "Calls in today's queue (local date), by status.",
            labels=["status"],
        )
        for status, count in rows:
            family.add_metric([str(status)], float(count))
        yield family

    def _messages(self) -> Iterable[Metric]:
        rows = _rows(self.database, "SELECT state, count(*) FROM sms_messages GROUP BY state")
        if rows is None:
            return
        by_state = GaugeMetricFamily(
            "navigator_sms_messages", "SMS messages in the outbox, by state.", labels=["state"]
        )
        backlog = 0.0
        for state, count in rows:
            by_state.add_metric([str(state)], float(count))
            if state in {"pending", "claimed"}:
                backlog += float(count)
        yield by_state
        yield GaugeMetricFamily(
            "navigator_sms_outbox_backlog", "SMS messages not yet handed to the provider.", backlog
        )
        delivery = _rows(
            self.database,
            "SELECT delivery_status, count(*) FROM sms_messages "
            "WHERE delivery_status IS NOT NULL GROUP BY delivery_status",
        )
        if delivery is not None:
            family = GaugeMetricFamily(
                "navigator_sms_messages_by_delivery_status",
                "SMS messages by the provider's latest delivery status.",
                labels=["status"],
            )
            for status, count in delivery:
                family.add_metric([str(status)], float(count))
            yield family

    def _model(self) -> Iterable[Metric]:
        rows = _rows(self.database, "SELECT version FROM risk_models WHERE active")
        if rows is None:
            return
        family = GaugeMetricFamily(
            "navigator_risk_model_active",
            "1 for the risk model version in use.",
            labels=["version"],
        )
        for (version,) in rows:
            family.add_metric([str(version)], 1.0)
        yield family

    def _drift(self) -> Iterable[Metric]:
        """The latest monthly risk review (app/risk/review.py): when it ran, and its champion's
        drift in the latest month with outcomes (calibration-in-the-large overall and by
        group, AUROC, alerts beyond the drift limit)."""
        rows = _rows(
            self.database,
            text(
                "SELECT decided_at, outcome, drift FROM risk_model_decisions "
                "ORDER BY decided_at DESC, id DESC LIMIT 1"
            ).columns(decided_at=UTCDateTime, outcome=String, drift=JSON),
        )
        if not rows:
            return
        decided_at, outcome, drift = rows[0]
        review = GaugeMetricFamily(
            "navigator_risk_review_last_timestamp_seconds",
            "When the monthly risk review last ran, by its decision (promoted, kept, not_trained).",
            labels=["outcome"],
        )
        review.add_metric([str(outcome)], decided_at.timestamp())
        yield review
        months = (drift or {}).get("months") or []
        if not months:
            return
        version = str(drift.get("model_version"))
        latest = months[-1]
        for name, help_text, value in (
            (
                "navigator_risk_drift_observed_minus_predicted",
                "Observed DNA rate minus mean predicted risk (probability) in the latest month "
                "since the model's training, by model version and month.",
                latest.get("observed_minus_predicted"),
            ),
            (
                "navigator_risk_drift_auroc",
                "AUROC in the latest month since the model's training.",
                latest.get("auroc"),
            ),
            (
                "navigator_risk_drift_outcomes",
                "Appointments with an outcome in the latest month since the model's training.",
                latest.get("rows"),
            ),
        ):
            if value is None:
                continue
            family = GaugeMetricFamily(name, help_text, labels=["version", "month"])
            family.add_metric([version, str(latest.get("month"))], float(value))
            yield family
        alerts = GaugeMetricFamily(
            "navigator_risk_drift_alerts",
            "Months since the model's training whose calibration drifted beyond the limit.",
            labels=["version"],
        )
        alerts.add_metric([version], float(len(drift.get("alerts") or [])))
        yield alerts
        limit = GaugeMetricFamily(
            "navigator_risk_drift_calibration_limit",
            "The drift alert limit on observed minus predicted (probability).",
        )
        limit.add_metric([], float(drift.get("limit") or 0.0))
        yield limit
        groups = GaugeMetricFamily(
            "navigator_risk_drift_group_observed_minus_predicted",
            "Observed minus predicted DNA rate in the latest month, by audit group.",
            labels=["version", "attribute", "group"],
        )
        for attribute, entries in (latest.get("groups") or {}).items():
            for entry in entries:
                groups.add_metric(
                    [version, str(attribute), str(entry["group"])],
                    float(entry["observed_minus_predicted"]),
                )
        yield groups

    def _jobs(self) -> Iterable[Metric]:
        rows = _rows(
            self.database,
            # Typed, so the timestamp comes back aware on SQLite too (stored as naive UTC).
            text(
                "SELECT name, max(finished_at) AS finished FROM job_runs "
                "WHERE status = 'succeeded' GROUP BY name"
            ).columns(name=String, finished=UTCDateTime),
        )
        if rows is None:
            return
        family = GaugeMetricFamily(
            "navigator_daily_job_last_success_timestamp_seconds",
            "When each daily job (queue build, reminder scheduling) last finished successfully; "
            "alert when the morning queue build is older than a day.",
            labels=["job"],
        )
        for name, finished in rows:
            if finished is not None:
                family.add_metric([str(name)], finished.timestamp())
        yield family


def render_metrics(database: Database, today: date) -> Response:
    registry = CollectorRegistry()
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        multiprocess.MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(ServiceCollector(database, today))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
