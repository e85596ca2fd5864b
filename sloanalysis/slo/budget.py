"""Error budgets, burn rates, burn-down and time to exhaustion, as pure functions over pandas.

An SLI is measured as a frame of per-step amounts (:func:`events_frame`, :func:`timeslice_frame`),
indexed by a UTC ``DatetimeIndex``, each row covering the step that *ends* at its timestamp:

- ``good``: good events, or good minutes of time slices,
- ``valid``: all counted events, or counted minutes,
- ``present``: whether the source had data for the step.

Everything else is sums over windows of that frame, so the same code serves the embedded engine
and a real Prometheus (:func:`measure` fetches the frame through any backend with a
``query_range`` method).

Definitions (objective ``o``, error budget ``1 - o``, period ``P``):

- SLI over a window: ``good / valid``.
- Burn rate over a window: ``(1 - SLI) / (1 - o)``; 1 spends the budget exactly over ``P``.
- Budget allowed in a window: ``(1 - o) * valid`` (events, or minutes); consumed: ``valid - good``;
  remaining: allowed - consumed (negative once overspent); consumed ratio: consumed / allowed.
- Budget spent by burning at ``b`` for ``d``: ``b * d / P`` of the budget (14.4 for one hour of
  a 30-day period: 2 %).
- Time to exhaustion at burn rate ``b`` with a remaining ratio ``r``: ``r * P / b`` (the whole
  budget of 99.9 % over 30 days at burn rate 1000: 43.2 minutes).

Calendar windows (:class:`~sloanalysis.slo.calendar.CalendarWindow`, an SLO's ``calendar``): the
budget is reset at every calendar boundary. A step stamped ``t`` (covering ``(t - step, t]``)
belongs to the period containing ``t - 1`` (:func:`step_periods`). The budget of a period counts
only that period's amounts: for event SLIs ``(1 - o) * valid events of the period so far`` (the
budget grows with the traffic, as a rolling one does); for time slices and raw ratios the
period's whole time, ``(1 - o) * period minutes`` (a 31-day month allows 44.64 minutes at
99.9 %, a 23-hour DST day 1.38), fixed from the period's first step, so that what is left says how
much more may go wrong before the period ends (:func:`calendar_burn_down`, :func:`period_budgets`).

Zero traffic and absent data (the policy, chosen so that no NaN reaches a budget):

- A step without data (``present`` False: the query returned nothing, e.g. the target was down
  or the series did not exist yet) contributes 0 good and 0 valid. For counters nothing is lost:
  the increase shows up in the first step after the gap. For time slices the ``missing`` policy of
  the SLI decides: ``ignore`` (default) leaves the slice out of good and valid, ``bad`` counts it
  as a bad slice, ``good`` as a good one. :attr:`Budget.coverage` reports the share of steps with data.
- A window with zero valid events (no traffic) has no SLI: :func:`sli_series` gives NaN there on
  purpose (a plotted gap, not a value), :attr:`Budget.sli` is None. Zero traffic spends nothing:
  its burn rate is 0, its consumed budget 0 and its remaining ratio 1. A budget is never NaN.
- Negative amounts (a counter reset that a backend turned into a negative difference) are
  clipped to 0 and ``good`` is clipped to ``valid``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from sloanalysis.errors import UserError
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.spec import SLO, EventsSLI, LatencySLI, RawSLI, TimesliceSLI

__all__ = [
    "Budget",
    "QueryBackend",
    "budget_minutes",
    "budget_spent",
    "burn_down",
    "burn_rate",
    "burn_rate_series",
    "calendar_allowed",
    "calendar_burn_down",
    "error_budget",
    "events_frame",
    "frame_to_series",
    "measure",
    "measure_window",
    "period_budgets",
    "sli_series",
    "step_periods",
    "time_to_exhaustion_ms",
    "timeslice_frame",
]

MINUTE_MS = 60_000
Unit = Literal["events", "minutes"]


# -- scalar formulas ---------------------------------------------------------------------------


def burn_rate(error_ratio: float, objective: float) -> float:
    """Burn rate of an error ratio: ``error_ratio / (1 - objective)``."""
    return error_ratio / (1.0 - objective)


def budget_spent(burn: float, duration_ms: float, period_ms: float) -> float:
    """Fraction of the period's budget spent by burning at ``burn`` for ``duration_ms``."""
    return burn * duration_ms / period_ms


def time_to_exhaustion_ms(remaining_ratio: float, burn: float, period_ms: float) -> float:
    """Milliseconds until the remaining budget is spent at a constant burn rate.

    ``remaining_ratio * period / burn``; ``inf`` when nothing burns, 0 when nothing remains.
    """
    if remaining_ratio <= 0.0:
        return 0.0
    if burn <= 0.0:
        return math.inf
    return remaining_ratio * period_ms / burn


def budget_minutes(objective: float, period_ms: float) -> float:
    """The period's budget as minutes of total outage: ``(1 - objective) * period``."""
    return (1.0 - objective) * period_ms / MINUTE_MS


# -- building the per-step frame ---------------------------------------------------------------


def _align(series: Iterable[pd.Series]) -> pd.DataFrame:
    frame = pd.concat(list(series), axis=1)
    return frame.sort_index()


def events_frame(good: pd.Series, valid: pd.Series) -> pd.DataFrame:
    """Per-step events: ``good`` and ``valid`` counts (NaN or a missing timestamp: no data).

    A step is present when ``valid`` has a value; ``good`` missing there counts as 0 good
    (e.g. a success counter that does not exist yet while requests fail).
    """
    f = _align([good.rename("good"), valid.rename("valid")])
    present = f["valid"].notna().to_numpy()
    v = np.clip(f["valid"].fillna(0.0).to_numpy(dtype=np.float64), 0.0, None)
    g = np.clip(f["good"].fillna(0.0).to_numpy(dtype=np.float64), 0.0, None)
    g = np.minimum(g, v)
    return pd.DataFrame({"good": g, "valid": v, "present": present}, index=f.index)


def timeslice_frame(
    indicator: pd.Series,
    slice_ms: int,
    missing: Literal["ignore", "bad", "good"] = "ignore",
    index: pd.DatetimeIndex | None = None,
) -> pd.DataFrame:
    """Per-slice minutes from an indicator in [0, 1] (1 good); ``index`` lists every expected slice.

    Slices absent from ``indicator`` (or NaN) follow ``missing``: ``ignore`` counts them nowhere,
    ``bad`` as bad minutes, ``good`` as good minutes.
    """
    ind = indicator if index is None else indicator.reindex(index.union(pd.DatetimeIndex(indicator.index)))
    ind = ind.sort_index()
    present = ind.notna().to_numpy()
    minutes = slice_ms / MINUTE_MS
    x = np.clip(ind.to_numpy(dtype=np.float64), 0.0, 1.0)
    if missing == "ignore":
        good = np.where(present, x * minutes, 0.0)
        valid = np.where(present, minutes, 0.0)
    else:
        fill = 1.0 if missing == "good" else 0.0
        good = np.where(present, x, fill) * minutes
        valid = np.full(x.shape, minutes)
    return pd.DataFrame({"good": good, "valid": valid, "present": present}, index=ind.index)


# -- sums over windows ------------------------------------------------------------------------


def _rolling(frame: pd.DataFrame, window_ms: int) -> pd.DataFrame:
    """Sums over the left-open window ``(t - window, t]`` at every row."""
    cols = frame[["good", "valid"]].astype(np.float64)
    return cols.rolling(pd.Timedelta(milliseconds=window_ms), closed="right").sum()


def sli_series(frame: pd.DataFrame, window_ms: int) -> pd.Series:
    """SLI over the trailing window at every step; NaN (on purpose) where the window has no traffic."""
    r = _rolling(frame, window_ms)
    g, v = r["good"].to_numpy(), r["valid"].to_numpy()
    out = np.full(v.shape, np.nan)
    np.divide(g, v, out=out, where=v > 0)
    return pd.Series(out, index=frame.index, name="sli")


def burn_rate_series(frame: pd.DataFrame, objective: float, window_ms: int) -> pd.Series:
    """Burn rate over the trailing window at every step; 0 where the window has no traffic."""
    r = _rolling(frame, window_ms)
    g, v = r["good"].to_numpy(), r["valid"].to_numpy()
    err = np.zeros(v.shape)
    np.divide(v - g, v, out=err, where=v > 0)
    return pd.Series(err / (1.0 - objective), index=frame.index, name="burn_rate")


@dataclass(frozen=True)
class Budget:
    """Error budget over a stretch of a per-step frame (amounts in ``unit``)."""

    objective: float
    unit: Unit
    good: float
    valid: float
    allowed: float
    consumed: float
    remaining: float
    consumed_ratio: float
    remaining_ratio: float
    burn_rate: float
    coverage: float
    sli: float | None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def error_budget(
    frame: pd.DataFrame, objective: float, unit: Unit = "events", *, allowed: float | None = None
) -> Budget:
    """Budget of the whole frame: allowed ``(1 - o) * valid`` (or ``allowed``, e.g. a calendar
    period's :func:`calendar_allowed`), consumed ``valid - good``."""
    good = float(frame["good"].sum())
    valid = float(frame["valid"].sum())
    consumed = valid - good
    if allowed is None:
        allowed = (1.0 - objective) * valid
    consumed_ratio = consumed / allowed if allowed > 0 else 0.0
    sli: float | None = good / valid if valid > 0 else None
    burn = (consumed / valid) / (1.0 - objective) if valid > 0 else 0.0
    n = len(frame)
    coverage = float(frame["present"].sum()) / n if n else 0.0
    return Budget(
        objective=objective,
        unit=unit,
        good=good,
        valid=valid,
        allowed=allowed,
        consumed=consumed,
        remaining=allowed - consumed,
        consumed_ratio=consumed_ratio,
        remaining_ratio=1.0 - consumed_ratio,
        burn_rate=burn,
        coverage=coverage,
        sli=sli,
    )


def burn_down(frame: pd.DataFrame, objective: float, allowed: float | None = None) -> pd.DataFrame:
    """Cumulative budget from the frame's start: consumed, allowed, remaining, remaining_ratio.

    ``allowed`` None: the budget grows with the traffic seen so far, ``(1 - o) * cumulative valid``
    (the budget as it would stand if the period ended now). A number (e.g. 43.2 minutes for
    99.9 % over 30 days, :func:`budget_minutes`): a fixed budget that the bad amounts use up.
    With no traffic yet the remaining ratio is 1.
    """
    g = frame["good"].to_numpy(dtype=np.float64).cumsum()
    v = frame["valid"].to_numpy(dtype=np.float64).cumsum()
    consumed = v - g
    budget = (1.0 - objective) * v if allowed is None else np.full(v.shape, float(allowed))
    ratio = np.ones(v.shape)
    pos = budget > 0
    ratio[pos] = 1.0 - consumed[pos] / budget[pos]
    ratio[~pos & (consumed > 0)] = -np.inf
    return pd.DataFrame(
        {"consumed": consumed, "allowed": budget, "remaining": budget - consumed, "remaining_ratio": ratio},
        index=frame.index,
    )


# -- calendar windows: budgets reset at every boundary ---------------------------------------


def _epoch_ms(index: pd.Index) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(index).as_unit("ms").asi8, dtype=np.int64)


def step_periods(index: pd.Index, calendar: CalendarWindow) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (ms) of the calendar period of every step of a per-step frame's index (a
    step stamped ``t`` covers ``(t - step, t]``: the period containing ``t - 1``)."""
    ms = _epoch_ms(index)
    if len(ms) == 0:
        return np.array([], np.int64), np.array([], np.int64)
    periods = calendar.periods(int(ms.min()) - 1, int(ms.max()) - 1)
    starts = np.array([a for a, _ in periods], np.int64)
    ends = np.array([b for _, b in periods], np.int64)
    pos = np.searchsorted(starts, ms - 1, side="right") - 1
    return starts[pos], ends[pos]


def calendar_allowed(objective: float, unit: Unit, period: tuple[int, int]) -> float | None:
    """A calendar period's fixed budget: ``(1 - o) * period minutes`` for time-based SLIs (unit
    ``minutes``); None for event SLIs, whose budget follows the period's events."""
    if unit != "minutes":
        return None
    return (1.0 - objective) * (period[1] - period[0]) / MINUTE_MS


def calendar_burn_down(
    frame: pd.DataFrame, objective: float, calendar: CalendarWindow, unit: Unit
) -> pd.DataFrame:
    """:func:`burn_down` restarted at every calendar boundary: consumed, allowed, remaining and
    remaining_ratio since the start of each step's period (``period_start``, ms, says which).

    Allowed: ``(1 - o) * valid since the period's start`` for events, the period's whole
    :func:`calendar_allowed` for minutes. With nothing allowed and nothing consumed the ratio is 1."""
    starts, ends = step_periods(frame.index, calendar)
    amounts = pd.DataFrame(
        {"good": frame["good"].to_numpy(np.float64), "valid": frame["valid"].to_numpy(np.float64)}
    )
    sums = amounts.groupby(starts).cumsum()
    g, v = sums["good"].to_numpy(), sums["valid"].to_numpy()
    consumed = v - g
    if unit == "minutes":
        budget = (1.0 - objective) * (ends - starts).astype(np.float64) / MINUTE_MS
    else:
        budget = (1.0 - objective) * v
    ratio = np.ones(v.shape)
    pos = budget > 0
    ratio[pos] = 1.0 - consumed[pos] / budget[pos]
    ratio[~pos & (consumed > 0)] = -np.inf
    return pd.DataFrame(
        {
            "consumed": consumed,
            "allowed": budget,
            "remaining": budget - consumed,
            "remaining_ratio": ratio,
            "period_start": starts,
        },
        index=frame.index,
    )


def period_budgets(
    frame: pd.DataFrame, objective: float, calendar: CalendarWindow, unit: Unit
) -> list[tuple[tuple[int, int], Budget]]:
    """The budget of every calendar period the frame's steps fall in, oldest first (a period the
    frame covers only in part counts only those steps; time-based budgets are still the whole
    period's)."""
    starts, ends = step_periods(frame.index, calendar)
    out = []
    for a, b in dict.fromkeys(zip(starts.tolist(), ends.tolist(), strict=True)):
        part = frame[starts == a]
        out.append(
            ((a, b), error_budget(part, objective, unit, allowed=calendar_allowed(objective, unit, (a, b))))
        )
    return out


# -- measuring through a query backend ---------------------------------------------------------


class QueryBackend(Protocol):
    """Anything with ``query_range(expr, start_ms, end_ms, step_ms)`` giving a long frame
    (``timestamp``, ``value`` and one column per label), such as the embedded engine's and
    the Prometheus HTTP backend of :mod:`sloanalysis.query`."""

    def query_range(self, expr: str, start: int, end: int, step: int) -> pd.DataFrame: ...


def _timestamps(frame: pd.DataFrame) -> pd.DatetimeIndex:
    ts = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        idx = pd.DatetimeIndex(ts)
        return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")
    return pd.DatetimeIndex(pd.to_datetime(ts.to_numpy(dtype=np.int64), unit="ms", utc=True))


def frame_to_series(frame: pd.DataFrame) -> pd.Series:
    """One series from a long query frame: values summed over label sets per timestamp (NaN skipped)."""
    if frame is None or len(frame) == 0:
        return pd.Series(np.array([], np.float64), index=pd.DatetimeIndex([], tz="UTC"), dtype=np.float64)
    values = pd.Series(frame["value"].to_numpy(dtype=np.float64), index=_timestamps(frame))
    values = values[np.isfinite(values.to_numpy())]
    return values.groupby(level=0).sum().astype(np.float64)


def _grid(start_ms: int, end_ms: int, step_ms: int) -> pd.DatetimeIndex:
    n = (end_ms - start_ms) // step_ms
    ms = start_ms + step_ms * np.arange(n + 1, dtype=np.int64)
    return pd.DatetimeIndex(pd.to_datetime(ms, unit="ms", utc=True))


def _query(backend: QueryBackend, expr: str, start_ms: int, end_ms: int, step_ms: int) -> pd.Series:
    try:
        frame = backend.query_range(expr, start_ms, end_ms, step_ms)
    except UserError:
        raise
    except Exception as exc:  # a backend's own failure, reported with the query that caused it
        raise UserError(f"query failed: {expr!r}: {exc}") from None
    return frame_to_series(frame)


def measure(
    slo: SLO, backend: QueryBackend, start_ms: int, end_ms: int, step_ms: int = MINUTE_MS
) -> pd.DataFrame:
    """The per-step frame of ``slo`` over ``(start, end]`` through ``backend``.

    Events SLIs: the good and total templates at window = step, evaluated every step (rates
    times the step's seconds when the templates give rates). Time-slice SLIs: the aggregated
    indicator every slice (``step_ms`` is ignored). Raw SLIs: time-weighted ``1 - error ratio``.
    """
    if end_ms <= start_ms:
        raise UserError(f"empty time range: start {start_ms} is not before end {end_ms}")
    sli = slo.sli
    if isinstance(sli, EventsSLI | LatencySLI):
        first = start_ms + step_ms
        grid = _grid(first, end_ms, step_ms)
        scale = step_ms / 1000.0 if sli.per_second else 1.0
        total = _query(backend, sli.total_expr(step_ms), first, end_ms, step_ms) * scale
        good = _query(backend, sli.good_expr(step_ms), first, end_ms, step_ms) * scale
        return events_frame(good.reindex(grid), total.reindex(grid))
    if isinstance(sli, TimesliceSLI):
        first = start_ms + sli.slice_ms
        grid = _grid(first, end_ms, sli.slice_ms)
        expr = f"avg({sli.indicator})"
        indicator = _query(backend, expr, first, end_ms, sli.slice_ms)
        return timeslice_frame(indicator.reindex(grid), sli.slice_ms, sli.missing, index=grid)
    assert isinstance(sli, RawSLI)
    first = start_ms + step_ms
    grid = _grid(first, end_ms, step_ms)
    err = _query(backend, f"avg({sli.error_ratio_expr(step_ms)})", first, end_ms, step_ms)
    return timeslice_frame((1.0 - err).reindex(grid), step_ms, "ignore", index=grid)


def measure_window(
    slo: SLO, backend: QueryBackend, start_ms: int, end_ms: int, step_ms: int = MINUTE_MS
) -> pd.DataFrame:
    """The SLI's amounts over ``(start, end]`` for a budget total.

    Events SLIs: one row from a single evaluation of the templates with window = end - start
    at ``end`` (as ``increase(x[30d])`` in a report, or the ``ratio_rate30d`` recording rule),
    which counts every increment once; summing per-step windows instead would lose or
    extrapolate the increments that straddle step boundaries. Other SLIs: :func:`measure`
    (``step_ms`` is the resolution of raw SLIs).
    """
    sli = slo.sli
    if not isinstance(sli, EventsSLI | LatencySLI):
        return measure(slo, backend, start_ms, end_ms, step_ms)
    if end_ms <= start_ms:
        raise UserError(f"empty time range: start {start_ms} is not before end {end_ms}")
    window = end_ms - start_ms
    scale = window / 1000.0 if sli.per_second else 1.0
    at = pd.DatetimeIndex(pd.to_datetime(np.array([end_ms], np.int64), unit="ms", utc=True))
    total = _query(backend, sli.total_expr(window), end_ms, end_ms, window) * scale
    good = _query(backend, sli.good_expr(window), end_ms, end_ms, window) * scale
    return events_frame(good.reindex(at), total.reindex(at))
