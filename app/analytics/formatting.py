"""How report cells read to a person (pages, board pack, command line) and in CSV files."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from app.analytics.schemas import Column, Table

SUPPRESSED_MARK = "*"


def display(value: Any, column: Column) -> str:
    """A cell for people: percentages to one decimal, money in pounds, '*' when suppressed."""
    if value is None:
        if column.missing is not None:
            return column.missing
        return "" if column.format == "text" else SUPPRESSED_MARK
    if column.format == "ratio":
        return f"{float(value):.2f}"
    if column.format == "date":
        return f"{date.fromisoformat(str(value)):%-d %b %Y}"  # the UK way: 7 Sep 2026
    if column.format == "percent":
        return f"{float(value) * 100:.1f}%"
    if column.format == "count":
        return f"{int(value):,}"
    if column.format == "money":
        return money(float(value))
    if column.format == "number":
        return f"{float(value):,.1f}"
    return str(value)


def money(value: float) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}£{abs(value):,.0f}"


def to_csv(table: Table) -> str:
    """The table as CSV: raw values (rates as fractions), '*' for suppressed cells, and the
    note column saying why."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([column.label for column in table.columns])
    for row in table.rows:
        cells = []
        for column in table.columns:
            value = row.get(column.key)
            if value is None and column.missing is not None:
                cells.append(column.missing)
            elif value is None:
                cells.append("" if column.format == "text" else SUPPRESSED_MARK)
            elif column.format == "percent":
                cells.append(f"{float(value):.6f}")
            elif column.format in ("number", "ratio"):
                cells.append(f"{float(value):.3f}")
            else:
                cells.append(str(value))
        writer.writerow(cells)
    return buffer.getvalue()


def to_text(table: Table, *, max_rows: int = 40) -> str:
    """A plain-text table for the command line."""
    header = [column.label for column in table.columns]
    body = [[display(row.get(c.key), c) for c in table.columns] for row in table.rows[:max_rows]]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *body, strict=False)]
    lines = [table.title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in body]
    return "\n".join(lines)
