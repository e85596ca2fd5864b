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

A window is missed when its SLI is below the objective (its budget left is negative); a window
without traffic has no SLI and counts neither way.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from sloanalysis.durations import format_duration_human
from sloanalysis.slo.budget import QueryBackend, events_frame, frame_to_series
from sloanalysis.slo.spec import SLO, EventsSLI, LatencySLI
from sloanalysis.slo.status import SLOStatus, rolling_budget_remaining

__all__ = [
    "Compliance",
    "Window",
    "complete_periods",
    "compliance",
    "describe_windows",
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
    """The windows assessed for one SLO over a range and the worst of them."""

    method: Method
    period_ms: int
    windows: tuple[Window, ...]

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
            "windows": len(self.windows),
            "measured": len(self.measured),
            "missed": len(self.missed),
            "worst": None if worst is None else asdict(worst),
            "missed_windows": [asdict(w) for w in self.missed],
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
    ``status``: the SLO at the range's end; ``backend`` measures each complete period."""
    slo = status.slo
    periods = complete_periods(range_start_ms, status.end_ms, slo.period_ms)
    if len(periods) < 2:
        return Compliance("rolling", slo.period_ms, worst_rolling_window(frame, status, range_start_ms))
    totals = _period_totals(slo, backend, frame, periods)
    windows = tuple(
        _window(lo, hi, slo.objective, g, v) for (lo, hi), (g, v) in zip(periods, totals, strict=True)
    )
    return Compliance("periods", slo.period_ms, windows)


def describe_windows(c: Compliance) -> str:
    """What was assessed, for people: ``7 periods of 1 day`` or ``rolling 30 days windows``."""
    period = format_duration_human(c.period_ms)
    if c.method == "periods":
        return f"{len(c.windows)} periods of {period}"
    return f"rolling {period} windows"
