"""The status of an SLO at the end of a range: one row of ``sloanalysis slo`` and of the report's
SLO table, computed once here for both.

The window evaluated is the SLO's period ending at ``end_ms``, cut at ``start_ms`` when the data
(or the requested range) begins later. Over it: the SLI and the error budget
(:func:`~sloanalysis.slo.budget.error_budget`); the burn rate over trailing windows ending at
``end_ms`` (the last hour is the *current* one); and the time until the remaining budget is spent
at the current rate.

States: ``met``, ``missed`` and ``no data``. ``no data`` is any window without an SLI: no sample
at all, or samples without traffic. It is never a pass (the report's gate skips it). Without any
sample the budget figures are unknown as well (None in :meth:`SLOStatus.row`), where a window with
samples but no traffic has spent nothing (the policy of :mod:`sloanalysis.slo.budget`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from sloanalysis.errors import UserError
from sloanalysis.slo.budget import Budget, QueryBackend, error_budget, measure_window, time_to_exhaustion_ms
from sloanalysis.slo.spec import SLO

__all__ = ["CURRENT_MS", "SLOStatus", "State", "rolling_budget_remaining", "slo_status"]

MINUTE_MS = 60_000
CURRENT_MS = 3_600_000
"""The trailing window whose burn rate is *current* (the time to exhaustion assumes it goes on)."""

State = Literal["met", "missed", "no data"]


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
        return time_to_exhaustion_ms(self.budget.remaining_ratio, burn, self.slo.period_ms)

    def row(self) -> dict[str, Any]:
        """The row of the SLO table (``sloanalysis slo --format json`` prints these keys)."""
        b, known = self.budget, self.has_samples
        state = self.state
        return {
            "slo": self.slo.name,
            "service": self.slo.service,
            "sli_kind": self.slo.sli.kind,
            "objective": self.slo.objective,
            "period_ms": self.slo.period_ms,
            "window_ms": self.window_ms,
            "sli": b.sli,
            "met": None if state == "no data" else state == "met",
            "budget_unit": b.unit,
            "budget_allowed": b.allowed if known else None,
            "budget_consumed": b.consumed if known else None,
            "budget_remaining": b.remaining if known else None,
            "budget_remaining_ratio": b.remaining_ratio if known else None,
            "burn_rate": b.burn_rate if known else None,
            "burn_rate_current": self.burn_rate_current,
            "time_to_exhaustion_ms": self.time_to_exhaustion_ms,
            "coverage": b.coverage,
        }


def slo_status(
    slo: SLO,
    backend: QueryBackend,
    start_ms: int,
    end_ms: int,
    step_ms: int = MINUTE_MS,
    *,
    burn_windows_ms: Sequence[int] = (),
    current_ms: int = CURRENT_MS,
) -> SLOStatus:
    """The status of ``slo`` at ``end_ms`` over its period, not reaching before ``start_ms``.

    ``step_ms``: the resolution of SLIs measured step by step (raw error ratios; time slices use
    their own slice). ``burn_windows_ms``: trailing windows to report a burn rate for besides the
    current one (each cut at the window's start, like the budget)."""
    window_start = max(start_ms, end_ms - slo.period_ms)
    if window_start >= end_ms:
        raise UserError(f"empty time range for SLO {slo.name!r}: start {start_ms} is not before end {end_ms}")
    totals = measure_window(slo, backend, window_start, end_ms, step_ms)
    budget = error_budget(totals, slo.objective, slo.budget_unit)
    burn_rates: dict[int, float] = {}
    for w in dict.fromkeys([current_ms, *burn_windows_ms]):
        lo = max(window_start, end_ms - w)
        if lo == window_start:  # the window covers all the data: the budget's own burn rate
            burn_rates[w] = budget.burn_rate
            continue
        frame = measure_window(slo, backend, lo, end_ms, step_ms)
        burn_rates[w] = error_budget(frame, slo.objective, slo.budget_unit).burn_rate
    return SLOStatus(slo, window_start, end_ms, budget, burn_rates, current_ms)


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
