"""The status of an SLO at the end of a range: one row of ``sloanalysis slo`` and of the report's
SLO table, computed once here for both.

The window evaluated is the SLO's period ending at ``end_ms``, cut at ``start_ms`` when the data
(or the requested range) begins later. Over it: the SLI and the error budget
(:func:`~sloanalysis.slo.budget.error_budget`); the burn rate over trailing windows ending at
``end_ms`` (the last hour is the *current* one); the time until the remaining budget is spent
at the current rate; and the *coverage*.

Coverage is the share of the window's steps at which the SLI has data: for event SLIs, the steps
(``step_ms``, 1 minute by default) at which the total query, over a window of one step, returns a
value; for time slices and raw ratios, the slices or steps with a value. A step is counted present
when it has traffic or not (zero requests is data); it needs samples of the total's series, so
the step must span at least two scrapes (a 1-minute step suits scrape intervals up to 30 s).
Coverage is None when no step has data.

States, in this order:

- ``no data``: no SLI over the window: no sample at all (coverage None), or samples without
  traffic (zero valid events). Never a pass.
- ``low coverage``: coverage under ``min_coverage`` (default :data:`MIN_COVERAGE`, 0.9: an SLI
  measured over less than 90 % of its window says little about it). Never a pass either: the
  SLI and ``met`` are still given, as information.
- ``met`` / ``missed``: the SLI against the objective.

For the first two, :attr:`SLOStatus.data_span_ms` says where the SLI's series do have data (first
and last sample of any series its queries select, looked up without the range's bounds through
the backend's ``data_span``, when it has one). Without any sample the budget figures are unknown
as well (None in :meth:`SLOStatus.row`), where a window with samples but no traffic has spent
nothing (the policy of :mod:`sloanalysis.slo.budget`).

Calendar SLOs (``slo.calendar``, a :class:`~sloanalysis.slo.calendar.CalendarWindow`): the window
is the calendar period of ``end_ms`` from its start (cut at ``start_ms`` like a rolling one; an
``end_ms`` on a boundary closes the period before it), and :attr:`SLOStatus.period` names it
with its elapsed share. Time-based budgets are the whole period's
(:func:`~sloanalysis.slo.budget.calendar_allowed`); the time to exhaustion is counted against
the period's length (minutes) or the time elapsed in it (events, whose budget follows the
traffic seen), and capped at the period's end (``period_left_ms``), where the budget resets.
Burn rates are cut at the period's start like the budget. Rolling SLOs are unaffected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from sloanalysis.errors import UserError
from sloanalysis.promql.walk import selectors
from sloanalysis.slo.budget import (
    Budget,
    QueryBackend,
    calendar_allowed,
    calendar_burn_down,
    error_budget,
    frame_to_series,
    measure,
    measure_window,
    time_to_exhaustion_ms,
)
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.spec import SLO, EventsSLI, LatencySLI, RawSLI, TimesliceSLI
from sloanalysis.sources.prometheus import parse_expr, selector_text

__all__ = [
    "CURRENT_MS",
    "MIN_COVERAGE",
    "SLOStatus",
    "State",
    "budget_remaining_series",
    "calendar_of",
    "coverage",
    "evaluation_start",
    "rolling_budget_remaining",
    "sli_data_span",
    "sli_selectors",
    "slo_status",
]

MINUTE_MS = 60_000
CURRENT_MS = 3_600_000
"""The trailing window whose burn rate is *current* (the time to exhaustion assumes it goes on)."""

MIN_COVERAGE = 0.9
"""Default least coverage of a window for its SLI to count (``sloanalysis slo --min-coverage``)."""

State = Literal["met", "missed", "no data", "low coverage"]


def calendar_of(slo: SLO) -> CalendarWindow | None:
    """The SLO's calendar window, None for a rolling SLO (or a spec model without the field)."""
    cal = getattr(slo, "calendar", None)
    return cal if isinstance(cal, CalendarWindow) else None


def evaluation_start(slo: SLO, end_ms: int, earliest_ms: int | None = None) -> int:
    """Where the SLO's window ending at ``end_ms`` starts: ``end - period`` for a rolling SLO, the
    start of the calendar period of ``end_ms`` for a calendar one; never before ``earliest_ms``."""
    cal = calendar_of(slo)
    start = end_ms - slo.period_ms if cal is None else cal.period_of_step(end_ms)[0]
    return start if earliest_ms is None else max(earliest_ms, start)


@dataclass(frozen=True)
class SLOStatus:
    """An SLO over ``(start_ms, end_ms]``: its budget, and burn rates over trailing windows
    (``burn_rates``: window in ms -> burn rate; the ``current_ms`` window always among them)."""

    slo: SLO
    start_ms: int
    end_ms: int
    budget: Budget
    burn_rates: dict[int, float]
    current_ms: int = CURRENT_MS
    coverage: float | None = None
    """Share of the window's steps with SLI data, in [0, 1]; None when no step has any."""
    min_coverage: float = MIN_COVERAGE
    data_span_ms: tuple[int, int] | None = None
    """First and last sample of the SLI's series anywhere, for ``no data`` and ``low coverage``."""
    period: tuple[int, int] | None = None
    """The calendar period ``[start, end)`` of a calendar SLO's window; None for a rolling SLO."""

    @property
    def period_elapsed(self) -> float | None:
        """Share of the calendar period elapsed at ``end_ms`` (None: rolling)."""
        if self.period is None:
            return None
        a, b = self.period
        return (self.end_ms - a) / (b - a)

    @property
    def period_label(self) -> str | None:
        """The calendar period in words, ``November 2026 (Europe/Berlin)`` (None: rolling)."""
        cal = calendar_of(self.slo)
        return None if cal is None or self.period is None else cal.period_label(self.period[0])

    @property
    def window_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def has_samples(self) -> bool:
        """Whether any sample answered the SLI's queries in the window."""
        return self.budget.coverage > 0

    @property
    def sli(self) -> float | None:
        return self.budget.sli

    @property
    def state(self) -> State:
        if self.budget.sli is None:
            return "no data"
        if self.coverage is None or self.coverage < self.min_coverage:
            return "low coverage"
        return "met" if self.budget.sli >= self.slo.objective else "missed"

    @property
    def burn_rate_current(self) -> float | None:
        return self.burn_rates[self.current_ms] if self.has_samples else None

    @property
    def time_to_exhaustion_ms(self) -> float | None:
        """At the current burn rate; ``inf`` when nothing burns, None without samples."""
        burn = self.burn_rate_current
        if burn is None:
            return None
        span = self.slo.period_ms
        if self.period is None:
            return time_to_exhaustion_ms(self.budget.remaining_ratio, burn, span)
        a, b = self.period
        span = b - a if self.budget.unit == "minutes" else self.window_ms
        # the budget resets when the period ends: it cannot run out later than that
        return min(time_to_exhaustion_ms(self.budget.remaining_ratio, burn, span), float(b - self.end_ms))

    @property
    def period_left_ms(self) -> int | None:
        """Time from ``end_ms`` to the end of the calendar period (None: rolling)."""
        return None if self.period is None else self.period[1] - self.end_ms

    def row(self) -> dict[str, Any]:
        """The row of the SLO table (``sloanalysis slo --format json`` prints these keys)."""
        b, known = self.budget, self.has_samples
        span = self.data_span_ms
        row: dict[str, Any] = {
            "slo": self.slo.name,
            "service": self.slo.service,
            "sli_kind": self.slo.sli.kind,
            "objective": self.slo.objective,
            "period_ms": self.slo.period_ms,
            "window_ms": self.window_ms,
            "sli": b.sli,
            "met": None if b.sli is None else b.sli >= self.slo.objective,
            "state": self.state,
            "budget_unit": b.unit,
            "budget_allowed": b.allowed if known else None,
            "budget_consumed": b.consumed if known else None,
            "budget_remaining": b.remaining if known else None,
            "budget_remaining_ratio": b.remaining_ratio if known else None,
            "burn_rate": b.burn_rate if known else None,
            "burn_rate_current": self.burn_rate_current,
            "time_to_exhaustion_ms": self.time_to_exhaustion_ms,
            "coverage": self.coverage,
            "data_start_ms": None if span is None else span[0],
            "data_end_ms": None if span is None else span[1],
        }
        if self.period is not None:  # calendar SLOs only: rolling rows keep their keys
            row["period_ms"] = self.period[1] - self.period[0]
            row["calendar"] = str(calendar_of(self.slo))
            row["period_label"] = self.period_label
            row["period_start_ms"], row["period_end_ms"] = self.period
            row["period_elapsed"] = self.period_elapsed
            row["period_left_ms"] = self.period_left_ms
        return row


def slo_status(
    slo: SLO,
    backend: QueryBackend,
    start_ms: int,
    end_ms: int,
    step_ms: int = MINUTE_MS,
    *,
    burn_windows_ms: Sequence[int] = (),
    current_ms: int = CURRENT_MS,
    min_coverage: float = MIN_COVERAGE,
) -> SLOStatus:
    """The status of ``slo`` at ``end_ms`` over its period, not reaching before ``start_ms``.

    ``step_ms``: the resolution of SLIs measured step by step (raw error ratios, and the coverage
    of event SLIs; time slices use their own slice). ``burn_windows_ms``: trailing windows to
    report a burn rate for besides the current one (each cut at the window's start, like the
    budget). ``min_coverage``: below it the state is ``low coverage``."""
    if not 0.0 <= min_coverage <= 1.0:
        raise UserError(f"min_coverage must be within [0, 1], got {min_coverage!r}")
    cal = calendar_of(slo)
    period = None if cal is None else cal.period_of_step(end_ms)
    window_start = evaluation_start(slo, end_ms, start_ms)
    if window_start >= end_ms:
        raise UserError(f"empty time range for SLO {slo.name!r}: start {start_ms} is not before end {end_ms}")
    totals = measure_window(slo, backend, window_start, end_ms, step_ms)
    allowed = None if period is None else calendar_allowed(slo.objective, slo.budget_unit, period)
    budget = error_budget(totals, slo.objective, slo.budget_unit, allowed=allowed)
    burn_rates: dict[int, float] = {}
    for w in dict.fromkeys([current_ms, *burn_windows_ms]):
        lo = max(window_start, end_ms - w)
        if lo == window_start:  # the window covers all the data: the budget's own burn rate
            burn_rates[w] = budget.burn_rate
            continue
        frame = measure_window(slo, backend, lo, end_ms, step_ms)
        burn_rates[w] = error_budget(frame, slo.objective, slo.budget_unit).burn_rate
    cover = coverage(slo, backend, window_start, end_ms, step_ms, totals)
    status = SLOStatus(
        slo, window_start, end_ms, budget, burn_rates, current_ms, cover, min_coverage, period=period
    )
    if status.state in ("no data", "low coverage"):
        status = replace(status, data_span_ms=sli_data_span(slo, backend, end_ms))
    return status


def coverage(
    slo: SLO,
    backend: QueryBackend,
    start_ms: int,
    end_ms: int,
    step_ms: int = MINUTE_MS,
    window_frame: pd.DataFrame | None = None,
) -> float | None:
    """Share of the steps in ``(start_ms, end_ms]`` at which the SLI has data (None: none has).

    Event SLIs: the total query over one step, evaluated every step. Time slices and raw ratios:
    the ``present`` column of their per-step frame (``window_frame``, when already measured)."""
    sli = slo.sli
    if isinstance(sli, EventsSLI | LatencySLI):
        first = start_ms + step_ms
        n = (end_ms - first) // step_ms + 1 if end_ms >= first else 0
        if n <= 0:
            return None
        try:
            frame = backend.query_range(sli.total_expr(step_ms), first, first + (n - 1) * step_ms, step_ms)
        except UserError:
            raise
        except Exception as exc:  # a backend's own failure, with the query that caused it
            raise UserError(f"query failed: {sli.total_expr(step_ms)!r}: {exc}") from None
        present = int(frame_to_series(frame).index.nunique())
    else:
        frame = window_frame if window_frame is not None else measure(slo, backend, start_ms, end_ms, step_ms)
        n, present = len(frame), int(frame["present"].sum())
    return present / n if n and present else None


def sli_selectors(slo: SLO, step_ms: int = MINUTE_MS) -> list[str]:
    """The selectors (canonical text) of the SLI's queries, in order of first use."""
    sli = slo.sli
    if isinstance(sli, EventsSLI | LatencySLI):
        exprs = [sli.total_expr(step_ms), sli.good_expr(step_ms)]
    elif isinstance(sli, TimesliceSLI):
        exprs = [sli.indicator]
    else:
        assert isinstance(sli, RawSLI)
        exprs = [sli.error_ratio_expr(step_ms)]
    found = (selector_text(vs) for e in exprs for vs in selectors(parse_expr(e)))
    return list(dict.fromkeys(found))


def sli_data_span(slo: SLO, backend: Any, near_ms: int) -> tuple[int, int] | None:
    """First and last sample of any series the SLI's queries select, without time bounds (None:
    none, or a backend that cannot say: one without ``data_span``)."""
    lookup = getattr(backend, "data_span", None)
    if lookup is None:
        return None
    spans = [sp for sp in (lookup(sel, near_ms) for sel in sli_selectors(slo)) if sp is not None]
    if not spans:
        return None
    return min(a for a, _ in spans), max(b for _, b in spans)


def rolling_budget_remaining(frame: pd.DataFrame, objective: float, period_ms: int) -> pd.Series:
    """Share of the error budget left over the trailing period at each step of a per-step frame
    (:func:`~sloanalysis.slo.budget.measure`): ``1 - consumed / allowed`` with
    ``allowed = (1 - objective) x valid``; 1 where the window has no traffic, negative when overspent."""
    sums = frame[["good", "valid"]].astype(np.float64).rolling(pd.Timedelta(milliseconds=period_ms)).sum()
    good, valid = sums["good"].to_numpy(), sums["valid"].to_numpy()
    allowed = (1.0 - objective) * valid
    out = np.ones(valid.shape)
    np.divide(valid - good, allowed, out=out, where=allowed > 0)
    return pd.Series(np.where(allowed > 0, 1.0 - out, 1.0), index=frame.index, name="budget_remaining")


def budget_remaining_series(slo: SLO, frame: pd.DataFrame) -> pd.Series:
    """Share of the error budget left at each step of a per-step frame: over the trailing period
    for a rolling SLO (:func:`rolling_budget_remaining`), since the calendar period's start for a
    calendar one (:func:`~sloanalysis.slo.budget.calendar_burn_down`, reset at every boundary)."""
    cal = calendar_of(slo)
    if cal is None:
        return rolling_budget_remaining(frame, slo.objective, slo.period_ms)
    left = calendar_burn_down(frame, slo.objective, cal, slo.budget_unit)["remaining_ratio"]
    return left.rename("budget_remaining")
