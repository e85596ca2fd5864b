"""Hourly and daily payout limits over UTC calendar windows.

Usage counts the amounts of payouts accepted in the current window; a payout that later fails
releases its amount if its window is still current (nothing left the wallet). Windows are
calendar hours and days in UTC, so usage resets at each boundary, as the seed's runbook says.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600.0
DAY = 86400.0


@dataclass(frozen=True)
class LimitCheck:
    ok: bool
    limit: str = ""  # "hourly_limit" or "daily_limit" when not ok
    reset_at: float = 0.0  # epoch seconds of the boundary that frees the limit


class PayoutLimits:
    """Clock values are epoch seconds (UTC), so window boundaries are calendar-aligned."""

    def __init__(self, hourly_limit: float, daily_limit: float) -> None:
        self.hourly_limit = hourly_limit
        self.daily_limit = daily_limit
        self._hour = -1.0
        self._day = -1.0
        self.hourly_usage = 0.0
        self.daily_usage = 0.0

    def _roll(self, now: float) -> None:
        hour, day = now - now % HOUR, now - now % DAY
        if hour != self._hour:
            self._hour, self.hourly_usage = hour, 0.0
        if day != self._day:
            self._day, self.daily_usage = day, 0.0

    def usage(self, now: float) -> tuple[float, float]:
        """(daily, hourly) usage at ``now``."""
        self._roll(now)
        return self.daily_usage, self.hourly_usage

    def reserve(self, now: float, amount: float) -> LimitCheck:
        """Count ``amount`` against both limits, or refuse naming the limit that would be exceeded."""
        self._roll(now)
        if self.daily_usage + amount > self.daily_limit:
            return LimitCheck(False, "daily_limit", self._day + DAY)
        if self.hourly_usage + amount > self.hourly_limit:
            return LimitCheck(False, "hourly_limit", self._hour + HOUR)
        self.daily_usage += amount
        self.hourly_usage += amount
        return LimitCheck(True)

    def release(self, reserved_at: float, now: float, amount: float) -> None:
        """Give back ``amount`` reserved at ``reserved_at`` if its windows are still current."""
        self._roll(now)
        if reserved_at - reserved_at % HOUR == self._hour:
            self.hourly_usage = max(0.0, self.hourly_usage - amount)
        if reserved_at - reserved_at % DAY == self._day:
            self.daily_usage = max(0.0, self.daily_usage - amount)

    def restore(self, now: float, daily: float, hourly: float) -> None:
        """Set usage after a restart (reloaded from the database)."""
        self._roll(now)
        self.daily_usage, self.hourly_usage = daily, hourly
