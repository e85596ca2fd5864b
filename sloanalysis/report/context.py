"""What the notebooks show, computed in one place: the data source, the SLO analysis, the alert
backtests, the threshold sweeps and the dashboard panels.

A :class:`Context` holds the inputs and computes each part on first use, so a notebook opened in
JupyterLab computes only what it shows. ``sloanalysis report`` computes every part once in its own
process, saves the context without the raw samples (:meth:`Context.save`) and hands the file to the
notebooks, which then only draw (:func:`open_context` with ``data=``). The raw samples are loaded
again only if a notebook needs them (the interactive sliders).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from sloanalysis.dashboard import PanelData, evaluate_dashboard, load_dashboard
from sloanalysis.durations import format_duration_human
from sloanalysis.errors import UserError
from sloanalysis.formatting import fmt_number, fmt_percent
from sloanalysis.query import EmbeddedBackend, PrometheusBackend, parse_duration, parse_time
from sloanalysis.report import wording
from sloanalysis.report.compliance import compliance, describe_windows, window_label
from sloanalysis.report.model import (
    DAY_MS,
    DEFAULT_PERIOD_MS,
    MINUTE_MS,
    PROJECT_FILES,
    Dataset,
    Inputs,
    SLOResult,
    align_range,
    dashboard_step_ms,
    slo_step_ms,
)
from sloanalysis.rules.backtest import Backtest, backtest
from sloanalysis.rules.model import RuleGroup, load_rules
from sloanalysis.rules.tuning import TuneSet, sweep
from sloanalysis.slo.budget import QueryBackend, burn_rate_series, measure
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.slo.rulegen import alert_windows
from sloanalysis.slo.spec import SLO
from sloanalysis.slo.status import budget_remaining_series, sli_data_span, slo_status
from sloanalysis.sources.prometheus import fetch_expressions
from sloanalysis.sources.rundir import INCIDENT_COLUMNS, load_incidents, load_run

__all__ = [
    "NOTEBOOK_PARAMETERS",
    "Context",
    "analyse_slo",
    "find_project",
    "header_markdown",
    "html_table",
    "incident_table",
    "load_dataset",
    "notebook_context",
    "open_context",
    "project_defaults",
    "project_path",
    "rule_windows_ms",
]

NOTEBOOK_PARAMETERS = (
    "data",
    "run_dir",
    "prometheus_url",
    "start",
    "end",
    "slos",
    "rules",
    "dashboard",
    "incidents",
    "burn_windows",
)
"""The variables of the report notebooks' parameters cell that :func:`notebook_context` reads."""


# -- the data source ----------------------------------------------------------------------------


def _now_ms() -> int:
    return (datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _empty_incidents() -> pd.DataFrame:
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


def load_dataset(
    inputs: Inputs,
    expressions: Callable[[], Sequence[str]],
    slos: Callable[[], Sequence[SLO]] = list,
) -> Dataset:
    """Samples from the run directory, or from the server: the raw samples that ``expressions``
    read over the range, fetched once so that every analysis runs on the embedded engine. A server
    without any of them in the range is an error that says where the ``slos``' data is."""
    if (inputs.run_dir is None) == (inputs.prometheus_url is None):
        raise UserError("give exactly one of a run directory and a Prometheus URL")
    if inputs.run_dir is not None:
        run = load_run(inputs.run_dir)
        span = run.store.time_range()
        if span is None:
            raise UserError(f"{inputs.run_dir}: the run has no samples")
        start, end = align_range(*_resolve_range(inputs, span))
        incidents = load_incidents(inputs.incidents) if inputs.incidents else run.incidents
        return Dataset(run.store, _clip_incidents(incidents, start, end), start, end)
    assert inputs.prometheus_url is not None
    start, end = align_range(*_resolve_range(inputs, None))
    reads = [(expr, start, end) for expr in expressions()]
    store = fetch_expressions(inputs.prometheus_url, reads, timeout=inputs.timeout_s)
    if store.time_range() is None:
        raise UserError(
            f"Prometheus at {inputs.prometheus_url} has no samples for these queries between "
            f"{_iso(start)} and {_iso(end)}{_where_the_data_is(inputs, slos(), end)}"
        )
    incidents = load_incidents(inputs.incidents) if inputs.incidents else _empty_incidents()
    return Dataset(store, _clip_incidents(incidents, start, end), start, end)


def server_data_span(inputs: Inputs, slos: Sequence[SLO], near_ms: int) -> tuple[int, int] | None:
    """Where the SLIs' series have samples on the server (first and last, over all ``slos``)."""
    if not inputs.prometheus_url or not slos:
        return None
    backend = PrometheusBackend(inputs.prometheus_url, timeout=inputs.timeout_s)
    try:
        spans = [sp for slo in slos if (sp := sli_data_span(slo, backend, near_ms)) is not None]
    finally:
        backend.close()
    return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None


def _where_the_data_is(inputs: Inputs, slos: Sequence[SLO], near_ms: int) -> str:
    try:
        span = server_data_span(inputs, slos, near_ms)
    except UserError:  # a hint only: the error it adds to stays the one reported
        return ""
    if span is None:
        return "; the SLIs' series have no sample on the server at all" if slos else ""
    return f"; the SLIs' data spans {_iso(span[0])} to {_iso(span[1])}"


# -- SLOs -----------------------------------------------------------------------------------------


def rule_windows_ms(slo: SLO) -> list[int]:
    """The long windows of the burn-rate alerts ``sloanalysis generate-rules`` writes for the SLO in
    its own style (:func:`~sloanalysis.slo.rulegen.alert_windows`: Sloth's for a Sloth spec, Pyrra's
    for a Pyrra one), shortest first."""
    return sorted({w.long_ms for w in alert_windows(slo)})


def analyse_slo(
    slo: SLO,
    backend: QueryBackend,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    burn_windows_ms: Sequence[int] = (),
) -> SLOResult:
    """The status of one SLO at ``end_ms`` (the ``sloanalysis slo`` row), its per-step series over
    the range (budget left over the trailing period, or since the calendar period's start for a
    calendar SLO; burn rate over each window that is shorter
    than the period and no shorter than a step: ``burn_windows_ms``, or by default the alert
    windows of :func:`rule_windows_ms`) and its compliance over the whole range."""
    status = slo_status(slo, backend, start_ms, end_ms, step_ms)
    frame = measure(slo, backend, start_ms, end_ms, step_ms)
    wanted = burn_windows_ms or rule_windows_ms(slo)
    windows = [w for w in wanted if step_ms <= w < slo.period_ms]
    burn = pd.DataFrame(
        {format_duration_human(w): burn_rate_series(frame, slo.objective, w) for w in windows},
        index=frame.index,
    )
    remaining = budget_remaining_series(slo, frame)  # a calendar SLO's restarts at each boundary
    # a calendar SLO's compliance: per calendar period the range touches
    return SLOResult(status, frame, remaining, burn, compliance(status, frame, backend, start_ms))


def _budget_pct(ratio: float | None) -> str:
    return fmt_percent(ratio)


def _slo_display_row(row: dict[str, Any]) -> dict[str, str]:
    """A status row for people (``no data`` where the window has no SLI or no sample; ``met`` says
    yes, NO, no data or low coverage)."""

    def known(value: Any, fmt: Callable[[Any], str]) -> str:
        return "no data" if value is None else fmt(value)

    unit = "min" if row["budget_unit"] == "minutes" else "events"
    return {
        "SLO": row["slo"],
        "objective": fmt_percent(row["objective"], 6),
        "period": row.get("period_label") or format_duration_human(row["period_ms"]),
        "window": format_duration_human(row["window_ms"]),
        "SLI": known(row["sli"], lambda x: fmt_percent(x, 6)),
        "met": {"met": "yes", "missed": "NO"}.get(str(row.get("state")), str(row.get("state"))),
        "coverage": known(row.get("coverage"), lambda x: fmt_percent(x, 4)),
        "budget left": known(row["budget_remaining_ratio"], _budget_pct),
        "left (amount)": known(row["budget_remaining"], lambda x: f"{fmt_number(x)} {unit}"),
        "burn (1h)": known(row["burn_rate_current"], fmt_number),
        "exhausted in": wording.time_left(row),
    }


def _compliance_display_row(result: SLOResult) -> dict[str, str]:
    c = result.compliance
    assert c is not None
    worst = c.worst
    if c.method == "periods":
        missed = f"{len(c.missed)} of {len(c.windows)}"
    else:
        missed = "-" if worst is None else ("yes" if worst.met is False else "no")
    return {
        "SLO": result.slo.name,
        "assessed": describe_windows(c),
        "missed": missed,
        "worst budget left": "no data" if worst is None else fmt_percent(worst.budget_remaining_ratio, 4),
        "worst SLI": "no data" if worst is None else fmt_percent(worst.sli, 6),
        "worst window (UTC)": "-" if worst is None else window_label(c, worst),
    }


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
            self._dataset = load_dataset(self.inputs, self.expressions, lambda: self.slo_specs)
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
    def has_ground_truth(self) -> bool:
        """Incidents were given, or the run directory brought its own."""
        return bool(self.inputs.incidents or self.inputs.run_dir)

    def _truth(self) -> pd.DataFrame | None:
        """The incidents to score alerts against; None without ground truth (scores are n/a)."""
        return self.dataset.incidents if self.has_ground_truth else None

    @property
    def source(self) -> str:
        return self.inputs.describe()

    @property
    def backend(self) -> EmbeddedBackend:
        """The embedded engine over the samples (``.query``, ``.query_range``), for a notebook's
        own queries."""
        return EmbeddedBackend(self.dataset.store)

    def _get(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._parts:
            t0 = time.perf_counter()
            self._parts[key] = compute()
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0
        return self._parts[key]

    def expressions(self) -> list[str]:
        """Every PromQL expression the report evaluates (to fetch their samples from a server)."""
        # The SLO windows never reach before the range's start: the per-minute templates read
        # every selector over the range (plus a minute and the lookback).
        exprs = [slo.error_ratio_expr(MINUTE_MS) for slo in self.slo_specs]
        exprs.extend(r.expr for groups in self.rule_groups.values() for g in groups for r in g.rules)
        if self.inputs.dashboard:
            exprs.extend(t.expr for p in load_dashboard(self.inputs.dashboard)[1] for t in p.targets)
        return exprs

    # -- SLOs
    @property
    def slo_specs(self) -> list[SLO]:
        def load() -> list[SLO]:
            return load_slo_files([self.inputs.slos], DEFAULT_PERIOD_MS) if self.inputs.slos else []

        return self._get("slo_specs", load)

    @property
    def slo_results(self) -> list[SLOResult]:
        def compute() -> list[SLOResult]:
            ds = self.dataset
            backend = EmbeddedBackend(ds.store)
            step = slo_step_ms(ds.start_ms, ds.end_ms)
            windows = self.inputs.burn_windows_ms
            results = [analyse_slo(s, backend, ds.start_ms, ds.end_ms, step, windows) for s in self.slo_specs]
            return [self._with_server_span(r) for r in results]

        return self._get("slo_results", compute)

    def _with_server_span(self, result: SLOResult) -> SLOResult:
        """An SLO without (enough) data read from a server: where its data is on the server (the
        fetched samples cover the range only)."""
        if not self.inputs.prometheus_url or result.state not in ("no data", "low coverage"):
            return result
        if "data_span_ms" not in getattr(result.status, "__dataclass_fields__", {}):
            return result
        span = server_data_span(self.inputs, [result.slo], self.end_ms)
        return replace(result, status=replace(result.status, data_span_ms=span))

    def slo_table(self) -> pd.DataFrame:
        """The SLO table for display: objective, window, SLI, met, budget left, burn (1h)."""
        return pd.DataFrame([_slo_display_row(r.row) for r in self.slo_results])

    def compliance_table(self) -> pd.DataFrame:
        """Per SLO over the whole range: the windows assessed, how many were missed, the least
        budget left and where (:mod:`~sloanalysis.report.compliance`)."""
        return pd.DataFrame([_compliance_display_row(r) for r in self.slo_results if r.compliance])

    # -- alerts
    @property
    def rule_groups(self) -> dict[str, list[RuleGroup]]:
        """The rule groups of each rules file."""
        return self._get("rule_groups", lambda: {p: load_rules(p) for p in self.inputs.rules})

    @property
    def ground_truth(self) -> pd.DataFrame | None:
        """The incidents to score alerts against; None without ground truth (no incidents file
        and no run directory)."""
        has = self.inputs.incidents is not None or self.inputs.run_dir is not None
        return self.incidents if has else None

    @property
    def backtests(self) -> list[Backtest]:
        """The backtest of each rules file, without its evaluation (a saved context carries no samples)."""

        def compute() -> list[Backtest]:
            ds = self.dataset
            return [
                backtest(groups, ds.store, self.ground_truth, ds.start_ms, ds.end_ms, path=p).detached()
                for p, groups in self.rule_groups.items()
            ]

        return self._get("backtests", compute)

    @property
    def tuning(self) -> dict[str, TuneSet]:
        """Per rules file: the sweep of its rules with a numeric threshold."""

        def compute() -> dict[str, TuneSet]:
            ds = self.dataset
            shared: dict[Any, Any] = {}
            return {
                p: sweep(p, groups, ds.store, self.ground_truth, ds.start_ms, ds.end_ms, shared)
                for p, groups in self.rule_groups.items()
            }

        return self._get("tuning", compute)

    # -- dashboard
    @property
    def dashboard(self) -> tuple[str, list[PanelData]]:
        def compute() -> tuple[str, list[PanelData]]:
            if not self.inputs.dashboard:
                return "", []
            title, panels = load_dashboard(self.inputs.dashboard)
            ds = self.dataset
            step = dashboard_step_ms(ds.start_ms, ds.end_ms)
            return title, evaluate_dashboard(ds.store, panels, ds.start_ms, ds.end_ms, step)

        return self._get("dashboard", compute)

    @property
    def dashboard_title(self) -> str:
        """The dashboard's own title (read from its file; no data needed)."""

        def read() -> str:
            return load_dashboard(self.inputs.dashboard)[0] if self.inputs.dashboard else ""

        return str(self._get("dashboard_title", read))

    def dashboard_note(self) -> str | None:
        """Why there is no dashboard to draw (none given, or no panel query with data); None when
        there is one."""
        title, panels = self.dashboard
        return wording.dashboard_note(self.inputs, title, panels)

    # -- prose
    def page_title(self, page: str) -> str:
        return wording.page_title(page, self.inputs, self.slo_specs, self.dashboard_title)

    def page_intro(self, page: str) -> str:
        """The page's title and opening paragraph (Markdown), from the inputs."""
        return wording.page_intro(page, self.inputs, self.slo_specs, self.dashboard_title)

    # -- persistence
    def compute_all(self) -> None:
        _ = self.slo_results, self.backtests, self.tuning, self.dashboard

    def save(self, path: str | os.PathLike[str], parts: Sequence[str] | None = None) -> None:
        """Pickle the computed parts, or only ``parts`` (never the samples: a notebook reloads them
        only if it needs what was not saved)."""
        _ = self.start_ms, self.incidents, self.slo_specs, self.dashboard_title
        base = ("range", "incidents", "slo_specs", "dashboard_title")
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


def _opt(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _windows_ms(windows: Sequence[str | int] | None) -> tuple[int, ...]:
    if not windows:
        return ()
    out = tuple(parse_duration(w) for w in windows)
    if not out or any(w <= 0 for w in out):
        raise UserError(f"burn windows must be positive durations, got {list(windows)!r}")
    return out


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
    burn_windows: Sequence[str | int] | None = None,
) -> Context:
    """The notebooks' entry point: the precomputed context at ``data`` (written by ``sloanalysis
    report``), or a fresh one over the given source that computes what the notebook asks for.

    Paths are taken as given (relative ones from the working directory); rules files that do not
    exist are left out (the corrected rules may not have been written yet). ``burn_windows``:
    durations (``"5m"``, ``"1h"``, or milliseconds) of the burn-rate plots; default, per SLO,
    the windows of the alerts ``sloanalysis generate-rules`` writes for it in its own style."""
    if data:
        return Context.load(data)
    rules_t = (rules,) if isinstance(rules, str) else tuple(rules)
    existing = tuple(str(r) for r in rules_t if Path(r).is_file())
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
            burn_windows_ms=_windows_ms(burn_windows),
        )
    )


# -- notebooks ----------------------------------------------------------------------------------


def find_project(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default: the working directory) that holds the
    project's SLO file (:data:`~sloanalysis.report.model.PROJECT_FILES`), or None."""
    here = Path(start or Path.cwd()).resolve()
    marker = PROJECT_FILES["slos"][0]
    return next((d for d in (here, *here.parents) if (d / marker).is_file()), None)


def project_path(*parts: str, start: str | os.PathLike[str] | None = None) -> Path:
    """``parts`` below the project directory (:func:`find_project`); a one-line error without one."""
    root = find_project(start)
    if root is None:
        raise UserError(
            f"no project directory (one holding {PROJECT_FILES['slos'][0]}) at or above "
            f"{Path(start or Path.cwd()).resolve()}: give the path of {'/'.join(parts)} explicitly"
        )
    return root.joinpath(*parts)


def project_defaults(
    params: Mapping[str, Any], start: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """``params`` with ``run_dir``, ``slos``, ``rules`` and ``dashboard`` filled in where None from the
    project found by :func:`find_project` (of the rules files, those that exist). With a
    ``prometheus_url`` nothing is filled in: a server holds the user's own service, so only the
    files given apply. Nothing to fill in: ``params`` as they are."""
    out = dict(params)
    if out.get("prometheus_url"):
        return out
    wanted: list[str] = [k for k in ("run_dir", "slos", "rules", "dashboard") if k in out and out[k] is None]
    if not wanted:
        return out
    root = find_project(start)
    if root is None:
        raise UserError(
            f"no project directory (one holding {PROJECT_FILES['slos'][0]}) at or above "
            f"{Path(start or Path.cwd()).resolve()}: set {', '.join(wanted)} in the parameters"
        )
    for key in wanted:
        found = [str(root / f) for f in PROJECT_FILES[key] if (root / f).exists()]
        if key == "rules":
            out[key] = found
        elif found:
            out[key] = found[0]
        else:
            raise UserError(f"{root / PROJECT_FILES[key][0]}: not found (set {key} in the parameters)")
    return out


def notebook_context(namespace: Mapping[str, Any], page: str | None = None) -> Context:
    """The context of a report notebook from its parameters cell (pass ``globals()``): the
    precomputed one when ``data`` is set (``sloanalysis report``), else a fresh one with the
    project's own files for parameters left None (:func:`project_defaults`). Shows the page's
    title and opening paragraph (``page``: a report page's name) and the header line."""
    from IPython.display import Markdown, display  # notebooks only: the CLI never imports IPython

    params = {k: namespace.get(k) for k in NOTEBOOK_PARAMETERS}
    if not params["data"]:
        params = project_defaults(params)
    ctx = open_context(**{k: v for k, v in params.items() if v is not None})
    if page is not None:
        display(Markdown(ctx.page_intro(page)))
    display(Markdown(header_markdown(ctx)))
    return ctx


# -- display helpers for the notebooks -------------------------------------------------------------


def header_markdown(ctx: Context) -> str:
    """One line naming the source, the range and the ground truth, for the top of each notebook."""
    n = len(ctx.incidents)
    truth = f"{n} incident{'s' if n != 1 else ''} (ground truth)" if n else "no ground-truth incidents"
    return (
        f"**Source:** {ctx.source} &nbsp;·&nbsp; **Range:** {_iso(ctx.start_ms)} to {_iso(ctx.end_ms)} "
        f"({format_duration_human(ctx.end_ms - ctx.start_ms)}) &nbsp;·&nbsp; {truth}"
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
    from IPython.display import HTML  # notebooks only: the CLI never imports IPython

    return HTML(frame.to_html(index=False, escape=True, na_rep="-", border=0, classes="sloanalysis-table"))
