"""Reach against burden: the flag is decided on the unrounded ratio, 'no recorded need' is
never flagged, and the console provider's SMS deliveries read as not tracked."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.analytics import service
from app.analytics.formatting import display, to_csv
from app.settings import Settings
from tests.analytics.helpers import PERIOD, create_outcomes


def test_no_recorded_need_is_never_flagged_and_console_sms_is_not_tracked(
    session: Session, settings: Settings
) -> None:
    create_outcomes(session, attended=20, dnas=10, communication_needs="bsl")
    create_outcomes(session, attended=20, dnas=10)
    session.flush()
    console = settings.model_copy(update={"sms_provider": "console"})

    section = service.reach(session, console, PERIOD)

    table = next(t for t in section.tables if t.slug == "reach-by-communication-need")
    rows = {row["group"]: row for row in table.rows}
    no_need = rows["No recorded need"]
    assert "left behind" not in no_need["note"]
    assert no_need["sms_rate"] is None
    assert "SMS delivery not tracked" in no_need["note"]
    assert "unrounded" in (table.note or "")


def _counts(appointments: int, dnas: int, reached: int) -> dict[str, int]:
    return {
        "appointments": appointments,
        "dnas": dnas,
        "reached": reached,
        "called": reached,
        "sms_delivered": 0,
    }


TOTALS = {"appointments": 400, "dnas": 100, "reached": 200, "sms_delivered": 0}


def test_the_flag_is_decided_on_the_unrounded_ratio_and_shown_with_its_interval() -> None:
    ratio_column = next(c for c in service.REACH_COLUMNS if c.key == "reach_to_burden")
    # Half the DNAs; 39.5% and 40.5% of those reached: ratios 0.79 and 0.81, both "0.8" at one
    # decimal, which hid the threshold.
    under = service._reach_cells("Black", _counts(200, 50, 79), TOTALS)
    over = service._reach_cells("Mixed", _counts(200, 50, 81), TOTALS)

    assert under["left_behind"] is True
    assert "left behind: ratio 0.790 is under 0.8" in under["note"]
    assert over["left_behind"] is False
    assert "left behind" not in over["note"]
    assert display(under["reach_to_burden"], ratio_column) == "0.79"
    assert display(over["reach_to_burden"], ratio_column) == "0.81"
    # The interval is shown beside it, and says when chance may explain the flag.
    assert under["ratio_ci_low"] < 0.79 < under["ratio_ci_high"]
    assert under["ratio_ci_high"] > 0.8
    assert "chance may explain it" in under["note"]


def test_a_zero_reach_has_a_finite_interval_from_zero() -> None:
    cells = service._reach_cells("Black", _counts(50, 20, 0), TOTALS)

    assert cells["reach_to_burden"] == 0
    assert cells["ratio_ci_low"] == 0
    assert 0 < cells["ratio_ci_high"] < 0.8
    assert "chance" not in cells["note"]


def test_console_deliveries_read_not_tracked_on_the_page_and_in_csv(
    session: Session, settings: Settings
) -> None:
    create_outcomes(session, attended=20, dnas=10)
    session.flush()
    console = settings.model_copy(update={"sms_provider": "console"})

    table = service.reach(session, console, PERIOD).tables[0]

    sms = next(c for c in table.columns if c.key == "sms_rate")
    assert display(table.rows[0]["sms_rate"], sms) == "not tracked"
    assert "not tracked" in to_csv(table).splitlines()[1]
    assert "0.0%" not in display(table.rows[0]["sms_rate"], sms)
