"""The payout circuit breaker as a pure state machine; the clock is passed in.

States follow the seed: ``closed`` (0), ``open`` (1), ``half_open`` (2), the values of the
``tron_circuit_breaker_status`` gauge. Two kinds of trip:

* failures: ``failure_threshold`` consecutive TRON failures open it; after ``cooldown`` seconds it
  goes half-open and lets ``half_open_probes`` payouts through; when all of them succeed it
  closes, and any failure opens it again for another cooldown;
* limits: exhausting the hourly or daily limit opens it until the next UTC hour or day boundary,
  when usage resets and it closes directly.

Every method that can change state returns the :class:`Transition` it made (or None), so the
caller can set the gauge and log the seed's ``circuit_breaker_event`` without polling.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Transition:
    at: float
    old: BreakerState
    new: BreakerState
    reason: str


class CircuitBreaker:
    """State machine; ``now`` is seconds on any monotonic clock (simulated or real)."""

    def __init__(self, failure_threshold: int, cooldown: float, half_open_probes: int) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self.half_open_probes = half_open_probes
        self.state = BreakerState.CLOSED
        self.failure_count = 0
        self.reason = ""
        self.until = 0.0  # when an open breaker moves on (half-open or closed)
        self.probes_granted = 0
        self.probe_successes = 0

    def _move(self, now: float, new: BreakerState, reason: str) -> Transition:
        old, self.state, self.reason = self.state, new, reason
        if new is not BreakerState.HALF_OPEN:
            self.probes_granted = self.probe_successes = 0
        return Transition(now, old, new, reason)

    def tick(self, now: float) -> Transition | None:
        """Advance time-driven transitions (cooldown over, limit window reset)."""
        if self.state is BreakerState.OPEN and now >= self.until:
            if self.reason == "failures":
                self.probes_granted = self.probe_successes = 0
                return self._move(now, BreakerState.HALF_OPEN, "cooldown_elapsed")
            self.failure_count = 0
            return self._move(now, BreakerState.CLOSED, f"{self.reason}_reset")
        return None

    def allow(self, now: float) -> bool:
        """May a payout call the network now? In half-open state each call takes one probe."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and self.probes_granted < self.half_open_probes:
            self.probes_granted += 1
            return True
        return False

    @property
    def accepting(self) -> bool:
        """Whether new payout submissions are accepted (closed, or half-open with probes left)."""
        return self.state is BreakerState.CLOSED or (
            self.state is BreakerState.HALF_OPEN and self.probes_granted < self.half_open_probes
        )

    def record_success(self, now: float) -> Transition | None:
        self.failure_count = 0
        if self.state is BreakerState.HALF_OPEN:
            self.probe_successes += 1
            if self.probe_successes >= self.half_open_probes:
                return self._move(now, BreakerState.CLOSED, "probes_succeeded")
        return None

    def record_failure(self, now: float) -> Transition | None:
        self.failure_count += 1
        if self.state is BreakerState.HALF_OPEN:
            self.until = now + self.cooldown
            return self._move(now, BreakerState.OPEN, "failures")
        if self.state is BreakerState.CLOSED and self.failure_count >= self.failure_threshold:
            self.until = now + self.cooldown
            return self._move(now, BreakerState.OPEN, "failures")
        return None

    def trip_limit(self, now: float, limit: str, reset_at: float) -> Transition | None:
        """Open until ``reset_at`` because ``limit`` ("hourly_limit" or "daily_limit") is exhausted.

        A limit trip overrides a failure trip only if it lasts longer.
        """
        if self.state is BreakerState.OPEN and self.until >= reset_at:
            return None
        self.until = reset_at
        if self.state is BreakerState.OPEN:
            self.reason = limit
            return None
        return self._move(now, BreakerState.OPEN, limit)
