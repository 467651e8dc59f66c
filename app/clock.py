"""The one clock: every service, page, worker and command asks a `Clock` for the time.

Nothing else in `app/` reads the system clock. Production code gets `SystemClock`; tests and
replays get a `FixedClock` they can set and move on, so no behaviour depends on the real date.
Web requests find the clock on `app.state.clock` (`ClockDep`); the command line finds it in the
Click context object (`current_clock()`), which a test may pass to `CliRunner.invoke(obj=...)`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol, runtime_checkable

from fastapi import Depends, Request


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock: the only place in the service that reads the system time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until it is set or moved on (tests, simulations, replays)."""

    def __init__(self, moment: datetime) -> None:
        self._moment = _aware(moment)

    def now(self) -> datetime:
        return self._moment

    def set(self, moment: datetime) -> None:
        self._moment = _aware(moment)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move the clock on by `delta` (or `timedelta(**kwargs)`) and return the new time."""
        self._moment = self._moment + (delta if delta is not None else timedelta(**kwargs))
        return self._moment

    def __repr__(self) -> str:
        return f"FixedClock({self._moment.isoformat()})"


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a clock keeps aware datetimes; attach a time zone first")
    return moment.astimezone(UTC)


SYSTEM_CLOCK = SystemClock()


def current_clock() -> Clock:
    """The clock of the running command: the Click context's object when it is a `Clock`
    (tests pass one with `CliRunner.invoke(..., obj=clock)`), else the system clock."""
    for context in _click_contexts():
        found = context.find_object(Clock)
        if found is not None:
            return found
    return SYSTEM_CLOCK


def _click_contexts() -> list[Any]:
    """The running command's context: Typer (0.20+) runs commands on its own vendored copy of
    Click, whose context plain `click.get_current_context()` does not see."""
    import click

    contexts: list[Any] = []
    try:
        from typer._click.globals import get_current_context as typer_context
    except ImportError:  # an older Typer on plain Click
        pass
    else:
        contexts.append(typer_context(silent=True))
    contexts.append(click.get_current_context(silent=True))
    return [context for context in contexts if context is not None]


def get_clock(request: Request) -> Clock:
    """The web app's clock (`create_app(clock=...)`; the system clock by default)."""
    clock: Clock = request.app.state.clock
    return clock


ClockDep = Annotated[Clock, Depends(get_clock)]
