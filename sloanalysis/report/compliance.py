"""Compliance over the whole range, not only at its end: was the SLO missed anywhere in it?

Two ways to look, chosen by the range's length against the SLO's period ``P``:

- ``periods`` (the range holds at least two periods): every complete period inside the range,
  counted back from its end, ``(end - k P, end - (k - 1) P]`` for ``k = 1, 2, ...`` while the
  period starts at or after the range's start. The last one is the window of the SLO table's row.
  Each period is measured like that row (for event SLIs one evaluation of the templates over the
  whole period, as :func:`~sloanalysis.slo.budget.measure_window`; all periods in one range
  query), so the two agree on the last period.
- ``rolling`` (shorter ranges): the worst trailing window of one period, the minimum of the
  rolling budget left (:func:`~sloanalysis.slo.status.rolling_budget_remaining`) over the steps
  whose window lies inside the range, and the table's own figure at the end. With a range
  shorter than a period that is the whole range, as in the table.

Calendar SLOs (``slo.calendar``) are judged by their calendar periods instead: every period the
range touches, each with its own budget (:func:`~sloanalysis.slo.budget.period_budgets`), the
first and last cut at the range's ends; the last one is ``so far`` while its period goes on. They
are described by name (``October 2026, November 2026 (so far)``), not by a nominal length.

A window is missed when its SLI is below the objective (its budget left is negative); a window
without traffic has no SLI and counts neither way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from sloanalysis.durations import format_duration_human
from sloanalysis.slo.budget import QueryBackend, events_frame, frame_to_series, period_budgets
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.spec import SLO, EventsSLI, LatencySLI
from sloanalysis.slo.status import SLOStatus, calendar_of, rolling_budget_remaining

__all__ = [
    "Compliance",
    "Window",
    "calendar_compliance",
    "complete_periods",
    "compliance",
    "describe_windows",
    "window_label",
    "worst_rolling_window",
]

Method = Literal["periods", "rolling"]


@dataclass(frozen=True)
class Window:
    """One assessed window ``(start_ms, end_ms]``: its SLI and share of the budget left (None
    without traffic) and whether the objective was met there (None without traffic)."""

    start_ms: int
    end_ms: int
    sli: float | None
    budget_remaining_ratio: float | None
    met: bool | None


@dataclass(frozen=True)
class Compliance:
    """The windows assessed for one SLO over a range and the worst of them (``calendar``: a
    calendar SLO's window, whose whole periods the windows are; ``range_ms``: the range assessed,
    which may begin or end inside a period)."""

    method: Method
    period_ms: int
    windows: tuple[Window, ...]
    calendar: CalendarWindow | None = None
    range_ms: tuple[int, int] | None = None

    @property
    def measured(self) -> list[Window]:
        return [w for w in self.windows if w.met is not None]

    @property
    def missed(self) -> list[Window]:
        return [w for w in self.windows if w.met is False]

    @property
    def worst(self) -> Window | None:
        """The window with the least budget left (the earliest of equals); None without traffic."""
        measured = self.measured
        return min(measured, key=lambda w: (w.budget_remaining_ratio, w.end_ms)) if measured else None

    def as_dict(self) -> dict[str, Any]:
        worst = self.worst
        return {
            "method": self.method,
            "period_ms": self.period_ms,
            "calendar": None if self.calendar is None else str(self.calendar),
            "assessed": describe_windows(self),
            "windows": len(self.windows),
            "measured": len(self.measured),
            "missed": len(self.missed),
            "worst": None if worst is None else {**asdict(worst), "label": window_label(self, worst)},
            "missed_windows": [{**asdict(w), "label": window_label(self, w)} for w in self.missed],
        }


def _window(start_ms: int, end_ms: int, objective: float, good: float, valid: float) -> Window:
    if valid <= 0:
        return Window(start_ms, end_ms, None, None, None)
    sli = good / valid
    remaining = 1.0 - (valid - good) / ((1.0 - objective) * valid)
    return Window(start_ms, end_ms, sli, remaining, sli >= objective)


def complete_periods(start_ms: int, end_ms: int, period_ms: int) -> list[tuple[int, int]]:
    """The complete periods inside ``(start, end]`` counted back from ``end``, oldest first."""
    count = (end_ms - start_ms) // period_ms
    return [(end_ms - k * period_ms, end_ms - (k - 1) * period_ms) for k in range(count, 0, -1)]


def worst_rolling_window(frame: pd.DataFrame, status: SLOStatus, range_start_ms: int) -> tuple[Window, ...]:
    """The worst trailing window of one period whose window lies inside the range (steps at or after
    ``range_start + P``), and the table's own window at the end; both when they differ."""
    slo = status.slo
    end_window = _window(
        status.start_ms, status.end_ms, slo.objective, status.budget.good, status.budget.valid
    )
    if frame.empty:
        return (end_window,)
    left = rolling_budget_remaining(frame, slo.objective, slo.period_ms)
    sums = frame[["good", "valid"]].astype(np.float64).rolling(pd.Timedelta(milliseconds=slo.period_ms)).sum()
    ms = _epoch_ms(left.index)
    inside = (ms >= range_start_ms + slo.period_ms) & (ms < status.end_ms) & (sums["valid"].to_numpy() > 0)
    if not inside.any():
        return (end_window,)
    i = int(np.flatnonzero(inside)[np.argmin(left.to_numpy()[inside])])
    good, valid = float(sums["good"].iloc[i]), float(sums["valid"].iloc[i])
    worst = _window(int(ms[i]) - slo.period_ms, int(ms[i]), slo.objective, good, valid)
    return (worst, end_window)


def _epoch_ms(index: pd.Index) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(index).as_unit("ms").asi8, dtype=np.int64)


def _period_totals(
    slo: SLO, backend: QueryBackend, frame: pd.DataFrame, periods: list[tuple[int, int]]
) -> list[tuple[float, float]]:
    """``(good, valid)`` of each period (all of one length, ``P``), as the table measures its window.

    Event SLIs: the templates at window ``P``, evaluated at every period's end in one range query
    with step ``P`` (the same evaluations as one :func:`~sloanalysis.slo.budget.measure_window` per
    period). Other SLIs: the sums of the per-step frame over each period (what ``measure_window``
    sums for them)."""
    sli = slo.sli
    if isinstance(sli, EventsSLI | LatencySLI):
        period = periods[0][1] - periods[0][0]
        first, last = periods[0][1], periods[-1][1]
        scale = period / 1000.0 if sli.per_second else 1.0
        ends = pd.DatetimeIndex(
            pd.to_datetime(np.array([hi for _, hi in periods], np.int64), unit="ms", utc=True)
        )
        total = frame_to_series(backend.query_range(sli.total_expr(period), first, last, period)) * scale
        good = frame_to_series(backend.query_range(sli.good_expr(period), first, last, period)) * scale
        amounts = events_frame(good.reindex(ends), total.reindex(ends))
        return [(float(g), float(v)) for g, v in zip(amounts["good"], amounts["valid"], strict=True)]
    ms = _epoch_ms(frame.index)
    good_steps, valid_steps = frame["good"].to_numpy(np.float64), frame["valid"].to_numpy(np.float64)
    out = []
    for lo, hi in periods:
        inside = (ms > lo) & (ms <= hi)
        out.append((float(good_steps[inside].sum()), float(valid_steps[inside].sum())))
    return out


def compliance(
    status: SLOStatus,
    frame: pd.DataFrame,
    backend: QueryBackend,
    range_start_ms: int,
) -> Compliance:
    """The SLO's compliance over ``(range_start_ms, status.end_ms]`` (see the module's docstring).

    ``frame``: the per-step frame of the range (:func:`~sloanalysis.slo.budget.measure`);
    ``status``: the SLO at the range's end; ``backend`` measures each complete period. A calendar
    SLO: :func:`calendar_compliance`."""
    slo = status.slo
    cal = calendar_of(slo)
    if cal is not None:
        return calendar_compliance(slo, frame, cal, range_start_ms, status.end_ms)
    periods = complete_periods(range_start_ms, status.end_ms, slo.period_ms)
    if len(periods) < 2:
        return Compliance("rolling", slo.period_ms, worst_rolling_window(frame, status, range_start_ms))
    totals = _period_totals(slo, backend, frame, periods)
    windows = tuple(
        _window(lo, hi, slo.objective, g, v) for (lo, hi), (g, v) in zip(periods, totals, strict=True)
    )
    return Compliance("periods", slo.period_ms, windows)


def calendar_compliance(
    slo: SLO, frame: pd.DataFrame, cal: CalendarWindow, range_start_ms: int, range_end_ms: int
) -> Compliance:
    """Every calendar period ``[start, end)`` the range ``(range_start_ms, range_end_ms]`` touches,
    oldest first, each judged on its own budget (reset at each boundary) over the part of it
    inside the range."""
    windows = tuple(
        Window(
            lo,
            hi,
            b.sli,
            None if b.sli is None else b.remaining_ratio,
            None if b.sli is None else b.sli >= slo.objective,
        )
        for (lo, hi), b in period_budgets(frame, slo.objective, cal, slo.budget_unit)
    )
    return Compliance("periods", slo.period_ms, windows, cal, (range_start_ms, range_end_ms))


def window_label(c: Compliance, w: Window) -> str:
    """One assessed window for people: a calendar period by name, with ``(from ...)`` when the range
    begins inside it and ``(so far)`` when the range ends before it does (``November 2026 (so
    far)``); else its span in UTC (``2026-11-01 00:00 to 2026-11-02 00:00``)."""
    if c.calendar is None:
        return f"{_utc_minute(w.start_ms)} to {_utc_minute(w.end_ms)}"
    name = c.calendar.period_label(w.start_ms).rsplit(" (", 1)[0]
    lo, hi = c.range_ms or (w.start_ms, w.end_ms)
    if lo > w.start_ms:
        name += f" (from {_utc_minute(lo)} UTC)"
    return name + (" (so far)" if hi < w.end_ms else "")


def _utc_minute(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")


_LISTED = 4
"""Calendar periods named one by one up to this many; more are named by the first and the last."""


def _describe_calendar(c: Compliance, cal: CalendarWindow) -> str:
    labels = [window_label(c, w) for w in c.windows]
    if len(labels) > _LISTED:
        unit = f"{cal.count} {cal.unit}s" if cal.count > 1 else cal.unit
        labels = [f"{len(labels)} calendar periods of {unit}, {labels[0]} to {labels[-1]}"]
    zone = "" if cal.time_zone == "UTC" else f", {cal.time_zone} time"
    return ", ".join(labels) + zone


def describe_windows(c: Compliance) -> str:
    """What was assessed, for people: ``7 periods of 1 day``, ``rolling 30 days windows``, or a
    calendar SLO's periods by name: ``October 2026, November 2026 (so far)``."""
    if c.calendar is not None:
        return _describe_calendar(c, c.calendar)
    period = format_duration_human(c.period_ms)
    if c.method == "periods":
        return f"{len(c.windows)} periods of {period}"
    return f"rolling {period} windows"
