"""Restarting the shared local PostgreSQL for fault tests, and waiting until it is back."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from sqlalchemy.engine import make_url

CONFIG_DIR = "/etc/postgresql"


def require_local_postgres(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        pytest.skip("restarts PostgreSQL")
    if url.host not in {"127.0.0.1", "localhost"} or not shutil.which("pg_ctlcluster"):
        pytest.skip("needs the local PostgreSQL cluster (pg_ctlcluster)")
    if not os.path.isdir(CONFIG_DIR) or not os.listdir(CONFIG_DIR):
        pytest.skip("no local PostgreSQL cluster configuration")


def wait_until_ready(timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = subprocess.run(
            ["pg_isready", "-h", "127.0.0.1", "-q"], check=False, timeout=10
        ).returncode
        if ready == 0:
            return
        time.sleep(0.5)
    raise AssertionError("PostgreSQL did not come back")


def restart_postgres() -> None:
    """`pg_ctlcluster ... restart` (fast shutdown: every open connection is cut)."""
    version = sorted(os.listdir(CONFIG_DIR))[-1]
    try:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
            check=True,
            timeout=120,
            capture_output=True,
        )
    finally:
        wait_until_ready()
