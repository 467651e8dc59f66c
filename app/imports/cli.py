"""`navigator import patients|appointments FILE`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the import commands to the root CLI."""
