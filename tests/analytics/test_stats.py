"""The statistics behind every published figure, checked against published worked examples."""

from __future__ import annotations

import pytest

from app.analytics.stats import (
    funnel_flag,
    funnel_limits,
    newcombe_difference_interval,
    rate_with_interval,
    wilson_interval,
)


def test_wilson_interval_matches_published_values() -> None:
    # Newcombe (1998), Table I: 0/20 -> 0 to 0.1611; 1/29 -> 0.0061 to 0.1718;
    # 81/263 -> 0.2553 to 0.3662.
    zero = wilson_interval(0, 20)
    assert zero.low == 0.0
    assert zero.high == pytest.approx(0.1611, abs=1e-4)
    one = wilson_interval(1, 29)
    assert (one.low, one.high) == pytest.approx((0.0061, 0.1718), abs=1e-4)
    mid = wilson_interval(81, 263)
    assert (mid.low, mid.high) == pytest.approx((0.2553, 0.3662), abs=1e-4)


def test_newcombe_difference_matches_the_papers_example() -> None:
    # Newcombe (1998), method 10 on 56/70 - 48/80: 0.0524 to 0.3339.
    interval = newcombe_difference_interval(56, 70, 48, 80)
    assert (interval.low, interval.high) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_small_cells_are_suppressed_with_a_reason_and_no_counts() -> None:
    small = rate_with_interval(3, 9)
    assert small.suppressed
    assert small.rate is None
    assert small.events is None
    assert small.total is None
    assert small.reason is not None
    assert "fewer than 10" in small.reason
    shown = rate_with_interval(3, 10)
    assert not shown.suppressed
    assert shown.rate == pytest.approx(0.3)
    assert shown.ci_low is not None
    assert shown.ci_high is not None
    assert shown.ci_low < 0.3 < shown.ci_high


def test_empty_cell_says_there_were_no_appointments() -> None:
    assert rate_with_interval(0, 0).reason == "no appointments"


def test_funnel_limits_narrow_with_volume_and_flag_outliers() -> None:
    small, large = funnel_limits(0.1, 50), funnel_limits(0.1, 5000)
    assert small.upper998 > small.upper95 > large.upper95 > 0.1
    assert large.upper95 == pytest.approx(0.1 + 1.96 * (0.09 / 5000) ** 0.5, abs=1e-4)
    assert funnel_flag(0.1, large) == "within limits"
    assert funnel_flag(0.11, large) == "alert"
    assert funnel_flag(0.2, large) == "alarm"
    assert funnel_flag(0.0, large) == "alarm"
