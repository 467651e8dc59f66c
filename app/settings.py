"""Navigator's configuration: one settings class read from `NAVIGATOR_*` variables and `.env`.

Secrets are `SecretStr` so they never print; outside development the service refuses to run
with a missing or placeholder secret.
"""

from __future__ import annotations

import functools
import json
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.localtime import TrustCalendar

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me"  # noqa: S105 - refused in production
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", DEVELOPMENT_SECRET_KEY}


def default_data_dir() -> Path:
    return Path.cwd() / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NAVIGATOR_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "production"] = "development"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    # PostgreSQL connections per process (each uvicorn worker, each `navigator worker`):
    # pool_size kept open, up to max_overflow more under load. Keep (pool_size + max_overflow)
    # x processes under the server's max_connections (100 by default): at 10 + 20, four
    # workers under load opened more than 100 and requests got 503s. Past about ten at once a
    # process only queues on its own CPU anyway.
    database_pool_size: int = Field(default=5, ge=1, le=100)
    database_max_overflow: int = Field(default=5, ge=0, le=100)
    # How long a request waits for a free connection before it is answered 503.
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET_KEY)
    public_base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Europe/London"
    log_level: str = "INFO"

    # SMS provider (see app/sms): console writes messages to a file for the demo.
    sms_provider: Literal["console", "twilio", "fake"] = "console"
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_messaging_service_sid: str = ""
    twilio_from_number: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"

    # Risk model (see app/risk).
    models_dir: Path = Path("models")
    call_horizon_days: int = 7
    # Ethnicity is always audited; whether it is also a model input is a choice (default off).
    risk_include_ethnicity: bool = False
    # Bands navigators see. "capacity" (default): set from the trust's own risk distribution,
    # high = the share of a day's callable appointments the navigators can call, medium = the
    # next band of the same size; "fixed": the probabilities below.
    risk_band_method: Literal["capacity", "fixed"] = "capacity"
    risk_band_medium: float = 0.08
    risk_band_high: float = 0.15
    # A group whose observed-minus-predicted DNA rate interval lies wholly beyond this many
    # probability points is flagged as under- or over-predicted on the model card.
    risk_calibration_limit: float = 0.01
    # Best-worst AUROC gap between groups above which the model card flags the attribute.
    risk_fairness_gap_limit: float = 0.05
    risk_min_training_rows: int = 1000
    risk_min_training_dnas: int = 50
    # Temporal split of the labelled appointments: latest share for testing, the share
    # before it for calibration, the rest (earliest) for fitting.
    risk_test_share: float = 0.2
    risk_calibration_share: float = 0.15
    risk_bootstrap_replicates: int = 200
    # Drift (app/risk/drift.py): a month whose observed-minus-predicted DNA rate interval lies
    # wholly beyond this many probability points raises an alert; months with fewer outcomes
    # than `risk_drift_min_rows` are shown but never alert.
    risk_drift_calibration_limit: float = Field(default=0.02, gt=0, lt=1)
    risk_drift_min_rows: int = Field(default=200, ge=1)
    # The monthly challenger becomes active unless the lower end of the paired 95% interval of
    # its AUROC minus the champion's is below minus this margin (not worse, within the margin).
    risk_challenger_margin: float = Field(default=0.005, ge=0, lt=1)
    # Per-group intercept recalibration (app/risk/recalibration.py), off by default: when on,
    # it is applied only if it helped on the test period (the model card shows the evaluation).
    risk_group_recalibration: bool = False
    risk_group_recalibration_attribute: Literal[
        "ethnic_group", "imd_quintile", "age_band", "sex", "core20", "need"
    ] = "ethnic_group"

    # Analytics (see app/analytics): the cost of one DNA as a range (default the Royal Free
    # pilot's £100-£160), and navigator time, netted off savings when an hourly cost is set.
    analytics_cost_per_dna_low: float = 100.0
    analytics_cost_per_dna_high: float = 160.0
    analytics_navigator_hourly_cost: float | None = None
    analytics_minutes_per_call: float = 10.0

    # Accounts, sessions and sign-in (see app/auth).
    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    # A failed sign-in waits this long before answering, so guessing is slow for everyone.
    login_failure_delay_ms: int = 300
    # Failed sign-ins allowed per client address per minute (per process); past it a wrong
    # password waits `login_throttled_delay_ms` and answers 429 with Retry-After, while the
    # right password still signs in (the per-account lockout is what protects an account).
    login_attempts_per_minute: int = 20
    login_throttled_delay_ms: int = Field(default=2_000, ge=0, le=30_000)
    # Peers whose X-Forwarded-For / X-Forwarded-Proto are believed (the reverse proxy's
    # addresses, comma-separated or a JSON list). Default none: the TCP peer is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Request bodies are refused (413) past these sizes before anything parses them.
    body_limit_json_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    body_limit_form_bytes: int = Field(default=256 * 1024, ge=1024, le=16 * 1024 * 1024)
    body_limit_webhook_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    body_limit_sign_in_bytes: int = Field(default=8 * 1024, ge=1024, le=1024 * 1024)

    # Patient-level reads (records and lists of them) per user: at most this many requests
    # and this many patient rows returned per rolling minute; past either, 429 + Retry-After.
    read_limit_requests_per_minute: int = Field(default=120, ge=1)
    read_limit_patients_per_minute: int = Field(default=1_500, ge=1)
    # The audit page's unusual-access report: more distinct patients read by one user in one
    # hour than this is flagged; reads outside the working day are flagged too.
    audit_unusual_patients_per_hour: int = Field(default=60, ge=1)
    # A patient found through an audited search stays visible to that navigator this long.
    search_access_hours: int = Field(default=12, ge=1, le=72)

    # Imports and synthetic trust (see app/imports, app/synth): rows validated and written
    # per bulk statement; memory grows with it, round trips shrink.
    import_chunk_size: int = Field(default=5_000, ge=1, le=20_000)

    # The HL7 v2 feed (see app/feed and docs/feed.md): `navigator feed hl7` listens here.
    feed_host: str = "127.0.0.1"
    feed_port: int = Field(default=2575, ge=0, le=65535)
    # A message over this size is answered AR and kept (its first bytes) as a dead letter.
    feed_max_message_bytes: int = Field(default=1_000_000, ge=1_000, le=50_000_000)
    # Messages applied in one transaction when several have queued (group commit: one
    # commit, then each is acknowledged), and how many a connection may send ahead of its
    # ACKs; a sender waiting for each ACK gets batches of one per connection.
    feed_batch_size: int = Field(default=200, ge=1, le=5_000)

    # Navigator calls (see app/calls): the daily queue, hold-out, capacity and retries.
    # The call window is a range of days ahead of the queue date, inclusive ("6-8" = 6, 7, 8).
    calls_window_start_days: int = 7
    calls_window_end_days: int = 7
    # Eligibility rules: high risk band, or a priority group; each can be switched off.
    calls_rule_high_risk: bool = True
    calls_rule_core20: bool = True
    calls_rule_communication_need: bool = True
    calls_rule_learning_disability: bool = True
    calls_rule_no_sms_channel: bool = True
    calls_navigators_on_duty: int = Field(default=2, ge=0)
    calls_per_navigator_per_day: int = Field(default=40, ge=0)
    # Share of eligible patients randomly held out from calls, and the key of that hash.
    calls_holdout_share: float = Field(default=0.10, ge=0.0, le=1.0)
    calls_programme_seed: str = "navigator-programme-2026"
    calls_retry_delay_minutes: int = Field(default=120, ge=1)
    calls_max_attempts: int = Field(default=3, ge=1)
    calls_lease_minutes: int = Field(default=20, ge=1)
    # The working day in local time: a retry that would fall after the end moves to the next
    # working morning.
    calls_day_start_hour: int = Field(default=9, ge=0, le=23)
    calls_day_end_hour: int = Field(default=17, ge=1, le=24)
    # Rebook and cancel requests (see app/bookings): a PAS appointment matches an open rebook
    # request when it starts within this many days of the agreed time; requests the PAS has
    # not honoured after this many working days become booking-team tasks.
    bookings_match_tolerance_days: int = Field(default=7, ge=0, le=180)
    bookings_escalate_after_working_days: int = Field(default=3, ge=1, le=60)
    # Clinic sessions a navigator may rebook into (local time): weekdays (Monday 0), the
    # first and last start time, and how far ahead.
    calls_rebook_weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    calls_rebook_opens: time = time(8, 0)
    calls_rebook_closes: time = time(18, 0)
    calls_rebook_horizon_weeks: int = Field(default=26, ge=1)
    # Benefit targeting (see app/targeting): which ranking the queue uses ("risk", today's
    # priority, or "benefit", expected DNAs avoided, only once the switching rule allows it),
    # the equity floor (each priority group gets at least floor_scale x its share of the
    # window's DNA burden in call capacity) and the share of calls spent exploring.
    calls_queue_policy: Literal["risk", "benefit"] = "risk"
    targeting_floor_scale: float = Field(default=1.0, ge=0.0, le=1.0)
    targeting_exploration_share: float = Field(default=0.10, ge=0.0, le=1.0)
    targeting_min_holdout_outcomes: int = Field(default=300, ge=1)
    targeting_min_training_rows: int = Field(default=1000, ge=1)
    targeting_min_subgroup: int = Field(default=30, ge=1)
    targeting_validation_share: float = Field(default=0.25, gt=0.0, lt=1.0)
    # Rolling-origin validation: this many folds of `targeting_validation_share` each.
    targeting_validation_folds: int = Field(default=3, ge=1)
    targeting_bootstrap_replicates: int = Field(default=200, ge=0)
    # SMS reminders and dispatcher (see app/sms).
    sms_reminder_offsets_days: list[int] = Field(default_factory=lambda: [7, 2])
    sms_quiet_hours_start: time = time(20, 0)  # local time (settings.timezone), DST aware
    sms_quiet_hours_end: time = time(8, 0)
    sms_send_rate_per_second: float = 10.0  # per dispatcher process; 0 means unlimited
    sms_batch_size: int = 50
    sms_lease_seconds: float = 120.0
    sms_max_attempts: int = 6
    sms_retry_base_seconds: float = 30.0
    sms_retry_max_seconds: float = 3600.0
    sms_poll_seconds: float = 5.0
    twilio_timeout_seconds: float = 10.0
    # Hardening and operations (see app/observability, app/worker.py): `/metrics` accepts
    # this bearer token (or an admin session); the worker runs the daily jobs at these local
    # times and polls the SMS outbox every `worker_poll_seconds`.
    metrics_token: SecretStr = SecretStr("")
    worker_queue_build_time: str = Field(default="07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    worker_reminder_time: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    worker_poll_seconds: float = Field(default=5.0, gt=0, le=300)
    # The monthly risk review (drift, challenger, decision) runs at this local time on the
    # first day of each month the worker sees without a recorded review.
    worker_risk_review_time: str = Field(default="02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_placeholders(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'navigator.sqlite3'}"
        if self.env == "production":
            problems = []
            if self.secret_key.get_secret_value() in PLACEHOLDER_SECRETS:
                problems.append("NAVIGATOR_SECRET_KEY must be set to a real secret")
            elif len(self.secret_key.get_secret_value()) < 32:
                problems.append("NAVIGATOR_SECRET_KEY must be at least 32 characters")
            if self.sms_provider == "twilio" and not self.twilio_auth_token.get_secret_value():
                problems.append(
                    "NAVIGATOR_TWILIO_AUTH_TOKEN must be set when the provider is twilio"
                )
            metrics_token = self.metrics_token.get_secret_value()
            if metrics_token and (metrics_token in PLACEHOLDER_SECRETS or len(metrics_token) < 32):
                problems.append("NAVIGATOR_METRICS_TOKEN, when set, must be at least 32 characters")
            if self.database_url.startswith("sqlite"):
                problems.append("NAVIGATOR_DATABASE_URL must point at PostgreSQL in production")
            if problems:
                raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def call_horizon(self) -> timedelta:
        return timedelta(days=self.call_horizon_days)

    @property
    def calendar(self) -> TrustCalendar:
        """The trust's local days and navigators' working hours (`app/localtime.py`)."""
        return TrustCalendar(self.timezone, self.calls_day_start_hour, self.calls_day_end_hour)


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings` and pass it explicitly."""
    return Settings()
