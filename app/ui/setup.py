"""Wiring the page framework into the application: static files, headers, page errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.ui.errors import install_page_error_handlers
from app.ui.security import install_security_headers

STATIC_DIR = Path(__file__).resolve().parent / "static"


def install_ui(app: FastAPI) -> None:
    # The NHS.UK frontend build is copied to static/nhsuk/ by scripts/setup.sh (npm ci).
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Its stylesheet refers to icons at the absolute path /assets/images/...
    app.mount(
        "/assets",
        StaticFiles(directory=STATIC_DIR / "nhsuk" / "assets", check_dir=False),
        name="nhsuk-assets",
    )
    install_security_headers(app)
    install_page_error_handlers(app)
