"""Running the ASGI server."""

from __future__ import annotations

import os
import shutil
from typing import Any

import uvicorn

from app.logging_setup import configure_logging
from app.settings import Settings, get_settings


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn believes X-Forwarded-For/-Proto only from `NAVIGATOR_TRUSTED_PROXIES`.

    uvicorn's own default trusts 127.0.0.1 (or `FORWARDED_ALLOW_IPS`), so any local peer could
    pick its address for the sign-in throttle; with no trusted proxy configured the headers
    are ignored and the TCP peer is the client.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}


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
        **proxy_options(settings),
        access_log=False,
        log_config=None,
    )
