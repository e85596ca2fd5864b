"""Circuit breaker and limit state machines: hand-worked cases for every transition."""

from __future__ import annotations

import datetime as dt

from simulator.breaker import BreakerState, CircuitBreaker
from simulator.limits import PayoutLimits

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def test_opens_on_the_nth_consecutive_failure_only() -> None:
    b = CircuitBreaker(failure_threshold=3, cooldown=60, half_open_probes=2)
    assert b.record_failure(1.0) is None
    assert b.record_failure(2.0) is None
    assert b.record_success(3.0) is None  # resets the streak
    assert b.record_failure(4.0) is None
    assert b.record_failure(5.0) is None
    tr = b.record_failure(6.0)
    assert tr is not None and (tr.old, tr.new, tr.reason) == (CLOSED, OPEN, "failures")
    assert b.until == 66.0
    assert not b.allow(10.0) and not b.accepting


def test_cooldown_half_open_probes_then_close() -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown=30, half_open_probes=2)
    b.record_failure(100.0)
    assert b.tick(129.999) is None and b.state is OPEN
    tr = b.tick(130.0)
    assert tr is not None and (tr.old, tr.new, tr.reason) == (OPEN, HALF, "cooldown_elapsed")
    assert b.allow(130.0) and b.allow(130.5)
    assert not b.allow(131.0)  # only two probes
    assert b.record_success(132.0) is None and b.state is HALF
    tr = b.record_success(133.0)
    assert tr is not None and (tr.new, tr.reason) == (CLOSED, "probes_succeeded")
    assert b.allow(134.0) and b.failure_count == 0


def test_failed_probe_reopens_for_another_cooldown() -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown=30, half_open_probes=3)
    b.record_failure(0.0)
    b.tick(30.0)
    assert b.allow(31.0)
    tr = b.record_failure(32.0)
    assert tr is not None and (tr.old, tr.new) == (HALF, OPEN)
    assert b.until == 62.0
    assert b.tick(61.0) is None
    assert b.tick(62.0) is not None and b.state is HALF
    assert b.probes_granted == 0


def test_limit_trip_closes_at_reset_without_half_open() -> None:
    b = CircuitBreaker(failure_threshold=5, cooldown=60, half_open_probes=3)
    tr = b.trip_limit(10.0, "hourly_limit", reset_at=3600.0)
    assert tr is not None and (tr.new, tr.reason) == (OPEN, "hourly_limit")
    assert b.tick(3599.0) is None
    tr = b.tick(3600.0)
    assert tr is not None and (tr.old, tr.new, tr.reason) == (OPEN, CLOSED, "hourly_limit_reset")


def test_longer_limit_trip_extends_failure_trip_but_shorter_does_not() -> None:
    b = CircuitBreaker(failure_threshold=1, cooldown=60, half_open_probes=1)
    b.record_failure(0.0)  # open until 60
    assert b.trip_limit(1.0, "daily_limit", reset_at=30.0) is None and b.until == 60.0
    assert b.reason == "failures"
    assert b.trip_limit(2.0, "daily_limit", reset_at=500.0) is None
    assert (b.until, b.reason) == (500.0, "daily_limit")
    tr = b.tick(500.0)
    assert tr is not None and tr.new is CLOSED


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_hourly_limit_resets_at_the_utc_hour() -> None:
    lim = PayoutLimits(hourly_limit=1000, daily_limit=10000)
    t = _epoch("2026-01-05T10:15:00")
    assert lim.reserve(t, 600).ok
    check = lim.reserve(t + 60, 401)
    assert not check.ok and check.limit == "hourly_limit"
    assert check.reset_at == _epoch("2026-01-05T11:00:00")
    assert lim.reserve(t + 60, 400).ok  # exactly 1000 is allowed
    assert lim.usage(_epoch("2026-01-05T10:59:59")) == (1000, 1000)
    assert lim.usage(_epoch("2026-01-05T11:00:00")) == (1000, 0)


def test_daily_limit_resets_at_utc_midnight_and_wins_over_hourly() -> None:
    lim = PayoutLimits(hourly_limit=1000, daily_limit=2500)
    base = _epoch("2026-01-05T21:00:00")
    for h in range(2):
        assert lim.reserve(base + h * 3600, 1000).ok
    assert lim.reserve(base + 2 * 3600, 500).ok
    check = lim.reserve(base + 2 * 3600 + 5, 600)  # would exceed both: the daily limit is named
    assert (check.ok, check.limit, check.reset_at) == (False, "daily_limit", _epoch("2026-01-06T00:00:00"))
    assert lim.usage(_epoch("2026-01-06T00:00:00")) == (0, 0)


def test_release_only_within_the_same_window() -> None:
    lim = PayoutLimits(hourly_limit=1000, daily_limit=10000)
    t = _epoch("2026-01-05T10:59:00")
    lim.reserve(t, 300)
    lim.release(t, t + 30, 100)
    assert lim.usage(t + 30) == (200, 200)
    lim.release(t, t + 120, 100)  # next hour: the hourly window already reset
    assert lim.usage(t + 120) == (100, 0)
