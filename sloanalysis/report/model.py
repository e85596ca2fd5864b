"""The report's data types and step arithmetic, shared by the context, the plots, the alert views
and the builder (which all import this module; it imports none of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sloanalysis.durations import format_duration_human
from sloanalysis.slo.spec import SLO
from sloanalysis.slo.status import SLOStatus
from sloanalysis.store import SeriesStore

__all__ = [
    "BURN_WINDOWS_MS",
    "CURRENT_MS",
    "DAY_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "PROJECT_FILES",
    "Dataset",
    "Inputs",
    "SLOResult",
    "align_range",
    "dashboard_step_ms",
    "slo_step_ms",
]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BURN_WINDOWS_MS = (5 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS)
"""The SRE workbook's multiwindow burn-rate windows (those shorter than an SLO's period are drawn)."""
CURRENT_MS = HOUR_MS
"""The trailing window whose burn rate is "current", as in ``sloanalysis slo``."""
DEFAULT_PERIOD_MS = 30 * DAY_MS
"""The period of SLOs whose format does not state one (Sloth)."""
PROJECT_FILES: dict[str, tuple[str, ...]] = {
    "slos": ("slos/tron-payment.yaml",),
    "dashboard": ("monitoring/seed/dashboard.json",),
    "rules": ("monitoring/seed/alerting-rules.yml", "monitoring/rules/tron-payment.yml"),
    "run_dir": ("runs/reference",),
}
"""A project's own inputs, relative to its directory (the one holding ``slos/tron-payment.yaml``):
what the notebooks and ``sloanalysis report`` use when not told otherwise."""


@dataclass(frozen=True)
class Inputs:
    """Where the data comes from and which specifications to check it against.

    Exactly one of ``run_dir`` and ``prometheus_url``. ``start``/``end``: RFC 3339, unix seconds, or
    a duration before the end (``7d``); default the run's whole span, or the last day of a server.
    ``burn_windows_ms``: the windows of the burn-rate plots.
    """

    run_dir: str | None = None
    prometheus_url: str | None = None
    start: str | None = None
    end: str | None = None
    slos: str | None = None
    rules: tuple[str, ...] = ()
    dashboard: str | None = None
    incidents: str | None = None
    timeout_s: float = 10.0
    burn_windows_ms: tuple[int, ...] = BURN_WINDOWS_MS

    def describe(self) -> str:
        return f"run {self.run_dir}" if self.run_dir else f"Prometheus {self.prometheus_url}"


@dataclass
class Dataset:
    """The samples and the ground truth over the analysed range ``(start_ms, end_ms]``."""

    store: SeriesStore
    incidents: pd.DataFrame
    start_ms: int
    end_ms: int


@dataclass
class SLOResult:
    """One SLO: its status at the range's end (the table row) and its per-step series over the range:
    the measured amounts, the budget left over the trailing period, the burn rate per window."""

    status: SLOStatus
    frame: pd.DataFrame
    budget_remaining: pd.Series
    burn_rates: pd.DataFrame

    @property
    def slo(self) -> SLO:
        return self.status.slo

    @property
    def row(self) -> dict[str, object]:
        return self.status.row()

    @property
    def period_label(self) -> str:
        return format_duration_human(self.slo.period_ms)


def align_range(start_ms: int, end_ms: int, step_ms: int = MINUTE_MS) -> tuple[int, int]:
    """The range widened to whole steps: start floored, end ceiled (plots and windows on round times)."""
    lo = (start_ms // step_ms) * step_ms
    hi = -((-end_ms) // step_ms) * step_ms
    return lo, hi


def slo_step_ms(start_ms: int, end_ms: int) -> int:
    """One minute up to eight days, five beyond (a 30-day range stays at 8,640 steps)."""
    return MINUTE_MS if end_ms - start_ms <= 8 * DAY_MS else 5 * MINUTE_MS


def dashboard_step_ms(start_ms: int, end_ms: int, points: int = 1500) -> int:
    """A step like Grafana's: about ``points`` per series, a multiple of the 15 s scrape interval."""
    raw = (end_ms - start_ms) / points
    return max(15_000, math.ceil(raw / 15_000) * 15_000)
