"""Shared command-line plumbing: human or `--json` output, progress bars, clean failures."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.errors import DomainError

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]

stderr = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return str(value)


def emit(result: dict[str, Any], human: str, *, as_json: bool) -> None:
    """Print the command's result: one JSON object with --json, else the human summary."""
    if as_json:
        sys.stdout.write(json.dumps(result, default=_default) + "\n")
    else:
        sys.stdout.write(human.rstrip() + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> typer.Exit:
    stderr.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handles_domain_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a DomainError raised by a command into a clear message and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except DomainError as error:
            for detail in error.details[:50]:
                stderr.print(f"  {_describe(detail)}", highlight=False, soft_wrap=True)
            if len(error.details) > 50:
                stderr.print(f"  ... and {len(error.details) - 50} more", highlight=False)
            raise fail(error.message) from None

    return wrapper


def _describe(detail: dict[str, Any]) -> str:
    parts = []
    if "row" in detail:
        parts.append(f"row {detail['row']}")
    if "column" in detail:
        parts.append(f"column {detail['column']}")
    prefix = ", ".join(parts)
    return f"{prefix}: {detail.get('message', '')}" if prefix else str(detail.get("message", ""))


class ProgressReporter:
    """Advance a progress bar on a terminal; do nothing when output is not a terminal."""

    def __init__(self, progress: Progress | None, task_id: Any) -> None:
        self._progress = progress
        self._task_id = task_id

    def advance(self, amount: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task_id, amount)

    def update(self, *, total: float | None = None, description: str | None = None) -> None:
        if self._progress is not None:
            self._progress.update(self._task_id, total=total, description=description)


NULL_PROGRESS = ProgressReporter(None, None)


@contextmanager
def progress_bar(description: str, total: float | None = None) -> Iterator[ProgressReporter]:
    if not stderr.is_terminal:
        yield NULL_PROGRESS
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=stderr, transient=True) as progress:
        yield ProgressReporter(progress, progress.add_task(description, total=total))
