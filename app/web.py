"""Running the ASGI server."""

from __future__ import annotations

import uvicorn

from app.logging_setup import configure_logging
from app.settings import get_settings


def run_server(*, host: str, port: int, workers: int) -> None:
    settings = get_settings()
    configure_logging(settings.log_level, json_lines=settings.env == "production")
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
