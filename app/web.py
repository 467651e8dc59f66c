"""Running the ASGI server."""

from __future__ import annotations

import os
import shutil

import uvicorn

from app.logging_setup import configure_logging
from app.settings import get_settings


def run_server(*, host: str, port: int, workers: int) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.env == "production")
    if workers > 1:
        # Prometheus counters shared by the worker processes (see app/observability/metrics.py):
        # a fresh directory per server start, so a restart never adds old counts.
        directory = os.environ.setdefault(
            "PROMETHEUS_MULTIPROC_DIR", str(settings.data_dir / "prometheus")
        )
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    uvicorn.run(
        "app.main:create_production_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=None,
    )
