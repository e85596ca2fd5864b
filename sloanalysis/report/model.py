"""The report's data types and step arithmetic, shared by the context, the plots, the alert views
and the builder (which all import this module; it imports none of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from sloanalysis.durations import format_duration_human
from sloanalysis.report.compliance import Compliance
from sloanalysis.slo.spec import SLO
from sloanalysis.slo.status import SLOStatus
from sloanalysis.store import SeriesStore

__all__ = [
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
    ``burn_windows_ms``: the windows of the burn-rate plots; empty (the default): per SLO, the
    long windows of the alerts ``sloanalysis generate-rules`` writes for it in its own style.
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
    burn_windows_ms: tuple[int, ...] = ()
    # A ``tronsim validate-alerts`` output (validation.json or its directory) shown on the alert page.
    validation: str | None = None

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
    """One SLO: its status at the range's end (the table row), its per-step series over the range
    (the measured amounts, the budget left over the trailing period, the burn rate per window) and
    its compliance over the whole range."""

    status: SLOStatus
    frame: pd.DataFrame
    budget_remaining: pd.Series
    burn_rates: pd.DataFrame
    compliance: Compliance | None = None

    @property
    def slo(self) -> SLO:
        return self.status.slo

    @property
    def state(self) -> str:
        """``met``, ``missed``, ``no data`` or ``low coverage`` (:class:`SLOStatus`)."""
        return str(getattr(self.status, "state", "no data" if self.status.sli is None else "met"))

    @property
    def range_data_span_ms(self) -> tuple[int, int] | None:
        """The first and last step of the range with a sample of the SLI (None: not one)."""
        if "present" not in self.frame:
            return None
        present = self.frame["present"].to_numpy(dtype=bool)
        if not present.any():
            return None
        ms = pd.DatetimeIndex(self.frame.index).as_unit("ms").asi8[present]
        return int(ms[0]), int(ms[-1])

    @property
    def row(self) -> dict[str, object]:
        """The status row (``sloanalysis slo``'s keys: ``state``, ``coverage``, where the SLI's data
        is) plus the compliance over the range."""
        row = dict(self.status.row())
        row.setdefault("state", self.state)
        row.setdefault("coverage", getattr(self.status, "coverage", None))
        if "data_start_ms" not in row:  # a status without its own word on where the data is
            row["data_start_ms"], row["data_end_ms"] = self.range_data_span_ms or (None, None)
        row["compliance"] = None if self.compliance is None else self.compliance.as_dict()
        return row

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
