"""Strict dates for every date a user or a caller types: query and form parameters, JSON
bodies and command-line options.

Pydantic's `date` and `datetime` also read numbers and numeric strings as Unix timestamps, so
`date=0` was 1 January 1970 and `1e3` a moment in 1970, and Python's `date.fromisoformat`
reads `20261124` and `2026-W48-2`: a mistyped filter silently answered for the wrong day.
Every date parameter uses one of these instead:

- `IsoDate` (`YYYY-MM-DD`) and `IsoDateTime` (`YYYY-MM-DDTHH:MM[:SS[.ffffff]]`, optionally
  `Z` or `+HH:MM`) for typed API parameters and body fields: anything else is a 422 naming
  the field;
- `parse_iso_date` for text read by hand (page filters, command-line options);
- `parse_date_parts` for the NHS date input's day, month and year boxes.

`tests/test_strict_dates.py` enumerates every route and fails on a date-typed parameter that
does not use them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import BeforeValidator

# ASCII digits only: `\d` would also take other scripts' digits (٢٠٢٦).
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_DAY_OR_MONTH = re.compile(r"[0-9]{1,2}")
_YEAR = re.compile(r"[0-9]{4}")
ISO_DATE_MESSAGE = "Enter a date as YYYY-MM-DD, for example 2026-11-24"
ISO_DATE_TIME_MESSAGE = (
    "Enter a date and time as YYYY-MM-DDTHH:MM with an optional offset, for example "
    "2026-11-24T14:30+00:00"
)


def parse_iso_date(text: str) -> date:
    """`YYYY-MM-DD` and a day that exists; ValueError (with `ISO_DATE_MESSAGE`) otherwise."""
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(ISO_DATE_MESSAGE)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(ISO_DATE_MESSAGE) from None


def parse_date_parts(day: str, month: str, year: str) -> date:
    """The NHS date input's three boxes: day and month of one or two digits, a four-digit
    year (`int()` alone took `1_000`, `+5` and other scripts' digits); ValueError otherwise."""
    if not (
        _DAY_OR_MONTH.fullmatch(day) and _DAY_OR_MONTH.fullmatch(month) and _YEAR.fullmatch(year)
    ):
        raise ValueError("not a day, month and four-digit year")
    return date(int(year), int(month), int(day))


def _only_iso_text(value: object) -> object:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value  # pydantic then checks it is a real day (no 2026-02-31)
    raise ValueError(ISO_DATE_MESSAGE)


def _only_iso_date_time_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE_TIME.fullmatch(value):
        return value  # pydantic then checks the moment exists (no 25:99)
    raise ValueError(ISO_DATE_TIME_MESSAGE)


IsoDate = Annotated[date, BeforeValidator(_only_iso_text)]
IsoDateTime = Annotated[datetime, BeforeValidator(_only_iso_date_time_text)]
# What the route-enumerating test looks for on every date-typed parameter.
STRICT_DATE_VALIDATORS = (_only_iso_text, _only_iso_date_time_text)
