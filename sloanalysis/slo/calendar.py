"""Calendar-aligned SLO windows: the budget is reset at every calendar boundary.

A rolling SLO looks back over its period from any instant. A calendar SLO (OpenSLO
``isRolling: false``) divides time into periods -- days, ISO weeks (Monday), months, quarters,
years, or ``count`` of them -- in a time zone, and each period has its own budget.

Boundaries are wall-clock times in the zone, converted to instants with :mod:`zoneinfo`, so a
period follows daylight saving time: a day in ``Europe/Berlin`` lasts 23 hours on the last
Sunday of March and 25 on the last Sunday of October. A boundary on a wall-clock time that does
not exist (inside a spring-forward gap) is the first instant after the gap; one that exists twice
(fall-back) is its first occurrence.

Boundaries are ``start + k * count units`` for every integer ``k``. ``start`` (naive, local to the
zone) defaults to the natural epoch of the unit: 1970-01-01 00:00 (day, month, quarter, year) or
Monday 1970-01-05 00:00 (week); so with ``count`` 1 the periods are the natural ones (midnight,
Monday, the 1st of the month, January/April/July/October 1st, January 1st). Adding months keeps
the anchor's day of month, clamped to the month's length (an anchor on the 31st gives the 30th
of April).

Periods are half-open ``[start_ms, end_ms)`` in integer milliseconds since the epoch. A per-step
amount stamped ``t`` covers ``(t - step, t]``: it belongs to the period containing ``t - 1``
(:meth:`CalendarWindow.period_of_step`).
"""

from __future__ import annotations

import calendar as _calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sloanalysis.errors import UserError

__all__ = ["CALENDAR_UNITS", "CalendarUnit", "CalendarWindow", "calendar_window", "zone"]

CalendarUnit = Literal["day", "week", "month", "quarter", "year"]
CALENDAR_UNITS: tuple[str, ...] = get_args(CalendarUnit)

_DAY_MS = 86_400_000
_NOMINAL_DAYS = {"day": 1, "week": 7, "month": 30, "quarter": 90, "year": 365}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_EPOCH = {
    "day": datetime(1970, 1, 1),
    "week": datetime(1970, 1, 5),  # a Monday: ISO weeks
    "month": datetime(1970, 1, 1),
    "quarter": datetime(1970, 1, 1),
    "year": datetime(1970, 1, 1),
}
_DURATION = re.compile(r"^([1-9][0-9]*)([dwMQY])$")
_DURATION_UNITS: dict[str, CalendarUnit] = {
    "d": "day",
    "w": "week",
    "M": "month",
    "Q": "quarter",
    "Y": "year",
}


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; UserError on one line when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise UserError(f"unknown time zone {name!r} (expected an IANA name such as Europe/Berlin)") from None


def _add_months(anchor: datetime, months: int) -> datetime:
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, _calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def _utc_ms(local: datetime, tz: ZoneInfo) -> int:
    """Milliseconds of the naive wall-clock time ``local`` in ``tz`` (gaps: the instant after)."""
    early = int(local.replace(tzinfo=tz, fold=0).timestamp() * 1000)
    if _local(early, tz) == local:
        return early
    # inside a spring-forward gap: fold=0 reads the time with the offset before the jump and lands
    # after it; the first instant whose wall clock is at least ``local`` is the transition.
    lo = int(local.replace(tzinfo=tz, fold=1).timestamp() * 1000)
    lo, hi = min(lo, early), max(lo, early)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _local(mid, tz) >= local:
            hi = mid
        else:
            lo = mid
    return hi


def _local(t_ms: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(tz).replace(tzinfo=None)


def _on_natural_boundary(t: datetime, unit: str) -> bool:
    """Whether ``t`` starts a natural period of ``unit`` (an anchor that changes nothing)."""
    if (t.hour, t.minute, t.second, t.microsecond) != (0, 0, 0, 0):
        return False
    if unit == "day":
        return True
    if unit == "week":
        return t.weekday() == 0
    if unit == "month":
        return t.day == 1
    if unit == "quarter":
        return t.day == 1 and t.month in (1, 4, 7, 10)
    return (t.month, t.day) == (1, 1)


@dataclass(frozen=True)
class CalendarWindow:
    """``count`` calendar ``unit``\\ s in ``time_zone``, anchored at ``start`` (naive local time;
    None: the unit's natural boundaries)."""

    unit: CalendarUnit
    count: int = 1
    time_zone: str = "UTC"
    start: datetime | None = None

    def __post_init__(self) -> None:
        if self.unit not in CALENDAR_UNITS:
            raise UserError(
                f"unknown calendar unit {self.unit!r} (expected one of {', '.join(CALENDAR_UNITS)})"
            )
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise UserError(f"calendar window count must be a positive integer, got {self.count!r}")
        tz = zone(self.time_zone)
        if self.start is not None and self.start.tzinfo is not None:
            # an aware anchor: the same instant, as wall-clock time in the window's zone
            object.__setattr__(self, "start", self.start.astimezone(tz).replace(tzinfo=None))

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.time_zone)

    @property
    def anchor(self) -> datetime:
        """The wall-clock time of boundary 0."""
        return self.start if self.start is not None else _EPOCH[self.unit]

    @property
    def nominal_ms(self) -> int:
        """A nominal length (30-day months, 90-day quarters, 365-day years) for figures that need
        one number, such as alert windows; the periods themselves are exact."""
        return _NOMINAL_DAYS[self.unit] * self.count * _DAY_MS

    # -- boundaries -------------------------------------------------------------------------

    def _boundary_local(self, k: int) -> datetime:
        a = self.anchor
        if self.unit in _MONTHS:
            return _add_months(a, k * self.count * _MONTHS[self.unit])
        return a + timedelta(days=k * self.count * _NOMINAL_DAYS[self.unit])

    def _boundary_ms(self, k: int) -> int:
        return _utc_ms(self._boundary_local(k), self.tz)

    def _index_near(self, t_ms: int) -> int:
        local, a = _local(t_ms, self.tz), self.anchor
        if self.unit in _MONTHS:
            months = (local.year - a.year) * 12 + local.month - a.month
            return months // (self.count * _MONTHS[self.unit])
        return (local - a).days // (self.count * _NOMINAL_DAYS[self.unit])

    def _index_of(self, t_ms: int) -> int:
        k = self._index_near(t_ms)
        while self._boundary_ms(k) > t_ms:
            k -= 1
        while self._boundary_ms(k + 1) <= t_ms:
            k += 1
        return k

    def period_containing(self, t_ms: int) -> tuple[int, int]:
        """The period ``[start_ms, end_ms)`` that contains the instant ``t_ms``."""
        k = self._index_of(t_ms)
        return self._boundary_ms(k), self._boundary_ms(k + 1)

    def period_of_step(self, t_ms: int) -> tuple[int, int]:
        """The period of an amount stamped ``t_ms`` covering ``(t - step, t]``: the one containing
        ``t_ms - 1`` (a step ending on a boundary belongs to the period before it)."""
        return self.period_containing(t_ms - 1)

    def periods(self, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
        """The periods ``[a, b)`` overlapping the range from ``start_ms`` to ``end_ms`` (``a < end_ms``
        and ``b > start_ms``), in order; the containing period when the range is one instant."""
        if end_ms < start_ms:
            raise UserError(f"empty time range: start {start_ms} is after end {end_ms}")
        k = self._index_of(start_ms)
        out = [(self._boundary_ms(k), self._boundary_ms(k + 1))]
        while out[-1][1] < end_ms:
            k += 1
            out.append((out[-1][1], self._boundary_ms(k + 1)))
        return out

    def boundaries(self, start_ms: int, end_ms: int) -> list[int]:
        """The boundaries strictly inside ``(start_ms, end_ms)`` (where budgets reset)."""
        return [a for a, _ in self.periods(start_ms, end_ms) if start_ms < a < end_ms]

    # -- words -------------------------------------------------------------------------------

    def period_label(self, period_start_ms: int) -> str:
        """The period starting at (or containing) ``period_start_ms`` in words, with the zone:
        ``November 2026 (Europe/Berlin)``, ``2026-W45 (UTC)``, ``Q4 2026 (UTC)``."""
        a, b = self.period_containing(period_start_ms)
        first, last = _local(a, self.tz), _local(b, self.tz)
        natural = self.count == 1 and _on_natural_boundary(self.anchor, self.unit)
        if not natural:
            text = f"{first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M}"
        elif self.unit == "day":
            text = f"{first:%Y-%m-%d}"
        elif self.unit == "week":
            year, week, _ = first.isocalendar()
            text = f"{year}-W{week:02d}"
        elif self.unit == "month":
            text = f"{first:%B %Y}"
        elif self.unit == "quarter":
            text = f"Q{(first.month - 1) // 3 + 1} {first.year}"
        else:
            text = f"{first.year}"
        return f"{text} ({self.time_zone})"

    def describe(self) -> str:
        """The window itself in words: ``calendar month (Europe/Berlin)``, ``2 calendar weeks ...``."""
        what = f"calendar {self.unit}" if self.count == 1 else f"{self.count} calendar {self.unit}s"
        plain = self.start is None or (self.count == 1 and _on_natural_boundary(self.start, self.unit))
        since = "" if plain else f" from {self.anchor:%Y-%m-%d %H:%M}"
        return f"{what}{since} ({self.time_zone})"

    def __str__(self) -> str:
        return self.describe()


def calendar_window(duration: str, time_zone: str = "UTC", start: datetime | None = None) -> CalendarWindow:
    """A window from an OpenSLO-style calendar duration: ``1d``, ``1w``, ``1M``, ``1Q``, ``1Y``
    (or ``N`` of them); UserError on one line for anything else (``1h`` is not a calendar unit)."""
    m = _DURATION.match(duration.strip())
    if m is None:
        raise UserError(
            f"calendar window duration {duration!r}: expected a count and one of d, w, M, Q, Y (e.g. 1M)"
        )
    return CalendarWindow(_DURATION_UNITS[m.group(2)], int(m.group(1)), time_zone, start)
