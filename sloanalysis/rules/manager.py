"""Prometheus rule-manager semantics over a time range, vectorised.

Prometheus (``rules/manager.go``, ``group.go``, ``alerting.go``, ``recording.go``) evaluates each
group every ``interval``, its rules in order, each as an instant query at the evaluation time
``ts`` (minus the group's ``query_offset``), and appends the results to storage before the next
rule runs. Here each rule's expression is evaluated **once**, as a range query over all of its
group's evaluation times, by the embedded engine; then:

- a **recording rule**'s result becomes series named ``record`` (rule labels override), written to
  the store with a stale marker at the first evaluation where a series is no longer returned;
- an **alerting rule** runs a small state machine per alert label set: inactive → pending (the
  first evaluation that returns it; ``activeAt``) → firing (the first evaluation with
  ``ts - activeAt >= for``) → resolved (the first evaluation that no longer returns it, or with
  ``keep_firing_for``, the first one at least that long after it stopped being returned; if it
  comes back before then it keeps firing). A pending alert that disappears is dropped. The rule
  writes ``ALERTS{alertname, alertstate="pending"|"firing", <labels>} 1`` and
  ``ALERTS_FOR_STATE{alertname, <labels>} <activeAt in seconds>`` at every evaluation where the
  alert is pending or firing, with stale markers when a series stops. Prometheus keeps a
  resolved alert in memory for 15 minutes only to re-send it to Alertmanager; it writes no
  ``ALERTS`` sample for it, so nothing here depends on that retention.

Rules read what earlier rules wrote: rules are evaluated in dependency order (a rule after every
rule producing a metric it selects, otherwise in file order), so recording outputs feed later rules
at the same evaluation time, as within a Prometheus group. This equals Prometheus because a rule's
output at ``ts`` depends only on its inputs up to ``ts``. Where Prometheus differs: a rule that
reads a metric recorded by a *later* rule of the same group sees that rule's previous evaluation
in Prometheus, and the current one here (reported in ``warnings``); rules of different groups
evaluated at the same instant see each other in an unspecified order in Prometheus. The cost is
linear in rules and groups: each expression text is parsed once per evaluation (the engine keeps
its trees), and the order comes from a map of each metric name to the rules writing it.

Evaluation times. A group with interval ``i`` evaluates at ``offset + k*i`` inside
``[start, end]``. ``eval_offset=0`` (default) aligns evaluations to multiples of the interval
since the epoch, which is what ``promtool test rules`` does from time 0. ``eval_offset="hash"``
reproduces a Prometheus server: ``offset = xxhash64(file, name) mod interval`` nanoseconds
(``Group.EvalTimestamp``), truncated to milliseconds; set :attr:`RuleGroup.source` to the rule
file path as the server sees it. An int is a fixed offset in ms. A backtest starts with no alert
state (a real server restores ``for`` state from ``ALERTS_FOR_STATE`` after a restart).

An evaluation that fails (two series with the same labels after relabelling, ``limit`` exceeded)
writes nothing and leaves the alert state unchanged, as in Prometheus.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sloanalysis._go import match_op, xxhash64
from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.promql.parse import parse
from sloanalysis.promql.walk import selectors
from sloanalysis.rules import templating
from sloanalysis.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup
from sloanalysis.store import METRIC_NAME, STALE_NAN, Labels, Matcher, SeriesStore, make_labels

__all__ = ["RuleEvaluation", "eval_times", "evaluate_rules", "group_offset_ms"]

ALERT_COLUMNS = (
    "alertname",
    "labels",
    "annotations",
    "active_at_ms",
    "firing_at_ms",
    "resolved_at_ms",
    "value_at_firing",
    "ended_at_ms",
    "group",
)

# -- evaluation times ------------------------------------------------------------------------


def group_offset_ms(group: RuleGroup, interval_ms: int) -> int:
    """Prometheus's evaluation offset of a group within its interval (``Group.EvalTimestamp``)."""
    key = b"file\xff" + group.source.encode() + b"\xffname\xff" + group.name.encode() + b"\xff"
    return (xxhash64(key) % (interval_ms * 1_000_000)) // 1_000_000


def eval_times(start_ms: int, end_ms: int, interval_ms: int, offset_ms: int = 0) -> np.ndarray:
    """``offset + k*interval`` inside ``[start, end]``."""
    first = start_ms + ((offset_ms - start_ms) % interval_ms)
    return np.arange(first, end_ms + 1, interval_ms, dtype=np.int64)


# -- dependencies ----------------------------------------------------------------------------


def _selector_reads(tree: Any) -> list[tuple[str, list[Matcher]]]:
    """What an expression's selectors read: (metric name, []) for a named selector, ("", its
    ``__name__`` matchers) for one without a name (no matcher: it reads every metric)."""
    out: list[tuple[str, list[Matcher]]] = []
    for vs in selectors(tree):
        if vs.name:
            out.append((vs.name, []))
        else:
            ms = [
                Matcher.of(m.name, match_op(m.op), m.value)
                for m in vs.matchers.matchers
                if m.name == METRIC_NAME
            ]
            out.append(("", ms))
    return out


def _outputs(rule: Rule) -> tuple[str, ...]:
    return (rule.record,) if isinstance(rule, RecordingRule) else ("ALERTS", "ALERTS_FOR_STATE")


def _dependencies(
    flat: Sequence[tuple[int, int, Rule]], reads: Sequence[list[tuple[str, list[Matcher]]]]
) -> list[list[int]]:
    """For each rule, the other rules producing a metric it selects (ascending): one lookup per
    named selector in a map of outputs, a match against each distinct output name otherwise."""
    producers: dict[str, list[int]] = {}
    for j, (_, _, rule) in enumerate(flat):
        for name in _outputs(rule):
            producers.setdefault(name, []).append(j)
    deps: list[list[int]] = []
    for i, selected in enumerate(reads):
        found: set[int] = set()
        for name, ms in selected:
            if name:
                found.update(producers.get(name, ()))
            else:
                for out, js in producers.items():
                    if all(m.matches(out) for m in ms):
                        found.update(js)
        found.discard(i)
        deps.append(sorted(found))
    return deps


def _order(
    flat: list[tuple[int, int, Rule]], parse_expr: Callable[[str], Any] = parse
) -> tuple[list[int], list[str]]:
    """Rule indices in dependency order (stable: the first rule in file order whose inputs are
    all done; a cycle is broken at its first rule in file order), and warnings.

    Each expression is parsed once (``parse_expr``, by text); the order is Kahn's algorithm over
    a heap, so the work is linear in rules and dependencies (times log n), not in pairs of rules.
    A rule whose expression does not parse reads nothing here (its evaluation reports the error).
    """
    reads: list[list[tuple[str, list[Matcher]]]] = []
    for _, _, rule in flat:
        try:
            reads.append(_selector_reads(parse_expr(rule.expr)))
        except PromQLError:
            reads.append([])
    deps = _dependencies(flat, reads)
    warnings: list[str] = []
    dependents: list[list[int]] = [[] for _ in flat]
    for i, (gi, ri, rule) in enumerate(flat):
        for j in deps[i]:
            dependents[j].append(i)
            gj, rj, other = flat[j]
            if gi == gj and rj > ri:
                warnings.append(
                    f"rule {rule.name!r} reads {other.name!r}, recorded later in the same group: "
                    "Prometheus sees its previous evaluation there, this evaluation sees the current one"
                )
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    done = [False] * len(flat)
    order: list[int] = []
    first_open = 0  # every rule before it is done
    while len(order) < len(flat):
        while ready and done[ready[0]]:
            heapq.heappop(ready)
        if ready:
            i = heapq.heappop(ready)
        else:  # a cycle: break it in file order
            while done[first_open]:
                first_open += 1
            i = first_open
            warnings.append(
                f"rule {flat[i][2].name!r} is part of a dependency cycle; evaluated in file order"
            )
        order.append(i)
        done[i] = True
        for k in dependents[i]:
            waiting[k] -= 1
            if waiting[k] == 0 and not done[k]:
                heapq.heappush(ready, k)
    return order, warnings


# -- results -----------------------------------------------------------------------------------


@dataclass
class _Activation:
    """One alert instance from activation to its end."""

    rule: AlertingRule
    group: str
    labels: dict[str, str]  # alert labels (alertname included)
    series_labels: dict[str, str]  # labels of the expression's series, for $labels
    times: np.ndarray  # evaluation times of the instance (while pending or firing)
    values: np.ndarray  # expression value at those times (last value while kept firing)
    active_at: int
    firing_at: int | None
    ended_at: int | None  # evaluation at which it was gone (resolved or dropped)


@dataclass
class RuleEvaluation:
    """What a rule evaluation produced; see the module docstring."""

    alerts: pd.DataFrame
    series: SeriesStore
    activations: list[_Activation]
    groups: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    external_labels: dict[str, str] = field(default_factory=dict)
    store: SeriesStore | None = None
    _by_alertname: dict[str, list[_Activation]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def eval_times(self, group_name: str) -> np.ndarray:
        if group_name not in self.groups:
            raise KeyError(group_name)
        return self.groups[group_name]

    def active_at(self, t_ms: int, alertname: str | None = None) -> list[dict[str, Any]]:
        """Alerts pending or firing as of the last evaluation at or before ``t_ms`` (only those
        named ``alertname`` if given: a unit test asks once per case, so by an index)."""
        if alertname is None:
            candidates = self.activations
        else:
            if self._by_alertname is None:
                self._by_alertname = {}
                for act in self.activations:
                    self._by_alertname.setdefault(act.labels.get("alertname", ""), []).append(act)
            candidates = self._by_alertname.get(alertname, [])
        out: list[dict[str, Any]] = []
        for a in candidates:
            if a.active_at > t_ms or (a.ended_at is not None and a.ended_at <= t_ms):
                continue
            k = int(np.searchsorted(a.times, t_ms, side="right")) - 1
            value = float(a.values[max(k, 0)])
            state = "firing" if a.firing_at is not None and a.firing_at <= t_ms else "pending"
            out.append(
                {
                    "labels": dict(a.labels),
                    "annotations": _annotations(a, value, self.external_labels, self.store, t_ms),
                    "state": state,
                    "value": value,
                    "active_at_ms": a.active_at,
                }
            )
        out.sort(key=lambda d: sorted(d["labels"].items()))
        return out

    def firing_intervals(self) -> pd.DataFrame:
        """One row per firing interval: alertname, labels, start_ms, end_ms (None: still firing)."""
        rows = [
            {
                "alertname": r.alertname,
                "labels": r.labels,
                "start_ms": r.firing_at_ms,
                "end_ms": r.resolved_at_ms,
            }
            for r in self.alerts.itertuples()
            if r.firing_at_ms is not None
        ]
        return pd.DataFrame(rows, columns=["alertname", "labels", "start_ms", "end_ms"])


def _query_fn(store: SeriesStore | None, t_ms: int) -> Any:
    if store is None:
        return None
    engine = Engine(store)

    def query(q: Any) -> list[templating.QuerySample]:
        try:
            res = engine.instant(str(q), t_ms)
        except PromQLError as exc:
            raise templating.TemplateError(f"error executing query: {exc}") from None
        if res.kind == "scalar":
            return [templating.QuerySample({}, float(res.values[0, 0]))]
        return [
            templating.QuerySample(dict(lab), float(res.values[i, 0])) for i, lab in enumerate(res.labels)
        ]

    return query


@functools.lru_cache(maxsize=4096)
def _template(text: str, rule_name: str) -> templating.Template:
    """A rule's label or annotation template, parsed once (expanded once per alert instance)."""
    return templating.parse(text, f"__alert_{rule_name}")


def _annotations(
    a: _Activation, value: float, external: Mapping[str, str], store: SeriesStore | None, t_ms: int
) -> dict[str, str]:
    out = {}
    for key, text in a.rule.annotations.items():
        tmpl = _template(text, a.rule.name)
        q = _query_fn(store, t_ms) if "query" in text else None
        out[key] = templating.expand_alert_template(
            tmpl, a.series_labels, value, external_labels=external, query=q
        )
    return out


# -- evaluation --------------------------------------------------------------------------------


# Evaluations of one group over a range (30 days every 2 s; Prometheus's default is every 1 m).
MAX_EVALUATIONS = 1_300_000


def evaluate_rules(
    groups: Sequence[RuleGroup],
    store: SeriesStore,
    start_ms: int,
    end_ms: int,
    *,
    default_interval_ms: int = 60_000,
    prometheus2: bool = False,
    external_labels: Mapping[str, str] | None = None,
    eval_offset: int | str = 0,
    lookback_ms: int = 300_000,
) -> RuleEvaluation:
    """Evaluate rule groups over ``[start_ms, end_ms]`` against ``store`` (left untouched).

    Long because it is the rule manager's loop: group schedules, then each rule in dependency
    order with its outputs written back (recorded floats and histograms, alert series)."""
    if end_ms < start_ms:
        raise UserError("evaluation end is before its start")
    if default_interval_ms <= 0:
        raise UserError("the evaluation interval must be positive")
    ext = dict(external_labels or {})
    work = SeriesStore(iter(store))
    out = SeriesStore()
    engine = Engine(work, lookback_ms=lookback_ms, prometheus2=prometheus2)
    times: dict[str, np.ndarray] = {}
    group_times: list[np.ndarray] = []
    for g in groups:
        interval = g.interval_ms or default_interval_ms
        if eval_offset == "hash":
            off = group_offset_ms(g, interval)
        elif isinstance(eval_offset, int):
            off = eval_offset
        else:
            raise ValueError(f"eval_offset must be an int or 'hash', got {eval_offset!r}")
        steps = (end_ms - start_ms) // interval + 1
        if steps > MAX_EVALUATIONS:
            raise UserError(
                f"group {g.name!r}: {steps:,} evaluations at a {format_duration_ms(interval)} interval, more "
                f"than the limit of {MAX_EVALUATIONS:,}: raise --interval or shorten the range"
            )
        ts = eval_times(start_ms, end_ms, interval, off)
        times[g.name] = ts
        group_times.append(ts)
    flat = [(gi, ri, r) for gi, g in enumerate(groups) for ri, r in enumerate(g.rules)]
    order, warnings = _order(flat, engine.parse)
    activations: list[_Activation] = []
    for i in order:
        gi, ri, rule = flat[i]
        g = groups[gi]
        ts = group_times[gi]
        if ts.size == 0:
            continue
        where = f"group {g.name!r}, rule {ri + 1} ({rule.name})"
        try:
            res = engine.range(
                rule.expr,
                int(ts[0]) - g.query_offset_ms,
                int(ts[-1]) - g.query_offset_ms,
                g.interval_ms or default_interval_ms,
            )
        except PromQLError as exc:
            warnings.append(f"{where}: evaluation failed: {exc}")
            continue
        sample_ts = ts - g.query_offset_ms
        if isinstance(rule, RecordingRule):
            series, fail = _recording_output(
                rule, res.labels, res.values, res.present, g.limit, res.histograms
            )
            if fail.any():
                warnings.append(
                    f"{where}: {int(fail.sum())} evaluation(s) failed (duplicate labelsets or limit)"
                )
            for labels, vals, pres, hists in series:
                _write(labels, sample_ts, vals, pres, ~fail, [work, out], hists)
        else:
            acts, fail = _alerts(rule, g.name, res.labels, res.values, res.present, ts, ext, g.limit)
            if fail.any():
                warnings.append(
                    f"{where}: {int(fail.sum())} evaluation(s) failed (duplicate labelsets or limit)"
                )
            activations.extend(acts)
            _write_alerts(acts, ts, sample_ts, ~fail, [work, out])
    activations.sort(key=lambda a: (a.active_at, a.labels.get("alertname", ""), sorted(a.labels.items())))
    alerts = _alerts_frame(activations, ext, work)
    return RuleEvaluation(alerts, out, activations, times, warnings, ext, work)


def _recording_output(
    rule: RecordingRule,
    labels: list[Labels],
    values: np.ndarray,
    present: np.ndarray,
    limit: int,
    histograms: np.ndarray | None = None,
) -> tuple[list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray | None]], np.ndarray]:
    """Output series of a recording rule: (labels, values, present, native histograms or None)."""
    keys: dict[Labels, list[int]] = {}
    for i, lab in enumerate(labels):
        d = dict(lab)
        d[METRIC_NAME] = rule.record
        d.update(rule.labels)
        keys.setdefault(make_labels(d), []).append(i)
    T = present.shape[1] if present.ndim == 2 else 0
    fail = np.zeros(T, dtype=bool)
    if limit and present.size:
        fail |= present.sum(axis=0) > limit
    merged: list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray | None]] = []
    for key, rows in keys.items():
        pres = present[rows]
        if len(rows) > 1:
            fail |= pres.sum(axis=0) > 1
        vals = np.where(pres, values[rows], 0.0).sum(axis=0) if len(rows) > 1 else values[rows[0]]
        hists = None
        if histograms is not None:
            hists = histograms[rows[0]].copy()
            for r in rows[1:]:  # at most one row is present where the evaluation succeeds
                hists = np.where(present[r], histograms[r], hists)
            if all(h is None for h in hists.tolist()):
                hists = None
        merged.append((key, np.asarray(vals), np.asarray(pres.any(axis=0)), hists))
    return merged, fail


def _write(
    labels: Labels | Mapping[str, str],
    ts: np.ndarray,
    vals: np.ndarray,
    present: np.ndarray,
    ok: np.ndarray,
    stores: list[SeriesStore],
    hists: np.ndarray | None = None,
) -> None:
    """Samples where present at successful evaluations, plus stale markers where a series stopped.
    ``hists`` (object array aligned with ``vals``) carries native-histogram samples."""
    idx = np.flatnonzero(ok)
    p = present[idx]
    stale_at = idx[1:][p[:-1] & ~p[1:]]
    keep = idx[p]
    all_ts = np.concatenate([ts[keep], ts[stale_at]])
    all_vs = np.concatenate([vals[keep], np.full(stale_at.size, STALE_NAN)])
    if all_ts.size == 0:
        return
    order = np.argsort(all_ts, kind="stable")
    all_hs = None
    if hists is not None:
        all_hs = np.concatenate([hists[keep], np.full(stale_at.size, None, dtype=object)])[order]
    for s in stores:
        s.add(labels, all_ts[order], all_vs[order], all_hs)


def _label_templates(rule: AlertingRule) -> list[tuple[str, templating.Template]]:
    return [(k, _template(v, rule.name)) for k, v in rule.labels.items()]


def _alert_labels(
    rule: AlertingRule,
    series: Mapping[str, str],
    value: float,
    tmpls: list[tuple[str, templating.Template]],
    ext: Mapping[str, str],
) -> Labels:
    d = {k: v for k, v in series.items() if k != METRIC_NAME}
    for k, t in tmpls:
        d[k] = templating.expand_alert_template(t, series, value, external_labels=ext)
    d["alertname"] = rule.name
    return make_labels(d)


def _alerts(
    rule: AlertingRule,
    group: str,
    labels: list[Labels],
    values: np.ndarray,
    present: np.ndarray,
    ts: np.ndarray,
    ext: Mapping[str, str],
    limit: int,
) -> tuple[list[_Activation], np.ndarray]:
    T = ts.size
    tmpls = _label_templates(rule)
    dynamic = any(t.uses_value for _, t in tmpls)
    # key -> (rows per time): static keys map whole rows; dynamic keys are per (row, time)
    masks: dict[Labels, np.ndarray] = {}
    vals: dict[Labels, np.ndarray] = {}
    origin: dict[Labels, dict[str, str]] = {}
    count = np.zeros(T, dtype=np.int64)
    for i, lab in enumerate(labels):
        series = dict(lab)
        if not dynamic:
            key = _alert_labels(rule, series, math.nan, tmpls, ext)
            cols = [(key, present[i])]
        else:
            per: dict[Labels, np.ndarray] = {}
            for t in np.flatnonzero(present[i]):
                k = _alert_labels(rule, series, float(values[i, t]), tmpls, ext)
                per.setdefault(k, np.zeros(T, dtype=bool))[t] = True
            cols = list(per.items())
        for key, m in cols:
            if key in masks:
                count += masks[key] & m
                vals[key] = np.where(m, values[i], vals[key])
                masks[key] = masks[key] | m
            else:
                masks[key] = m.copy()
                vals[key] = np.where(m, values[i], np.nan)
                origin[key] = series
    fail = count > 0  # two series with one labelset: the evaluation errors out
    if limit:
        total = np.zeros(T, dtype=np.int64)
        for m in masks.values():
            total += m
        fail |= total > limit
    ok = np.flatnonzero(~fail)
    cts = ts[ok]
    acts: list[_Activation] = []
    for key, m in masks.items():
        p = m[ok]
        if not p.any():
            continue
        v = vals[key][ok]
        for s, f_at, end, ended in _state_machine(cts, p, rule.for_ms, rule.keep_firing_for_ms):
            tv = v[s:end].copy()
            # while kept firing the value is the last one seen
            last = np.maximum.accumulate(np.where(p[s:end], np.arange(end - s), 0))
            tv = tv[last]
            acts.append(
                _Activation(
                    rule,
                    group,
                    dict(key),
                    origin[key],
                    cts[s:end],
                    tv,
                    int(cts[s]),
                    None if f_at is None else int(cts[f_at]),
                    None if ended is None else int(cts[ended]),
                )
            )
    return acts, fail


def _runs(p: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index pairs of True runs."""
    d = np.diff(np.concatenate([[0], p.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), (np.flatnonzero(d == -1) - 1).tolist(), strict=True))


def _state_machine(
    ts: np.ndarray, p: np.ndarray, for_ms: int, keep_ms: int
) -> list[tuple[int, int | None, int, int | None]]:
    """Activations as (start, firing index or None, end (exclusive), index where it was gone or None)."""
    n = ts.size
    runs = _runs(p)
    out: list[tuple[int, int | None, int, int | None]] = []
    i = 0
    while i < len(runs):
        s, e = runs[i]
        j = int(np.searchsorted(ts, ts[s] + for_ms, side="left"))
        if j > e:  # never fired: dropped when it disappears
            out.append((s, None, e + 1, e + 1 if e + 1 < n else None))
            i += 1
            continue
        end = e
        while keep_ms > 0 and end + 1 < n:
            gone = int(ts[end + 1])
            k = int(np.searchsorted(ts, gone + keep_ms, side="left"))
            if i + 1 < len(runs) and runs[i + 1][0] <= k:
                i += 1
                end = runs[i][1]
                continue
            out.append((s, j, min(k, n), k if k < n else None))
            break
        else:
            out.append((s, j, end + 1, end + 1 if end + 1 < n else None))
        i += 1
    return out


def _write_alerts(
    acts: list[_Activation], ts: np.ndarray, sample_ts: np.ndarray, ok: np.ndarray, stores: list[SeriesStore]
) -> None:
    """``ALERTS`` and ``ALERTS_FOR_STATE`` samples and stale markers of a rule's activations."""
    T = ts.size
    series: dict[Labels, tuple[np.ndarray, np.ndarray]] = {}

    def mark(labels: dict[str, str], at: np.ndarray, value: np.ndarray) -> None:
        key = make_labels(labels)
        pres, vals = series.setdefault(key, (np.zeros(T, dtype=bool), np.zeros(T)))
        pres[at] = True
        vals[at] = value

    for a in acts:
        pos = np.searchsorted(ts, a.times)  # an activation's times are evaluation times
        firing = a.times >= a.firing_at if a.firing_at is not None else np.zeros(a.times.size, dtype=bool)
        mark(
            {**a.labels, METRIC_NAME: "ALERTS", "alertstate": "pending"},
            pos[~firing],
            np.ones(int((~firing).sum())),
        )
        mark(
            {**a.labels, METRIC_NAME: "ALERTS", "alertstate": "firing"},
            pos[firing],
            np.ones(int(firing.sum())),
        )
        mark(
            {**a.labels, METRIC_NAME: "ALERTS_FOR_STATE"}, pos, np.full(pos.size, float(a.active_at // 1000))
        )
    for key, (pres, vals) in series.items():
        _write(key, sample_ts, vals, pres, ok, stores)


def _alerts_frame(acts: list[_Activation], ext: Mapping[str, str], store: SeriesStore) -> pd.DataFrame:
    rows = []
    for a in acts:
        at = a.firing_at if a.firing_at is not None else a.active_at
        k = int(np.searchsorted(a.times, at))
        value = float(a.values[min(k, a.values.size - 1)])
        rows.append(
            {
                "alertname": a.rule.name,
                "labels": dict(a.labels),
                "annotations": _annotations(a, value, ext, store, at),
                "active_at_ms": a.active_at,
                "firing_at_ms": a.firing_at,
                "resolved_at_ms": a.ended_at if a.firing_at is not None else None,
                "value_at_firing": value if a.firing_at is not None else None,
                "ended_at_ms": a.ended_at,
                "group": a.group,
            }
        )
    if not rows:
        return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
    # Built by column: the optional ones as object columns holding None (see _optional_column),
    # a few times cheaper than converting them in the frame (the tuning sweep builds hundreds).
    columns: dict[str, Any] = {c: [r[c] for r in rows] for c in ALERT_COLUMNS}
    for col in ("firing_at_ms", "resolved_at_ms", "ended_at_ms", "value_at_firing"):
        columns[col] = _optional_column(columns[col])
    return pd.DataFrame(columns, columns=list(ALERT_COLUMNS))


def _optional_column(values: list[Any]) -> np.ndarray:
    """``values`` as pandas infers their column and ``.astype(object).where(notna, None)`` leaves it:
    ints stay ints when none is missing, any missing value (None, NaN) turns the others into floats,
    missing ones are None."""
    missing = [v is None or v != v for v in values]
    out = np.empty(len(values), dtype=object)
    if not any(missing) and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        out[:] = values
    else:
        out[:] = [None if m else float(v) for v, m in zip(values, missing, strict=True)]
    return out
