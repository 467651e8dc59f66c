"""The statistics analytics reports rest on: rates with Wilson intervals, the Newcombe interval
for a difference of two proportions, small-number suppression, and funnel-plot control limits.

Plain functions on counts, so every figure on a page can be checked by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

Z95 = NormalDist().inv_cdf(0.975)  # 1.959964...
Z998 = NormalDist().inv_cdf(0.999)  # 3.090232..., the 99.8% funnel limit

# NHS statistics suppress small cells so that nobody can be singled out: a rate built on fewer
# than this many appointments is not shown (its cell says why instead).
SUPPRESSION_THRESHOLD = 10
SUPPRESSED_REASON = f"fewer than {SUPPRESSION_THRESHOLD} appointments: suppressed"
# A group whose share of those reached by a call is under this fraction of its share of DNAs
# is flagged as left behind (reach against burden).
LEFT_BEHIND_RATIO = 0.8


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float


def wilson_interval(events: int, total: int, z: float = Z95) -> Interval:
    """The Wilson score interval for a proportion events/total (Wilson 1927).

    Unlike the normal approximation it stays inside [0, 1] and behaves at 0 and at small n.
    """
    if total <= 0:
        raise ValueError("a proportion needs at least one observation")
    if not 0 <= events <= total:
        raise ValueError("events must lie between 0 and total")
    p = events / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total))
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference_interval(
    events_a: int, total_a: int, events_b: int, total_b: int, z: float = Z95
) -> Interval:
    """95% interval for p_a - p_b by Newcombe's hybrid score method (Newcombe 1998, method 10).

    Built from the two Wilson intervals; recommended over the normal (Wald) approximation
    because it keeps its coverage when rates are small, as DNA rates are.
    """
    p_a, p_b = events_a / total_a, events_b / total_b
    a = wilson_interval(events_a, total_a, z)
    b = wilson_interval(events_b, total_b, z)
    difference = p_a - p_b
    below = math.sqrt((p_a - a.low) ** 2 + (b.high - p_b) ** 2)
    above = math.sqrt((a.high - p_a) ** 2 + (p_b - b.low) ** 2)
    return Interval(difference - below, difference + above)


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate with its interval, or a suppressed cell that says why it is not shown."""

    events: int | None
    total: int | None
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    suppressed: bool
    reason: str | None

    def as_dict(self) -> dict[str, object]:
        return {
            "events": self.events,
            "total": self.total,
            "rate": self.rate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "suppressed": self.suppressed,
            "reason": self.reason,
        }


def rate_with_interval(events: int, total: int) -> Rate:
    """The rate and Wilson 95% interval, suppressed when fewer than ten observations lie behind it.

    A suppressed cell hides the counts too: showing them would reveal what was suppressed.
    """
    if total < SUPPRESSION_THRESHOLD:
        reason = "no appointments" if total == 0 else SUPPRESSED_REASON
        return Rate(None, None, None, None, None, True, reason)
    interval = wilson_interval(events, total)
    return Rate(events, total, events / total, interval.low, interval.high, False, None)


@dataclass(frozen=True, slots=True)
class FunnelLimits:
    lower95: float
    upper95: float
    lower998: float
    upper998: float


def funnel_limits(target: float, total: int) -> FunnelLimits:
    """Control limits around the overall proportion for a unit of `total` cases (Spiegelhalter
    2005): normal approximation to the binomial, 95% and 99.8%, clipped to [0, 1]."""
    spread = math.sqrt(max(target * (1 - target), 0.0) / total) if total > 0 else math.inf
    return FunnelLimits(
        lower95=max(0.0, target - Z95 * spread),
        upper95=min(1.0, target + Z95 * spread),
        lower998=max(0.0, target - Z998 * spread),
        upper998=min(1.0, target + Z998 * spread),
    )


def funnel_flag(proportion: float, limits: FunnelLimits) -> str:
    """'alarm' beyond 99.8%, 'alert' beyond 95%, else 'within limits'."""
    if proportion > limits.upper998 or proportion < limits.lower998:
        return "alarm"
    if proportion > limits.upper95 or proportion < limits.lower95:
        return "alert"
    return "within limits"


def share_ratio_interval(
    events_a: int, total_a: int, events_b: int, total_b: int, z: float = Z95
) -> Interval:
    """95% interval for (events_a / total_a) / (events_b / total_b), the ratio of two shares
    (a group's share of those reached over its share of DNAs), by the log method of Katz et al.
    (1978): log ratio +/- z * sqrt((1 - p_a) / a + (1 - p_b) / b). A zero count gets half an
    event (Haldane's correction) so the interval stays finite; an upper limit is reported
    however large. The two shares come from overlapping appointments, so treating them as
    independent makes the interval a little wider than it need be (conservative)."""
    if total_a <= 0 or total_b <= 0 or events_b < 0 or events_a < 0:
        raise ValueError("a share needs at least one observation")
    a = events_a if events_a > 0 else 0.5
    b = events_b if events_b > 0 else 0.5
    p_a, p_b = a / total_a, b / total_b
    log_ratio = math.log(p_a / p_b)
    spread = z * math.sqrt(max(1 - p_a, 0.0) / a + max(1 - p_b, 0.0) / b)
    low = math.exp(log_ratio - spread)
    if events_a == 0:
        low = 0.0
    return Interval(low, math.exp(log_ratio + spread))
