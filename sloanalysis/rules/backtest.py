"""Backtest rule groups over stored samples: evaluate them as a Prometheus rule manager would,
then score every alert against the ground-truth incidents.

The one implementation behind ``sloanalysis backtest``, ``sloanalysis tune`` and the report:
:func:`backtest` runs :func:`~sloanalysis.rules.manager.evaluate_rules` and
:func:`~sloanalysis.rules.scoring.score` and returns a :class:`Backtest` with the alerts, the
per-alert scores, the (incident, alert) pairs and the firing intervals attributed to incidents.

Scoring's grace after an incident ends is ``for + 2 * evaluation interval`` of the alert's rule
(:func:`grace_ms`). A rule whose range selector or subquery reaches further back than the
evaluated span is reported in :attr:`Backtest.warnings` (it sees only part of its window, as on
a freshly started server), along with the rule manager's own warnings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd

from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.promql.parse import parse
from sloanalysis.promql.walk import longest_window_ms
from sloanalysis.rules.manager import RuleEvaluation, evaluate_rules
from sloanalysis.rules.model import AlertingRule, RecordingRule, RuleGroup
from sloanalysis.rules.scoring import (
    DEFAULT_SLI,
    AlertId,
    BudgetSLI,
    alert_identity,
    expects,
    incident_rows,
    score,
)
from sloanalysis.store import SeriesStore

__all__ = [
    "FALSE_POSITIVE",
    "NO_GROUND_TRUTH",
    "Backtest",
    "EvalSettings",
    "alert_identities",
    "alert_names",
    "backtest",
    "evaluation_span",
    "fetch_rule_inputs",
    "firing_rows",
    "grace_ms",
    "iso",
    "records",
    "window_warnings",
]

FALSE_POSITIVE = "FALSE POSITIVE"
"""The ``incident`` of a firing interval that overlaps no incident expecting its alert."""
NO_GROUND_TRUTH = "n/a"
"""The ``incident`` of every firing interval when there is no ground truth."""


@dataclass(frozen=True)
class EvalSettings:
    """How the rule manager evaluates: the interval of groups without one, the evaluation offset
    within it (milliseconds, or ``"hash"`` for a server's per-group offset) and whether range
    selectors have Prometheus 2.x semantics (closed on the left)."""

    interval_ms: int = 60_000
    eval_offset: int | Literal["hash"] = 0
    prometheus2: bool = False


@dataclass
class Backtest:
    """The outcome of :func:`backtest`.

    ``alerts`` is :attr:`RuleEvaluation.alerts` (one row per activation); ``scores`` one row per
    alert identity (columns ``alert`` and ``severity``) plus the ``(overall)`` row; ``pairs`` one
    row per (incident, alert it expects); ``firings`` one dict per firing interval (see
    :func:`firing_rows`). ``ground_truth``: False when scored without incidents (no incidents file
    and no run directory): precision, recall and false positives are then None ("n/a").
    ``evaluation`` is None once :meth:`detached` (it holds the samples, which a saved report must
    not carry).
    """

    groups: list[RuleGroup]
    alert_names: list[str]
    alert_ids: list[AlertId]
    evaluation: RuleEvaluation | None
    alerts: pd.DataFrame
    scores: pd.DataFrame
    pairs: pd.DataFrame
    firings: list[dict[str, Any]]
    start_ms: int
    end_ms: int
    interval_ms: int
    warnings: list[str] = field(default_factory=list)
    sli_name: str = DEFAULT_SLI.name
    ground_truth: bool = True
    path: str = ""
    """Where the rules came from (a file, or files joined by ``, ``), for display."""

    def detached(self) -> Backtest:
        """The same backtest without the evaluation (and so without any samples)."""
        return replace(self, evaluation=None)


def backtest(
    groups: Sequence[RuleGroup],
    store: SeriesStore,
    incidents: pd.DataFrame | None,
    start_ms: int,
    end_ms: int,
    *,
    settings: EvalSettings = EvalSettings(),
    sli: BudgetSLI | None = None,
    score_only: Sequence[str | AlertId] | None = None,
    path: str = "",
) -> Backtest:
    """Evaluate ``groups`` over ``[start_ms, end_ms]`` of ``store`` and score their alerts against
    ``incidents`` (as :func:`~sloanalysis.sources.rundir.load_incidents` returns them; None: no
    ground truth); ``sli`` measures the budget consumed before detection (default: availability
    99.9 % / 30 d). ``score_only``: keep and score only these alerts, by name (every severity) or
    ``(name, severity)`` (tuning one alert); ``path`` names the rules for display."""
    if settings.interval_ms <= 0:
        raise UserError("the evaluation interval must be positive")
    groups = list(groups)
    budget = DEFAULT_SLI if sli is None else sli
    warnings = window_warnings(groups, end_ms - start_ms)
    ev = evaluate_rules(
        groups,
        store,
        start_ms,
        end_ms,
        default_interval_ms=settings.interval_ms,
        eval_offset=settings.eval_offset,
        prometheus2=settings.prometheus2,
    )
    grace = grace_ms(groups, settings.interval_ms)
    ids = alert_identities(groups)
    alerts = ev.alerts
    if score_only is not None:
        wanted = [w if isinstance(w, tuple) else (w, None) for w in score_only]
        ids = [a for a in ids if expects(wanted, a)]
        alerts = _only(alerts, ids, alert_identities(groups))
    scores, pairs = score(
        alerts, incidents, start_ms, end_ms, grace_ms=grace, store=store, sli=budget, alert_ids=ids
    )
    return Backtest(
        groups=groups,
        alert_names=list(dict.fromkeys(n for n, _ in ids)),
        alert_ids=ids,
        evaluation=ev,
        alerts=alerts,
        scores=_frame(scores),
        pairs=_frame(pairs, ("incident", "kind", "alert", "severity", "detected")),
        firings=firing_rows(
            alerts, None if incidents is None else incident_rows(incidents), grace, end_ms, ids
        ),
        start_ms=start_ms,
        end_ms=end_ms,
        interval_ms=settings.interval_ms,
        warnings=[*warnings, *ev.warnings],
        sli_name=budget.name,
        ground_truth=incidents is not None,
        path=path,
    )


def _only(alerts: pd.DataFrame, ids: Sequence[AlertId], every: Sequence[AlertId]) -> pd.DataFrame:
    """The activations of ``alerts`` whose identity (among ``every`` identity of the rules) is
    one of ``ids``."""
    declared = _declared(every)
    keep = [
        alert_identity(str(r.alertname), dict(r.labels), declared) in set(ids)  # type: ignore[arg-type]
        for r in alerts.itertuples()
    ]
    return alerts[pd.Series(keep, index=alerts.index, dtype=bool)] if len(alerts) else alerts


def _declared(ids: Sequence[AlertId]) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for n, sev in ids:
        out.setdefault(n, []).append(sev)
    return out


def fetch_rule_inputs(
    url: str,
    groups: Sequence[RuleGroup],
    start_ms: int,
    end_ms: int,
    *,
    sli: BudgetSLI | None = None,
    lookback_ms: int = 300_000,
    timeout: float = 30.0,
) -> SeriesStore:
    """The raw samples the rules read over ``[start_ms, end_ms]`` (each group from its query
    offset earlier), fetched from the Prometheus at ``url``; with ``sli``, also what its error
    ratio reads over the span (the budget before detection). Series the rules themselves write
    (recorded metrics, ``ALERTS``, ``ALERTS_FOR_STATE``) are left out: the evaluation recomputes
    them, as a server evaluating these rules would."""
    from sloanalysis.sources.prometheus import fetch_expressions

    reads = [(r.expr, start_ms - g.query_offset_ms, end_ms) for g in groups for r in g.rules]
    if sli is not None:
        reads.append((sli.error_ratio_expr(end_ms - start_ms + lookback_ms), end_ms, end_ms))
    fetched = fetch_expressions(url, reads, lookback_ms=lookback_ms, timeout=timeout)
    produced = {r.record for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    produced |= {"ALERTS", "ALERTS_FOR_STATE"}
    store = SeriesStore()
    for s in fetched:
        if s.name not in produced:
            store.add(s.labels, s.timestamps, s.values)
    return store


def alert_names(groups: Sequence[RuleGroup]) -> list[str]:
    """The alert names of ``groups``, each once, in file order."""
    return list(dict.fromkeys(r.name for g in groups for r in g.rules if isinstance(r, AlertingRule)))


def alert_identities(groups: Sequence[RuleGroup]) -> list[AlertId]:
    """The ``(name, labels.severity or None)`` of every alerting rule of ``groups``, each once, in
    file order: the page and ticket rules of one name are two alerts."""
    return list(
        dict.fromkeys(
            (r.name, r.labels.get("severity")) for g in groups for r in g.rules if isinstance(r, AlertingRule)
        )
    )


def grace_ms(groups: Sequence[RuleGroup], default_interval_ms: int) -> dict[Any, int]:
    """``for + 2 * interval`` per alert identity ``(name, severity)`` and per name (the largest over
    the rules sharing it)."""
    out: dict[Any, int] = {}
    for g in groups:
        iv = g.interval_ms or default_interval_ms
        for r in g.rules:
            if isinstance(r, AlertingRule):
                grace = r.for_ms + 2 * iv
                for key in (r.name, (r.name, r.labels.get("severity"))):
                    out[key] = max(out.get(key, 0), grace)
    return out


def evaluation_span(store: SeriesStore, start: int | None, end: int | None, where: str) -> tuple[int, int]:
    """The span to evaluate: the data's, or the requested one, which must lie inside the data."""
    rng = store.time_range()
    if rng is None:
        raise UserError(f"{where}: no samples")
    lo, hi = rng
    s = lo if start is None else start
    e = hi if end is None else end
    if e <= s:
        raise UserError(f"--end must be after --start (got {s} .. {e} ms)")
    if s < lo or e > hi:
        raise UserError(
            f"requested range {iso(s)} .. {iso(e)} is longer than the data ({iso(lo)} .. {iso(hi)})"
        )
    return s, e


def window_warnings(groups: Sequence[RuleGroup], span_ms: int) -> list[str]:
    """One warning per rule that reads a window longer than the evaluated span."""
    out = []
    for g in groups:
        for r in g.rules:
            w = longest_window_ms(parse(r.expr))
            if w > span_ms:
                out.append(
                    f"rule {r.name!r} in group {g.name!r} reads a {format_duration_ms(w)} window, "
                    f"longer than the {format_duration_ms(span_ms)} of data evaluated"
                )
    return out


def _incident_for(
    ident: AlertId, firing_at: int, stop: int, incidents: list[dict[str, Any]], grace: dict[Any, int]
) -> str:
    """The first incident expecting the alert whose detection window the firing overlaps."""
    g = grace.get(ident, grace.get(ident[0], 0))
    for i in incidents:
        if expects(i["alerts"], ident) and firing_at <= i["end_ms"] + g and stop >= i["start_ms"]:
            return str(i["id"])
    return FALSE_POSITIVE


def firing_rows(
    alerts: pd.DataFrame,
    incidents: list[dict[str, Any]] | None,
    grace: dict[Any, int],
    end_ms: int,
    ids: Sequence[AlertId] | None = None,
) -> list[dict[str, Any]]:
    """One dict per alert that fired: ``alertname``, ``severity`` (of its rule), ``labels`` (all,
    with ``alertname``), ``annotations``, ``active_at_ms``, ``firing_at_ms``, ``resolved_at_ms``
    (None: still firing), ``duration_ms`` (to ``end_ms`` if still firing) and ``incident`` (an
    id, :data:`FALSE_POSITIVE`, or :data:`NO_GROUND_TRUTH` when ``incidents`` is None).
    ``incidents`` as :func:`~sloanalysis.rules.scoring.incident_rows`; ``ids`` the identities of
    the rules (:func:`alert_identities`), for the severity of each alert."""
    declared = _declared(ids or [])
    rows = []
    for r in alerts.itertuples():
        row: Any = r
        if row.firing_at_ms is None:
            continue
        ident = alert_identity(str(row.alertname), dict(row.labels), declared)
        stop = row.resolved_at_ms if row.resolved_at_ms is not None else end_ms
        rows.append(
            {
                "alertname": row.alertname,
                "severity": ident[1],
                "labels": dict(row.labels),
                "annotations": dict(row.annotations),
                "active_at_ms": row.active_at_ms,
                "firing_at_ms": row.firing_at_ms,
                "resolved_at_ms": row.resolved_at_ms,
                "duration_ms": stop - row.firing_at_ms,
                "incident": NO_GROUND_TRUTH
                if incidents is None
                else _incident_for(
                    ident,
                    row.firing_at_ms,
                    row.resolved_at_ms if row.resolved_at_ms is not None else row.firing_at_ms,
                    incidents,
                    grace,
                ),
            }
        )
    return rows


def _frame(rows: list[dict[str, Any]], columns: Sequence[str] = ()) -> pd.DataFrame:
    """Rows as a frame (with ``columns`` even when there are no rows); a column holding None stays
    an object column of the values as given (pandas would turn ``[60000, None]`` into
    ``[60000.0, nan]``)."""
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=list(columns))
    for col in frame.columns:
        raw = [r.get(col) for r in rows]
        if any(v is None for v in raw):
            frame[col] = pd.Series(raw, index=frame.index, dtype=object)
    return frame


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts with None where pandas holds NaN (as :func:`score` wrote them)."""
    out: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()} for row in out]


def iso(ms: Any) -> str:
    """A millisecond instant as ``YYYY-MM-DDTHH:MM:SSZ`` (``-`` for None or NaN)."""
    if ms is None or (isinstance(ms, float) and math.isnan(ms)):
        return "-"
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
