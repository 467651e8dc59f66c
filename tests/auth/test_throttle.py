from __future__ import annotations

from app.auth.throttle import LoginThrottle


def test_a_client_is_blocked_after_its_failures_until_the_window_passes() -> None:
    throttle = LoginThrottle(2, window_seconds=60)
    throttle.record_failure("10.0.0.1", now=0)
    throttle.record_failure("10.0.0.1", now=1)

    assert throttle.blocked("10.0.0.1", now=2)
    assert not throttle.blocked("10.0.0.2", now=2)
    assert not throttle.blocked("10.0.0.1", now=61)


def test_retry_after_is_when_the_oldest_counted_failure_leaves_the_window() -> None:
    throttle = LoginThrottle(2, window_seconds=60)
    throttle.record_failure("10.0.0.1", now=0)
    throttle.record_failure("10.0.0.1", now=10)

    assert throttle.retry_after("10.0.0.1", now=20) == 40
    assert throttle.retry_after("10.0.0.2", now=20) == 0
