"""The normalised SLO model every spec format is read into (the readers are :mod:`sloanalysis.slo.formats`).

One :class:`SLO`: a name, an objective in (0, 1), a period (int milliseconds), an SLI and its
alerting settings.

SLI kinds (``SLO.sli``):

- :class:`EventsSLI` -- good/total or bad/total events. Queries are PromQL templates with a
  ``{{.window}}`` placeholder (Sloth's convention).
- :class:`LatencySLI` -- "a quantile of the latency stays below a threshold" as an event ratio
  over a histogram: the good events are the observations in the bucket ``le=threshold``, the
  total is ``_count``. ``P95 < 2 s`` over a period holds exactly when at least 95 % of the
  requests of the period took at most 2 s, so the objective of a latency SLO is the quantile
  (0.95) and its error budget is the 5 % of requests allowed to be slower. The threshold must be
  a bucket boundary. Bucket labels are matched as ``2`` or ``2.0`` (client_python writes
  ``2.0``; Prometheus 3 normalises it to ``2``).
- :class:`TimesliceSLI` -- an indicator expression worth 1 in a good slice and 0 in a bad one
  (values in between count as that fraction of the slice), evaluated every ``slice``. The budget
  is time: the bad slices' minutes. ``missing`` says what a slice without data is (``ignore``:
  neither good nor bad, the default; ``bad``; ``good``).
- :class:`RawSLI` -- an error ratio already computed elsewhere (Sloth ``raw``, OpenSLO ``raw``);
  its budget is time-weighted, like a time slice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.native_latency import native_bucket_expr, native_total_expr

__all__ = [
    "DEFAULT_SLICE_MS",
    "DEFAULT_SLOTH_PERIOD_MS",
    "MAX_DURATION_MS",
    "SLI",
    "SLO",
    "Alerting",
    "EventsSLI",
    "LatencySLI",
    "RawSLI",
    "SLOSpecError",
    "ThresholdAlert",
    "TimesliceSLI",
    "render_window",
]

DEFAULT_SLICE_MS = 60_000
DEFAULT_SLOTH_PERIOD_MS = 30 * 86_400_000
MAX_DURATION_MS = 10 * 365 * 86_400_000
"""Longest period or window accepted: ten years (anything longer is a typo)."""
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")


class SLOSpecError(UserError):
    """An SLO file that cannot be used."""


# -- the normalised model --------------------------------------------------------------------


def render_window(template: str, window_ms: int) -> str:
    """``template`` with every ``{{.window}}`` replaced by the Prometheus duration of ``window_ms``."""
    return WINDOW_PLACEHOLDER.sub(format_duration_ms(window_ms), template)


@dataclass(frozen=True)
class EventsSLI:
    """Ratio of events; ``good`` or ``bad`` (exactly one) over ``total``, as window templates.

    ``per_second``: the templates give per-second rates (``rate``), so events in a window are the
    value times the window's seconds; False when they give counts (``increase``).
    """

    total: str
    good: str | None = None
    bad: str | None = None
    per_second: bool = True
    kind: Literal["events"] = "events"

    def total_expr(self, window_ms: int) -> str:
        return render_window(self.total, window_ms)

    def good_expr(self, window_ms: int) -> str:
        if self.good is not None:
            return render_window(self.good, window_ms)
        return f"({self.total_expr(window_ms)}) - ({render_window(str(self.bad), window_ms)})"

    def bad_expr(self, window_ms: int) -> str:
        if self.bad is not None:
            return render_window(self.bad, window_ms)
        return f"({self.total_expr(window_ms)}) - ({render_window(str(self.good), window_ms)})"

    def error_ratio_expr(self, window_ms: int) -> str:
        total = self.total_expr(window_ms)
        if self.bad is not None:
            return f"({render_window(self.bad, window_ms)})\n/\n({total})"
        return f"1 - (\n  ({render_window(str(self.good), window_ms)})\n  /\n  ({total})\n)"


def _le_matcher(threshold: float) -> str:
    """Matcher for the bucket ``le=threshold`` whichever way the exporter formats the float."""
    if threshold.is_integer():
        n = int(threshold)
        return f'le=~"{n}|{n}\\\\.0"'
    return f'le="{threshold!r}"'


@dataclass(frozen=True)
class LatencySLI:
    """Fraction of observations of ``histogram`` at most ``threshold`` seconds (``le`` bucket)."""

    histogram: str
    threshold: float
    quantile: float | None = None
    matchers: str = ""
    native: bool = False  # a native histogram named ``histogram``: sloanalysis.slo.native_latency
    kind: Literal["latency"] = "latency"

    def _selector(self, suffix: str, extra: str = "") -> str:
        inner = ", ".join(m for m in (self.matchers, extra) if m)
        return f"{self.histogram}_{suffix}{{{inner}}}"

    def bucket_expr(self, le: float, window_ms: int) -> str:
        """Per-second rate of observations at most ``le`` seconds."""
        if self.native:
            return native_bucket_expr(self.histogram, self.matchers, le, window_ms)
        w = format_duration_ms(window_ms)
        return f"sum(rate({self._selector('bucket', _le_matcher(le))}[{w}]))"

    def total_expr(self, window_ms: int) -> str:
        if self.native:
            return native_total_expr(self.histogram, self.matchers, window_ms)
        return f"sum(rate({self._selector('count')}[{format_duration_ms(window_ms)}]))"

    def good_expr(self, window_ms: int) -> str:
        return self.bucket_expr(self.threshold, window_ms)

    def bad_expr(self, window_ms: int) -> str:
        return f"({self.total_expr(window_ms)}) - ({self.good_expr(window_ms)})"

    def error_ratio_expr(self, window_ms: int) -> str:
        return f"1 - (\n  {self.good_expr(window_ms)}\n  /\n  {self.total_expr(window_ms)}\n)"

    @property
    def per_second(self) -> bool:
        return True


@dataclass(frozen=True)
class TimesliceSLI:
    """Indicator in [0, 1] (1: the slice is good) evaluated every ``slice_ms``."""

    indicator: str
    slice_ms: int = DEFAULT_SLICE_MS
    missing: Literal["ignore", "bad", "good"] = "ignore"
    kind: Literal["timeslice"] = "timeslice"

    def indicator_expr(self) -> str:
        """The indicator aggregated to one series, with the missing-data policy applied."""
        expr = f"avg({render_window(self.indicator, self.slice_ms)})"
        if self.missing == "bad":
            return f"{expr} or on() vector(0)"
        if self.missing == "good":
            return f"{expr} or on() vector(1)"
        return expr

    def error_ratio_expr(self, window_ms: int) -> str:
        w, s = format_duration_ms(window_ms), format_duration_ms(self.slice_ms)
        return f"1 - avg_over_time(({self.indicator_expr()})[{w}:{s}])"


@dataclass(frozen=True)
class RawSLI:
    """An error ratio (0..1) computed elsewhere, as a window template."""

    error_ratio: str
    kind: Literal["raw"] = "raw"

    def error_ratio_expr(self, window_ms: int) -> str:
        return render_window(self.error_ratio, window_ms)


SLI = EventsSLI | LatencySLI | TimesliceSLI | RawSLI


@dataclass(frozen=True)
class ThresholdAlert:
    """A plain threshold alert as the seed writes it ("availability < 99.5 %", "P95 > 60 s").

    ``kind`` ``sli_below``: the SLI over ``window_ms`` below ``value``; ``latency_above``: the
    latency SLI's quantile above ``value`` seconds, i.e. fewer than ``quantile`` of the
    observations in the bucket ``le=value`` (which must exist).
    """

    kind: Literal["sli_below", "latency_above"]
    value: float
    window_ms: int = 300_000
    for_ms: int = 300_000


@dataclass(frozen=True)
class Alerting:
    """Names, labels and annotations of the generated alerts, and which are wanted."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: bool = True
    ticket: bool = True
    page_labels: Mapping[str, str] = field(default_factory=dict)
    ticket_labels: Mapping[str, str] = field(default_factory=dict)
    page_annotations: Mapping[str, str] = field(default_factory=dict)
    ticket_annotations: Mapping[str, str] = field(default_factory=dict)
    threshold: ThresholdAlert | None = None


@dataclass(frozen=True)
class SLO:
    """One service level objective, whatever format it came from.

    ``calendar``: budgets reset at calendar boundaries (OpenSLO ``isRolling: false``, the own
    format's ``window: {calendar: month}``); ``period_ms`` is then the calendar unit's nominal
    length, used for the rolling burn-rate windows. ``origin``: the format read (``prometheus/v1``,
    ``sloth.slok.dev/v1``, ``openslo/v1alpha``, ``pyrra.dev/v1alpha1``, ``openslo/v1``,
    ``sloanalysis/v1``); it picks the default rule style. ``grouping``: labels the SLI is
    computed per (Pyrra ``grouping``). ``record_prefix``: Pyrra's recording-rule prefix (the total
    metric without ``_total``/``_count``). ``selectors``: the indicator's metric selectors by role
    as a Pyrra spec wrote them (``total``, ``errors``, ``success``, ``gauge``; ``latency``: a
    ``latencyNative`` threshold in seconds; ``absent``: ``false`` when the spec turns the absent
    alerts off), for the rules Pyrra derives from them (its ``-increase`` group and
    ``SLOMetricAbsent`` alerts).
    """

    name: str
    service: str
    objective: float
    period_ms: int
    sli: SLI
    alerting: Alerting
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    calendar: CalendarWindow | None = None
    origin: str = ""
    grouping: tuple[str, ...] = ()
    record_prefix: str = ""
    selectors: Mapping[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def error_budget(self) -> float:
        """Allowed fraction of bad events or time, ``1 - objective``."""
        return 1.0 - self.objective

    @property
    def budget_unit(self) -> Literal["events", "minutes"]:
        return "events" if isinstance(self.sli, EventsSLI | LatencySLI) else "minutes"

    def error_ratio_expr(self, window_ms: int) -> str:
        return self.sli.error_ratio_expr(window_ms)
