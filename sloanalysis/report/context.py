"""What the notebooks show, computed in one place: the data source, the SLO analysis, the alert
backtests, the threshold sweeps and the dashboard panels.

A :class:`Context` holds the inputs and computes each part on first use, so a notebook opened in
JupyterLab computes only what it shows. ``sloanalysis report`` computes every part once in its own
process, saves the context without the raw samples (:meth:`Context.save`) and hands the file to the
notebooks, which then only draw (:func:`open_context` with ``data=``). The raw samples are loaded
again only if a notebook needs them (the interactive sliders).
"""

from __future__ import annotations

import math
import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sloanalysis.errors import UserError
from sloanalysis.store import SeriesStore

__all__ = [
    "BURN_WINDOWS_MS",
    "Backtest",
    "Context",
    "Dataset",
    "Inputs",
    "SLOResult",
    "align_range",
    "dashboard_step_ms",
    "load_dataset",
    "open_context",
    "rolling_budget_remaining",
]

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
BURN_WINDOWS_MS = (5 * MINUTE_MS, 30 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS)
"""The SRE workbook's multiwindow burn-rate windows (those shorter than an SLO's period are drawn)."""
CURRENT_MS = HOUR_MS
"""The trailing window whose burn rate is "current", as in ``sloanalysis slo``."""


@dataclass(frozen=True)
class Inputs:
    """Where the data comes from and which specifications to check it against.

    Exactly one of ``run_dir`` and ``prometheus_url``. ``start``/``end``: RFC 3339, unix seconds, or
    a duration before the end (``7d``); default the run's whole span, or the last day of a server.
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
    """One SLO: its table row (over the SLO window at the range's end) and its time series."""

    slo: Any
    row: dict[str, Any]
    frame: pd.DataFrame
    budget_remaining: pd.Series
    burn_rates: pd.DataFrame

    @property
    def period_label(self) -> str:
        from sloanalysis.formatting import fmt_duration_ms

        return fmt_duration_ms(self.slo.period_ms)


@dataclass
class Backtest:
    """The backtest of one rules file: its alert names, the alerts it produced and their scores."""

    path: str
    alertnames: list[str]
    alerts: pd.DataFrame
    scores: pd.DataFrame
    interval_ms: int = MINUTE_MS


# -- the data source ----------------------------------------------------------------------------


def _now_ms() -> int:
    return (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def align_range(start_ms: int, end_ms: int, step_ms: int = MINUTE_MS) -> tuple[int, int]:
    """The range widened to whole steps: start floored, end ceiled (plots and windows on round times)."""
    lo = (start_ms // step_ms) * step_ms
    hi = -((-end_ms) // step_ms) * step_ms
    return lo, hi


def _empty_incidents() -> pd.DataFrame:
    from sloanalysis.sources.rundir import INCIDENT_COLUMNS

    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in INCIDENT_COLUMNS})
    frame["start"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["end"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def _clip_incidents(incidents: pd.DataFrame, start_ms: int, end_ms: int) -> pd.DataFrame:
    lo = pd.Timestamp(start_ms, unit="ms", tz="UTC")
    hi = pd.Timestamp(end_ms, unit="ms", tz="UTC")
    keep = (incidents["end"] > lo) & (incidents["start"] < hi)
    return incidents[keep].reset_index(drop=True)


def _resolve_range(inputs: Inputs, data_span: tuple[int, int] | None) -> tuple[int, int]:
    from sloanalysis.query import parse_time

    default_end = data_span[1] if data_span else _now_ms()
    end = parse_time(inputs.end, reference_ms=default_end) if inputs.end else default_end
    if inputs.start:
        start = parse_time(inputs.start, reference_ms=end)
    elif data_span:
        start = data_span[0]
    else:
        start = end - DAY_MS
    if data_span:
        start, end = max(start, data_span[0]), min(end, data_span[1])
    if end <= start:
        raise UserError(f"empty time range: start {_iso(start)} is not before end {_iso(end)}")
    return start, end


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def load_dataset(inputs: Inputs, expressions: Callable[[], Sequence[str]]) -> Dataset:
    """Samples from the run directory, or from the server: the raw samples that ``expressions``
    read over the range, fetched once so that every analysis runs on the embedded engine."""
    from sloanalysis.sources.rundir import load_incidents, load_run

    if (inputs.run_dir is None) == (inputs.prometheus_url is None):
        raise UserError("give exactly one of a run directory and a Prometheus URL")
    if inputs.run_dir is not None:
        run = load_run(inputs.run_dir)
        span = run.store.time_range()
        if span is None:
            raise UserError(f"{inputs.run_dir}: the run has no samples")
        start, end = _resolve_range(inputs, span)
        incidents = load_incidents(inputs.incidents) if inputs.incidents else run.incidents
        start, end = align_range(start, end)
        return Dataset(run.store, _clip_incidents(incidents, start, end), start, end)
    return _load_from_prometheus(inputs, expressions)


def _load_from_prometheus(inputs: Inputs, expressions: Callable[[], Sequence[str]]) -> Dataset:
    from sloanalysis.sources.prometheus import PrometheusClient, fetch_range, needed_ranges
    from sloanalysis.sources.rundir import load_incidents

    assert inputs.prometheus_url is not None
    start, end = align_range(*_resolve_range(inputs, None))
    spans: dict[str, tuple[int, int]] = {}
    for expr in expressions():
        for r in needed_ranges(expr, start, end):
            lo, hi = spans.get(r.selector, (r.lo_ms, r.hi_ms))
            spans[r.selector] = (min(lo, r.lo_ms), max(hi, r.hi_ms))
    store = SeriesStore()
    with PrometheusClient(inputs.prometheus_url, timeout=inputs.timeout_s) as client:
        client.instant("vector(1)", end)  # fail fast, with the client's one-line error
        for selector, (lo, hi) in sorted(spans.items()):
            fetch_range(client, selector, lo, hi, into=store)
    if store.time_range() is None:
        raise UserError(
            f"Prometheus at {inputs.prometheus_url} has no samples for these queries between "
            f"{_iso(start)} and {_iso(end)}"
        )
    incidents = load_incidents(inputs.incidents) if inputs.incidents else _empty_incidents()
    return Dataset(store, _clip_incidents(incidents, start, end), start, end)


# -- SLOs -----------------------------------------------------------------------------------------


def rolling_budget_remaining(frame: pd.DataFrame, objective: float, period_ms: int) -> pd.Series:
    """Share of the error budget left over the trailing period at each step (1 - consumed/allowed,
    allowed = (1 - objective) x valid); 1 where the window has no traffic, negative when overspent."""
    sums = frame[["good", "valid"]].astype(np.float64).rolling(pd.Timedelta(milliseconds=period_ms)).sum()
    good, valid = sums["good"].to_numpy(), sums["valid"].to_numpy()
    allowed = (1.0 - objective) * valid
    out = np.ones(valid.shape)
    np.divide(valid - good, allowed, out=out, where=allowed > 0)
    return pd.Series(np.where(allowed > 0, 1.0 - out, 1.0), index=frame.index, name="budget_remaining")


def analyse_slo(slo: Any, backend: Any, start_ms: int, end_ms: int, step_ms: int) -> SLOResult:
    """The ``sloanalysis slo`` row of one SLO at ``end_ms`` and its per-step series over the range."""
    from sloanalysis.slo.budget import burn_rate_series, error_budget, measure, measure_window, summarise

    window_start = max(start_ms, end_ms - slo.period_ms)
    totals = measure_window(slo, backend, window_start, end_ms)
    current = measure_window(slo, backend, max(window_start, end_ms - CURRENT_MS), end_ms)
    row = summarise(slo, totals, end_ms - window_start, error_budget(current, slo.objective).burn_rate)
    frame = measure(slo, backend, start_ms, end_ms, step_ms)
    windows = [w for w in BURN_WINDOWS_MS if w < slo.period_ms and w >= step_ms]
    from sloanalysis.formatting import fmt_duration_ms

    burn = pd.DataFrame(
        {fmt_duration_ms(w): burn_rate_series(frame, slo.objective, w) for w in windows}, index=frame.index
    )
    remaining = rolling_budget_remaining(frame, slo.objective, slo.period_ms)
    return SLOResult(slo, row, frame, remaining, burn)


def slo_step_ms(start_ms: int, end_ms: int) -> int:
    """One minute up to eight days, five beyond (a 30-day range stays at 8,640 steps)."""
    return MINUTE_MS if end_ms - start_ms <= 8 * DAY_MS else 5 * MINUTE_MS


def dashboard_step_ms(start_ms: int, end_ms: int, points: int = 1500) -> int:
    """A step like Grafana's: about ``points`` per series, a multiple of the 15 s scrape interval."""
    raw = (end_ms - start_ms) / points
    return max(15_000, math.ceil(raw / 15_000) * 15_000)


# -- the context ---------------------------------------------------------------------------------


@dataclass
class Context:
    """The inputs and every computed part (each computed on first use, then kept)."""

    inputs: Inputs
    _dataset: Dataset | None = field(default=None, repr=False)
    _parts: dict[str, Any] = field(default_factory=dict, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    # -- the data
    @property
    def dataset(self) -> Dataset:
        if self._dataset is None:
            t0 = time.perf_counter()
            self._dataset = load_dataset(self.inputs, self.expressions)
            self.timings["load"] = time.perf_counter() - t0
            self._parts.setdefault("range", (self._dataset.start_ms, self._dataset.end_ms))
            self._parts.setdefault("incidents", self._dataset.incidents)
        return self._dataset

    @property
    def start_ms(self) -> int:
        return int(self._get("range", lambda: (self.dataset.start_ms, self.dataset.end_ms))[0])

    @property
    def end_ms(self) -> int:
        return int(self._get("range", lambda: (self.dataset.start_ms, self.dataset.end_ms))[1])

    @property
    def incidents(self) -> pd.DataFrame:
        return self._get("incidents", lambda: self.dataset.incidents)

    @property
    def source(self) -> str:
        return self.inputs.describe()

    def _get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._parts:
            t0 = time.perf_counter()
            self._parts[key] = compute()
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0
        return self._parts[key]

    def expressions(self) -> list[str]:
        """Every PromQL expression the report evaluates (to fetch their samples from a server)."""
        exprs: list[str] = []
        for slo in self.slo_specs:
            # The SLO windows never reach before the range's start: the per-minute templates read
            # every selector over the range (plus a minute and the lookback).
            exprs.append(slo.error_ratio_expr(MINUTE_MS))
        for path in self.inputs.rules:
            exprs.extend(_rule_expressions(path))
        if self.inputs.dashboard:
            from sloanalysis.dashboard import load_dashboard

            exprs.extend(t.expr for p in load_dashboard(self.inputs.dashboard)[1] for t in p.targets)
        return exprs

    # -- SLOs
    @property
    def slo_specs(self) -> list[Any]:
        def load() -> list[Any]:
            if not self.inputs.slos:
                return []
            from sloanalysis.cli.commands.generate_rules import load_all

            return list(load_all([self.inputs.slos], 30 * DAY_MS))

        return self._get("slo_specs", load)

    @property
    def slo_results(self) -> list[SLOResult]:
        def compute() -> list[SLOResult]:
            from sloanalysis.query import EmbeddedBackend

            ds = self.dataset
            backend = EmbeddedBackend(ds.store)
            step = slo_step_ms(ds.start_ms, ds.end_ms)
            return [analyse_slo(s, backend, ds.start_ms, ds.end_ms, step) for s in self.slo_specs]

        return self._get("slo_results", compute)

    def slo_table(self) -> pd.DataFrame:
        """The SLO table for display: objective, window, SLI, met, budget left, burn (1h)."""
        from sloanalysis.formatting import fmt_duration_ms, fmt_percent

        rows = []
        for r in self.slo_results:
            row = r.row
            met = row["met"]
            unit = "min" if row["budget_unit"] == "minutes" else "events"
            rows.append(
                {
                    "SLO": row["slo"],
                    "objective": fmt_percent(row["objective"], 6),
                    "period": fmt_duration_ms(row["period_ms"]),
                    "window": fmt_duration_ms(row["window_ms"]),
                    "SLI": "no data" if row["sli"] is None else fmt_percent(row["sli"], 6),
                    "met": "no data" if met is None else ("yes" if met else "NO"),
                    "budget left": _budget_pct(row["budget_remaining_ratio"]),
                    "left (amount)": f"{row['budget_remaining']:.4g} {unit}",
                    "burn (1h)": f"{row['burn_rate_current']:.3g}",
                    "exhausted in": fmt_duration_ms(row["time_to_exhaustion_ms"]),
                }
            )
        return pd.DataFrame(rows)

    # -- alerts
    @property
    def backtests(self) -> list[Backtest]:
        def compute() -> list[Backtest]:
            from sloanalysis.report.alerts import run_backtest

            ds = self.dataset
            return [
                run_backtest(p, ds.store, ds.incidents, ds.start_ms, ds.end_ms) for p in self.inputs.rules
            ]

        return self._get("backtests", compute)

    @property
    def tuning(self) -> dict[str, Any]:
        """Per rules file: the :class:`~sloanalysis.report.alerts.TuneSet` of its tunable rules."""

        def compute() -> dict[str, Any]:
            from sloanalysis.report.alerts import sweep

            ds = self.dataset
            shared: dict[Any, Any] = {}
            return {
                p: sweep(p, ds.store, ds.incidents, ds.start_ms, ds.end_ms, shared) for p in self.inputs.rules
            }

        return self._get("tuning", compute)

    # -- dashboard
    @property
    def dashboard(self) -> tuple[str, list[Any]]:
        def compute() -> tuple[str, list[Any]]:
            from sloanalysis.dashboard import evaluate_dashboard, load_dashboard

            if not self.inputs.dashboard:
                return "", []
            title, panels = load_dashboard(self.inputs.dashboard)
            ds = self.dataset
            step = dashboard_step_ms(ds.start_ms, ds.end_ms)
            return title, evaluate_dashboard(ds.store, panels, ds.start_ms, ds.end_ms, step)

        return self._get("dashboard", compute)

    # -- persistence
    def compute_all(self) -> None:
        _ = self.slo_results, self.backtests, self.tuning, self.dashboard

    def save(self, path: str | os.PathLike[str], parts: Sequence[str] | None = None) -> None:
        """Pickle the computed parts, or only ``parts`` (never the samples: a notebook reloads them
        only if it needs what was not saved)."""
        _ = self.start_ms, self.incidents
        base = ("range", "incidents", "slo_specs")
        keep = (
            self._parts if parts is None else {k: v for k, v in self._parts.items() if k in (*base, *parts)}
        )
        with open(path, "wb") as fh:
            pickle.dump({"inputs": self.inputs, "parts": keep, "timings": self.timings}, fh)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Context:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
        return cls(state["inputs"], None, state["parts"], state["timings"])


def _rule_expressions(path: str) -> list[str]:
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read rules: {str(exc).splitlines()[0]}") from None
    return [
        str(rule["expr"])
        for group in doc.get("groups") or []
        for rule in group.get("rules") or []
        if isinstance(rule, dict) and "expr" in rule
    ]


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def open_context(
    *,
    data: str | None = None,
    run_dir: str | None = None,
    prometheus_url: str | None = None,
    start: str | None = None,
    end: str | None = None,
    slos: str | None = None,
    rules: Sequence[str] | str = (),
    dashboard: str | None = None,
    incidents: str | None = None,
) -> Context:
    """The notebooks' entry point: the precomputed context at ``data`` (written by ``sloanalysis
    report``), or a fresh one over the given source that computes what the notebook asks for."""
    if data:
        return Context.load(data)
    rules_t = (rules,) if isinstance(rules, str) else tuple(rules)
    existing = tuple(r for r in rules_t if Path(r).is_file())
    return Context(
        Inputs(
            run_dir=_opt(run_dir),
            prometheus_url=_opt(prometheus_url),
            start=_opt(start),
            end=_opt(end),
            slos=_opt(slos),
            rules=existing,
            dashboard=_opt(dashboard),
            incidents=_opt(incidents),
        )
    )


def _budget_pct(ratio: float) -> str:
    x = ratio * 100
    return f"{x:,.0f}%" if abs(x) >= 1000 else f"{x:.4g}%"


# -- display helpers for the notebooks -------------------------------------------------------------


def header_markdown(ctx: Context) -> str:
    """One line naming the source, the range and the ground truth, for the top of each notebook."""
    from sloanalysis.formatting import fmt_duration_ms

    n = len(ctx.incidents)
    truth = f"{n} incident{'s' if n != 1 else ''} (ground truth)" if n else "no ground-truth incidents"
    return (
        f"**Source:** {ctx.source} &nbsp;·&nbsp; **Range:** {_iso(ctx.start_ms)} to {_iso(ctx.end_ms)} "
        f"({fmt_duration_ms(ctx.end_ms - ctx.start_ms)}) &nbsp;·&nbsp; {truth}"
    )


def incident_table(ctx: Context) -> pd.DataFrame:
    inc = ctx.incidents
    return pd.DataFrame(
        {
            "incident": inc["id"],
            "kind": inc["kind"],
            "start": inc["start"].dt.strftime("%Y-%m-%d %H:%M"),
            "duration": (inc["end"] - inc["start"]).astype(str).str.replace("0 days ", ""),
            "expected alerts": [", ".join(a) for a in inc["expected_alerts"]],
        }
    )


def html_table(frame: pd.DataFrame) -> Any:
    """A frame as an HTML table without its index (IPython display object)."""
    from IPython.display import HTML

    return HTML(frame.to_html(index=False, escape=True, na_rep="-", border=0, classes="sloanalysis-table"))
