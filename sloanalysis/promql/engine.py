"""The evaluator: walks the AST once, every node producing values for all query steps.

Prometheus evaluates a range query step by step; here each node computes its whole (n, T)
result with numpy, then the parent combines them. Semantics follow Prometheus 3.x: 5-minute
lookback, stale markers end series, left-open range windows, metric-name removal at once
(or, as an option, delayed to the end).
Native-histogram samples ride along in an object array (``Vec.hist``) that stays None for float
data, so float queries take exactly the numpy paths they took before; ``nativefuncs`` handles
the series and cells that hold histograms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Any

import numpy as np
import promql_parser as pp

from sloanalysis._go import format_float
from sloanalysis.durations import format_duration_ms
from sloanalysis.nativehist import FloatHistogram
from sloanalysis.promql import aggregate as agg
from sloanalysis.promql import binary, densehist, functions, histogram, nativefuncs, rangebatch
from sloanalysis.promql.densehist import DenseRow
from sloanalysis.promql.parse import (
    PromQLError,
    at_modifiers,
    check_regex_utf8,
    dialect_for,
    go_string_literals,
    has_fill_modifier,
    node_offset,
    parse,
    position,
)
from sloanalysis.promql.rangefuncs import EXTRAPOLATED, RANGE_FUNCTIONS, Window
from sloanalysis.promql.result import QueryResult
from sloanalysis.promql.selectors import instant_lookup, matcher_groups, select, without_stale
from sloanalysis.promql.values import (
    Annotations,
    RangeVec,
    Scalar,
    String,
    Value,
    Vec,
    check_unique_series,
    drop_name,
    get_label,
    hist_cells,
    is_histogram,
    merge_same_labels,
    remove_marked_names,
)
from sloanalysis.promql.walk import duration_ms
from sloanalysis.store import METRIC_NAME, Labels, Series, SeriesStore, is_stale

DEFAULT_SUBQUERY_STEP_MS = 60_000
# Inner steps one subquery may evaluate (a day at 1 s is 86,400; [30d:1ms] would be 2.6 billion).
MAX_SUBQUERY_STEPS = 5_000_000
_MAX_CACHED_TREES = 100_000  # distinct expression texts one engine keeps parsed
_KEEP_NAME_RANGE = ("last_over_time", "first_over_time")
# The histogram functions Prometheus feeds from its stats iterator (no buckets decoded).
_STATS_FUNCTIONS = ("histogram_count", "histogram_sum", "histogram_avg")
# How the stats-iterator path (``_Evaluator._hints``) changes below a node: "off" (no stats
# function above), "stats" (one above, hints not needed yet), "sensitive" (and a sum or average of
# stored samples between: hints applied), "blocked" (a subquery or a bucket-reading function).
_HINT_STEPS: dict[str, dict[str, str]] = {
    "binary": {"stats": "off", "sensitive": "off", "blocked": "off"},
    "stats": {"off": "stats"},
    "buckets": {"off": "blocked", "stats": "blocked", "sensitive": "blocked"},
    "sum": {"stats": "sensitive"},
    "range": {"stats": "off", "sensitive": "off"},  # rate() and the like detect resets themselves
    "through": {},  # last_over_time / first_over_time hand the samples on
}
_HISTOGRAM_ONLY = (
    "histogram_avg",
    "histogram_count",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
)
# Aggregations that skip histogram samples, with an info annotation.
_IGNORE_HISTOGRAMS = frozenset({"min", "max", "stddev", "stdvar", "quantile", "topk", "bottomk"})
# Functions whose only effect is the order of an instant query's result (a warning in a range query).
_SORT_FUNCTIONS = frozenset({"sort", "sort_desc", "sort_by_label", "sort_by_label_desc"})
# Parser enums are not hashable; key on their stable str().
_CARD = {
    "VectorMatchCardinality.OneToOne": "one-to-one",
    "VectorMatchCardinality.ManyToOne": "many-to-one",
    "VectorMatchCardinality.OneToMany": "one-to-many",
    "VectorMatchCardinality.ManyToMany": "many-to-many",
}


@dataclass
class _Context:
    """Per-query state shared by the evaluators of the query and its subqueries."""

    store: SeriesStore
    text: str
    lookback_ms: int
    prometheus2: bool
    start: int
    end: int
    step: int
    at: dict[int, int | str]
    bad_strings: dict[str, str]
    # String literals whose byte escapes the parser misreads: its value -> Go's string.
    go_strings: dict[str, str] = field(default_factory=dict)
    annots: Annotations = field(default_factory=Annotations)
    selections: dict[str, list[Any]] = field(default_factory=dict)
    # Delayed name removal: mark rows (``Vec.drop``) and drop ``__name__`` at the end.
    delayed_names: bool = False

    def pos(self, node: Any) -> str:
        """Position of a node, as Prometheus appends it to annotations (best effort)."""
        return position(self.text, max(node_offset(self.text, str(node)), 0))


def _unwrap(node: Any) -> Any:
    while isinstance(node, pp.ParenExpr):
        node = node.expr
    return node


class _Evaluator:
    def __init__(self, ctx: _Context, steps: np.ndarray, *, in_subquery: bool = False) -> None:
        self.ctx = ctx
        self.steps = steps
        self.n = steps.size
        # Prometheus reads the selectors under histogram_count/sum/avg with its
        # HistogramStatsIterator, which gives every sample of unknown counter-reset hint a
        # detected one (see _stats_hints). It does not where a subquery, a function that needs the
        # buckets, or (upwards) a binary operator stands between. ``_hints`` is where the
        # evaluation stands on that path (see _HINT_STEPS); the detected hints are applied only
        # where they can change the answer: samples summed or averaged as they are stored
        # (conflicting resets warn). rate() and the like detect the same resets themselves.
        self._in_subquery = in_subquery
        self._hints = "off"

    # -- dispatch ---------------------------------------------------------------------
    def eval(self, node: Any) -> Value:
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(self.n, float(node.val)))
        if isinstance(node, pp.StringLiteral):
            return String(self.ctx.go_strings.get(node.val, node.val))
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr)
        if isinstance(node, pp.UnaryExpr):
            return self._negate(self.eval(node.expr))
        if isinstance(node, pp.VectorSelector):
            return self._vector_selector(node)
        if isinstance(node, pp.MatrixSelector):
            return self._matrix_selector(node)
        if isinstance(node, pp.SubqueryExpr):
            return self._subquery(node)
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            with self._hint_path("binary"):
                return self._binary(node)
        raise PromQLError(f"unsupported expression: {node}")

    def vector(self, node: Any) -> Vec:
        v = self.eval(node)
        if not isinstance(v, Vec):
            raise PromQLError(f"expected instant vector, got {type(v).__name__.lower()}: {node}")
        return v

    def scalar(self, node: Any) -> np.ndarray:
        v = self.eval(node)
        if not isinstance(v, Scalar):
            raise PromQLError(f"expected scalar, got {type(v).__name__.lower()}: {node}")
        return v.values

    # -- time helpers -----------------------------------------------------------------
    def _eval_times(self, node: Any, target: Any) -> np.ndarray:
        """Times at which a selector/subquery looks: step times or its ``@``, minus offset."""
        at = self.ctx.at.get(id(node))
        off = duration_ms(target.offset)
        if at is None:
            return self.steps - off
        when = self.ctx.start if at == "start" else self.ctx.end if at == "end" else int(at)
        return np.full(self.n, when - off, dtype=np.int64)

    def _selected(self, vs: Any) -> list[Any]:
        stats = self._hints == "sensitive" and not self._in_subquery
        key = str(vs.matchers) + "|" + (vs.name or "") + ("|stats" if stats else "")
        hit = self.ctx.selections.get(key)
        if hit is None:
            hit = select(self.ctx.store, vs, prometheus2=self.ctx.prometheus2, decoded=self.ctx.go_strings)
            if stats:
                hit = [_stats_hints(s) for s in hit]
            self.ctx.selections[key] = hit
        return hit

    # -- leaves -----------------------------------------------------------------------
    def _vector_selector(self, node: Any, want_ts: bool = False) -> Vec:
        times = self._eval_times(node, node)
        series = self._selected(node)
        # Preallocate: stacking lists of long rows would copy every value twice.
        vals = np.empty((len(series), self.n))
        pres = np.empty((len(series), self.n), dtype=bool)
        sts = np.empty((len(series), self.n), dtype=np.int64) if want_ts else None
        hist: np.ndarray | None = None
        for i, s in enumerate(series):
            v, p, st = instant_lookup(
                s.timestamps, s.values, times, self.ctx.lookback_ms, self.ctx.prometheus2
            )
            vals[i], pres[i] = v, p
            if sts is not None:
                sts[i] = st
            if s.histograms is not None and s.timestamps.size:
                hist = hist_cells(vals.shape) if hist is None else hist
                idx = np.clip(np.searchsorted(s.timestamps, st), 0, s.timestamps.size - 1)
                hist[i] = np.where(p, s.histograms[idx], None)
        vec = Vec([s.labels for s in series], vals, pres, sts, hist)
        return vec.take(np.flatnonzero(pres.any(axis=1)))

    def _matrix_selector(self, node: Any) -> RangeVec:
        vs = node.vector_selector
        end = self._eval_times(node, vs)
        rng = duration_ms(node.range)
        labels, tss, vals = [], [], []
        hists: list[np.ndarray | None] = []
        dense_sources: list[Callable[[], DenseRow | None] | None] = []
        for s in self._selected(vs):
            if s.histograms is None:
                ts, v = without_stale(s)
                hists.append(None)
                dense_sources.append(None)
            else:
                keep = ~is_stale(s.values)
                ts, v = s.timestamps[keep], s.values[keep]
                hists.append(s.histograms[keep])
                dense_sources.append(densehist.cached(s.histograms, keep))
            labels.append(s.labels)
            tss.append(ts)
            vals.append(v)
        any_hist = any(h is not None for h in hists)
        return RangeVec(
            labels, tss, vals, end - rng, end, rng, self.ctx.prometheus2, source=node,
            histograms=hists if any_hist else None, dense_sources=dense_sources if any_hist else None,
        )  # fmt: skip

    def _subquery(self, node: Any) -> RangeVec:
        end = self._eval_times(node, node)
        rng = duration_ms(node.range)
        step = duration_ms(node.step) or DEFAULT_SUBQUERY_STEP_MS
        start = end - rng
        if end.size == 0:  # an enclosing subquery has no steps: nothing to evaluate
            return RangeVec([], [], [], start, end, rng, self.ctx.prometheus2, source=node)
        # Inner steps are absolute multiples of the step, first one after the earliest start.
        first = (int(start.min()) // step) * step
        if first <= int(start.min()):
            first += step
        steps = (int(end.max()) - first) // step + 1
        if steps > MAX_SUBQUERY_STEPS:
            raise PromQLError(
                f"subquery {format_duration_ms(rng)}:{format_duration_ms(step)} needs {steps:,} inner steps, "
                f"more than the limit of {MAX_SUBQUERY_STEPS:,}: use a coarser resolution"
            )
        grid = np.arange(first, int(end.max()) + 1, step, dtype=np.int64)
        if grid.size == 0:  # range shorter than the step: no inner step, as in Prometheus no samples
            return RangeVec([], [], [], start, end, rng, self.ctx.prometheus2, source=node)
        inner = _Evaluator(self.ctx, grid, in_subquery=True)
        value = inner.eval(node.expr)
        if isinstance(value, Scalar):
            value = Vec([()], value.values[None, :], np.ones((1, grid.size), dtype=bool))
        if not isinstance(value, Vec):
            raise PromQLError("subquery is only allowed on instant vector")
        labels, tss, vals = [], [], []
        hists: list[np.ndarray | None] = []
        marks: list[bool] = []
        for i, lab in enumerate(value.labels):
            mask = value.present[i]
            if mask.any():
                marks.append(value.drop is not None and bool(value.drop[i]))
                labels.append(lab)
                tss.append(grid[mask])
                vals.append(value.values[i][mask])
                row = None if value.hist is None else value.hist[i][mask]
                hists.append(row if row is not None and is_histogram(row).any() else None)
        any_hist = any(h is not None for h in hists)
        # Only a query's own result reads the marks: like Prometheus, a range function over the
        # subquery decides the name afresh.
        return RangeVec(
            labels, tss, vals, start, end, rng, self.ctx.prometheus2, source=node,
            histograms=hists if any_hist else None, drop=np.array(marks, dtype=bool) if any(marks) else None,
        )  # fmt: skip

    def _negate(self, v: Value) -> Value:
        if isinstance(v, Scalar):
            return Scalar(-v.values)
        if isinstance(v, Vec):
            hist = None if v.hist is None else nativefuncs.scale_cells(v.hist, -1.0)
            return self._names_dropped(
                v, Vec([drop_name(lab) for lab in v.labels], -v.values, v.present, hist=hist)
            )
        raise PromQLError("unary expression only allowed on expressions of type scalar or instant vector")

    def _names_dropped(self, src: Vec, out: Vec) -> Vec:
        """``out`` holds ``src``'s rows with ``__name__`` dropped: rows that now share labels merge,
        or, with delayed name removal, the rows keep their names and are marked instead."""
        if not self.ctx.delayed_names:
            return merge_same_labels(out)
        return dataclass_replace(out, labels=src.labels, drop=np.ones(len(src.labels), dtype=bool))

    def _without_mixed_histograms(self, v: Vec, pos: str) -> Vec:
        """Where a native histogram and classic buckets share a label set (``le`` aside) at a
        step, Prometheus evaluates neither and warns; the other points are left as they are."""
        if v.hist is None:
            return v
        native = v.hist_mask()
        classic = v.present & ~native
        buckets: dict[Labels, list[int]] = {}
        for i, lab in enumerate(v.labels):
            if classic[i].any() and any(k == "le" for k, _ in lab):
                buckets.setdefault(tuple(kv for kv in lab if kv[0] != "le"), []).append(i)
        present = v.present
        for i, lab in enumerate(v.labels):
            rows = buckets.get(lab)
            if rows is None or not native[i].any():
                continue
            clash = native[i] & classic[rows].any(axis=0)
            if clash.any():
                present = present.copy() if present is v.present else present
                present[i] &= ~clash
                present[rows] &= ~clash
                name = dict(lab).get(METRIC_NAME, "")
                self.ctx.annots.warn(
                    "PromQL warning: vector contains a mix of classic and native histograms "
                    f'for metric name "{name}" ({pos})'
                )
        return v if present is v.present else dataclass_replace(v, present=present, dense=None)

    def _histogram_arg(self, name: str, arg: Any) -> Vec:
        """The argument of a histogram_* function, read as Prometheus reads it: count, sum and
        avg need no buckets (the stats iterator); stddev and stdvar do, as do the selectors below."""
        with self._hint_path("stats" if name in _STATS_FUNCTIONS else "buckets"):
            return self.vector(arg)

    @contextmanager
    def _hint_path(self, step: str) -> Iterator[None]:
        """Evaluate below a node of kind ``step`` on the stats-iterator path (see ``_hints``)."""
        saved = self._hints
        self._hints = _HINT_STEPS[step].get(saved, saved)
        try:
            yield
        finally:
            self._hints = saved

    def _marked_names_dropped(self, out: Vec) -> Vec:
        """``out``'s marked rows lose ``__name__`` now, or at the end with delayed name removal."""
        return out if self.ctx.delayed_names else remove_marked_names(out)

    # -- functions --------------------------------------------------------------------
    def _call(self, node: Any) -> Value:
        name = node.func.name
        args = [_unwrap(a) for a in node.args]
        if name in _SORT_FUNCTIONS and (self.n > 1 or self.ctx.start != self.ctx.end):
            self.ctx.annots.warn(
                "PromQL warning: sort is ineffective for range queries since results are always "
                f"ordered by labels ({self.ctx.pos(node)})"
            )
        if name in RANGE_FUNCTIONS or name in EXTRAPOLATED:
            return self._range_function(name, args)
        if name == "absent_over_time":
            return self._absent_over_time(args[0])
        simple = self._scalar_function(name, args)
        if simple is not None:
            return simple
        if name in functions.MATH:
            v = self.vector(args[0]).floats_only()
            return self._names_dropped(v, functions.apply_math(name, v))
        if name in functions.DATE_FUNCTIONS:
            if not args:
                return Vec(
                    [()], functions.date_part(name, self.steps / 1000.0)[None, :], np.ones((1, self.n), bool)
                )
            v = self.vector(args[0]).floats_only()
            vals = functions.date_part(name, v.values)
            return self._names_dropped(v, Vec([drop_name(lab) for lab in v.labels], vals, v.present))
        return self._vector_function(name, args)

    def _scalar_function(self, name: str, args: list[Any]) -> Value | None:
        ctx = self.ctx
        if name == "time":
            return Scalar(self.steps / 1000.0)
        if name == "pi":
            return Scalar(np.full(self.n, np.pi))
        if name == "start":
            return Scalar(np.full(self.n, ctx.start / 1000.0))
        if name == "end":
            return Scalar(np.full(self.n, ctx.end / 1000.0))
        if name == "step":
            return Scalar(np.full(self.n, ctx.step / 1000.0))
        if name == "range":
            return Scalar(np.full(self.n, (ctx.end - ctx.start) / 1000.0))
        if name in ("min_of", "max_of"):
            a, b = self.scalar(args[0]), self.scalar(args[1])
            return Scalar(np.minimum(a, b) if name == "min_of" else np.maximum(a, b))
        if name == "scalar":
            v = self.vector(args[0]).floats_only()
            one = v.present.sum(axis=0) == 1
            picked = np.where(v.present, v.values, 0.0).sum(axis=0) if v.labels else np.zeros(self.n)
            return Scalar(np.where(one, picked, np.nan))
        if name == "vector":
            return Vec([()], self.scalar(args[0])[None, :].copy(), np.ones((1, self.n), dtype=bool))
        return None

    def _vector_function(self, name: str, args: list[Any]) -> Value:
        if name in ("label_replace", "label_join"):
            # Label names given as invalid UTF-8 bytes (dst of both, sources of label_join).
            names = [args[1]] + (args[4:] if name == "label_join" else [])
            for a in names:
                text = self._string(a)
                if text in self.ctx.bad_strings:
                    kind = "destination" if a is args[1] else "source"
                    raise PromQLError(f"invalid {kind} label name in {name}(): {text}")
        if name == "label_replace":
            strs = [self._string(a) for a in args[1:]]
            replaced = functions.label_replace(self.vector(args[0]), *strs, prometheus2=self.ctx.prometheus2)
            return merge_same_labels(replaced)
        if name == "label_join":
            strs = [self._string(a) for a in args[1:]]
            return merge_same_labels(functions.label_join(self.vector(args[0]), strs[0], strs[1], strs[2:]))
        if name == "absent":
            v = self.vector(args[0])
            missing = np.asarray(~v.present.any(axis=0)) if v.labels else np.ones(self.n, dtype=bool)
            labels = self._absent_labels(args[0])
            return Vec([labels], np.ones((1, self.n)), missing[None, :])
        if name == "timestamp":
            # A direct selector reports its samples' own timestamps, not the step times.
            direct = isinstance(args[0], pp.VectorSelector)
            v = self._vector_selector(args[0], want_ts=True) if direct else self.vector(args[0])
            if direct and v.sample_ts is not None:
                vals = v.sample_ts / 1000.0
            else:
                vals = np.broadcast_to(self.steps / 1000.0, v.values.shape).copy()
            return self._names_dropped(v, Vec([drop_name(lab) for lab in v.labels], vals, v.present))
        if name == "round":
            nearest = self.scalar(args[1]) if len(args) > 1 else np.ones(self.n)
            v = self.vector(args[0]).floats_only()
            return self._names_dropped(v, functions.round_to(v, nearest))
        if name in ("clamp", "clamp_min", "clamp_max"):
            v = self.vector(args[0]).floats_only()
            inf = np.full(self.n, np.inf)
            if name == "clamp":
                lo, hi = self.scalar(args[1]), self.scalar(args[2])
            elif name == "clamp_min":
                lo, hi = self.scalar(args[1]), inf
            else:
                lo, hi = -inf, self.scalar(args[1])
            return self._names_dropped(v, functions.clamp(v, lo, hi))
        if name in ("sort", "sort_desc", "sort_by_label", "sort_by_label_desc"):
            v = self.vector(args[0])
            if name in ("sort", "sort_desc"):
                v = v.floats_only()
            if self.n != 1:
                return v
            by = [self._string(a) for a in args[1:]]
            return v.take(functions.sort_order(v, name, by))
        if name == "histogram_quantile":
            q = self.scalar(args[0])
            v = self._without_mixed_histograms(self._histogram_arg(name, args[1]), self.ctx.pos(args[1]))
            classic = histogram.histogram_quantile(
                q,
                v.floats_only(),
                self.ctx.annots,
                q_pos=self.ctx.pos(args[0]),
                vec_pos=self.ctx.pos(args[1]),
            )
            if v.hist is None:
                return merge_same_labels(classic)
            native = nativefuncs.histogram_quantile(q, v, self.ctx.annots, self.ctx.pos(args[0]))
            return self._marked_names_dropped(nativefuncs.stack(classic, native))
        if name == "histogram_fraction":
            lo, hi = self.scalar(args[0]), self.scalar(args[1])
            v = self._without_mixed_histograms(self._histogram_arg(name, args[2]), self.ctx.pos(args[2]))
            classic = histogram.histogram_fraction(
                lo, hi, v.floats_only(), self.ctx.annots, vec_pos=self.ctx.pos(args[2])
            )
            if v.hist is None:
                return merge_same_labels(classic)
            native = nativefuncs.histogram_fraction(lo, hi, v, self.ctx.annots, self.ctx.pos(args[0]))
            return self._marked_names_dropped(nativefuncs.stack(classic, native))
        if name in _HISTOGRAM_ONLY:
            v = self._histogram_arg(name, args[0])
            return self._marked_names_dropped(nativefuncs.histogram_property(name, v))
        raise PromQLError(f'function "{name}" is not supported by this engine')

    def _string(self, node: Any) -> str:
        v = self.eval(node)
        if not isinstance(v, String):
            raise PromQLError(f"expected string argument, got {node}")
        return v.value

    def _absent_labels(self, node: Any) -> tuple[tuple[str, str], ...]:
        vs = node.vector_selector if isinstance(node, pp.MatrixSelector) else node
        if not isinstance(vs, pp.VectorSelector):
            return ()
        groups = matcher_groups(vs, decoded=self.ctx.go_strings)
        if len(groups) != 1:
            return ()
        return functions.absent_labels([(m.name, m.op, m.value) for m in groups[0]])

    def _range_arg(self, args: list[Any]) -> tuple[int, RangeVec]:
        for i, a in enumerate(args):
            if isinstance(a, pp.MatrixSelector | pp.SubqueryExpr):
                rv = self.eval(a)
                assert isinstance(rv, RangeVec)
                return i, rv
        raise PromQLError("expected a range vector argument")

    def _range_function(self, name: str, args: list[Any]) -> Vec:
        step = "sum" if name in ("sum_over_time", "avg_over_time") else "range"
        if name in _KEEP_NAME_RANGE:
            step = "through"
        with self._hint_path(step):
            idx, rv = self._range_arg(args)
        params = [self.scalar(a) for i, a in enumerate(args) if i != idx]
        if name == "quantile_over_time":
            for q in np.unique(params[0][np.isnan(params[0]) | (params[0] < 0) | (params[0] > 1)]):
                self.ctx.annots.warn(
                    f"PromQL warning: quantile value should be between 0 and 1, got {format_float(q)}"
                    f" ({self.ctx.pos(args[0])})"
                )
        if rv.histograms is not None:
            return self._histogram_range_function(name, rv, params, args[idx])
        return self._float_range_function(name, rv, params, args[idx])

    def _histogram_range_function(self, name: str, rv: RangeVec, params: list[np.ndarray], arg: Any) -> Vec:
        """Series holding histograms go step by step through ``nativefuncs``; the rest as usual."""
        assert rv.histograms is not None
        hists = rv.histograms
        floats = [i for i, h in enumerate(hists) if h is None]
        parts = []
        if floats:
            sub = dataclass_replace(
                rv,
                labels=[rv.labels[i] for i in floats],
                timestamps=[rv.timestamps[i] for i in floats],
                values=[rv.values[i] for i in floats],
                histograms=None,
            )
            parts.append(self._float_range_function(name, sub, params, arg))
        labels: list[Labels] = []
        vals: list[np.ndarray] = []
        pres: list[np.ndarray] = []
        cells: list[np.ndarray] = []
        dense: dict[int, DenseRow] = {}
        for i, h in enumerate(hists):
            if h is None:
                continue
            lo, hi = rv.bounds(i)
            row = nativefuncs.RowWindows(
                rv.labels[i], rv.timestamps[i], rv.values[i], h, lo, hi, rv.start, rv.end, self.steps,
                rv.range_ms, params, self.ctx.prometheus2, self.ctx.pos(arg),
            )  # fmt: skip
            if rv.dense_sources is not None and rv.dense_sources[i] is not None:
                row.dense_source = rv.dense_sources[i]
            v, p, c, d = nativefuncs.range_row(name, row, self.ctx.annots)
            if not p.any():
                continue
            if d is not None:
                dense[len(labels)] = d
            if name in ("rate", "increase") and not is_histogram(c[p]).all():
                self._counter_name_info(rv.labels[i], arg)
            labels.append(self._range_label(name, rv.labels[i]))
            vals.append(v)
            pres.append(p)
            cells.append(c)
        if labels:
            hist = hist_cells((len(labels), self.n))
            for k, c in enumerate(cells):  # row by row: np.array would probe every histogram
                hist[k] = c
            parts.append(Vec(labels, np.array(vals), np.array(pres), hist=hist, dense=dense or None))
        out = nativefuncs.stack(*parts)
        check_unique_series(out.labels)
        if not out.labels:
            return Vec.empty(self.n)
        return dataclass_replace(out, drop=self._range_drop(name, len(out.labels)))

    def _float_range_function(self, name: str, rv: RangeVec, params: list[np.ndarray], arg: Any) -> Vec:
        if name in rangebatch.BATCHED:
            return self._batched_range_function(name, rv, arg)
        fn = RANGE_FUNCTIONS.get(name)
        labels, vals, pres = [], [], []
        for i, lab in enumerate(rv.labels):
            ts, v = rv.timestamps[i], rv.values[i]
            lo, hi = rv.bounds(i)
            active = np.flatnonzero(hi > lo)
            if active.size == 0:
                continue
            w = Window(
                ts, v, lo[active], hi[active], rv.start[active], rv.end[active], self.steps[active],
                rv.range_ms, [p[active] for p in params],
            )  # fmt: skip
            res, ok = fn(w) if fn is not None else EXTRAPOLATED[name](w, self.ctx.prometheus2)
            out = np.zeros(self.n)
            p = np.zeros(self.n, dtype=bool)
            out[active] = res
            p[active] = ok
            if not p.any():
                continue
            if name in ("rate", "increase"):
                self._counter_name_info(lab, arg)
            labels.append(self._range_label(name, lab))
            vals.append(out)
            pres.append(p)
        check_unique_series(labels)
        if not labels:
            return Vec.empty(self.n)
        return Vec(labels, np.array(vals), np.array(pres), drop=self._range_drop(name, len(labels)))

    def _batched_range_function(self, name: str, rv: RangeVec, arg: Any) -> Vec:
        """Series sharing sample times are evaluated together (see ``rangebatch``)."""
        n = len(rv.labels)
        groups = rangebatch.shared_time_groups(rv.timestamps)
        vals = np.zeros((n, self.n)) if len(groups) > 1 else None
        pres = np.zeros((n, self.n), dtype=bool) if len(groups) > 1 else None
        for rows, ts in groups:
            v, p = rangebatch.evaluate(
                name,
                ts,
                [rv.values[i] for i in rows],
                rv.start,
                rv.end,
                rv.range_ms,
                rv.left_closed,
                self.ctx.prometheus2,
            )
            if vals is None or pres is None:  # one group holds every row, in order
                vals, pres = v, p
            else:
                vals[rows] = v
                pres[rows] = p
        if vals is None or pres is None:
            return Vec.empty(self.n)
        keep = np.flatnonzero(pres.any(axis=1))
        labels = []
        for i in keep:
            lab = rv.labels[i]
            if name in ("rate", "increase"):
                self._counter_name_info(lab, arg)
            labels.append(self._range_label(name, lab))
        check_unique_series(labels)
        drop = self._range_drop(name, len(labels))
        if keep.size == n:
            return Vec(labels, vals, pres, drop=drop)
        return Vec(labels, vals[keep], pres[keep], drop=drop)

    def _range_label(self, name: str, labels: Labels) -> Labels:
        """A range function's output labels: the name goes, unless kept or its removal delayed."""
        return labels if name in _KEEP_NAME_RANGE or self.ctx.delayed_names else drop_name(labels)

    def _range_drop(self, name: str, n_rows: int) -> np.ndarray | None:
        """Delayed name removal's marks for a range function's ``n_rows`` output rows."""
        if not self.ctx.delayed_names or name in _KEEP_NAME_RANGE:
            return None
        return np.ones(n_rows, dtype=bool)

    def _counter_name_info(self, labels: Any, arg: Any) -> None:
        metric = get_label(labels, METRIC_NAME)
        if metric and not metric.endswith(("_total", "_sum", "_count", "_bucket")):
            self.ctx.annots.info(
                "PromQL info: metric might not be a counter, name does not end in "
                f'_total/_sum/_count/_bucket: "{metric}" ({self.ctx.pos(arg)})'
            )

    def _absent_over_time(self, arg: Any) -> Vec:
        rv = self.eval(arg)
        assert isinstance(rv, RangeVec)
        seen = np.zeros(self.n, dtype=bool)
        for i in range(len(rv.labels)):
            lo, hi = rv.bounds(i)
            seen |= hi > lo
        labels = self._absent_labels(arg)
        return Vec([labels], np.ones((1, self.n)), ~seen[None, :])

    # -- aggregation ------------------------------------------------------------------
    def _aggregate(self, node: Any) -> Vec:
        op = str(node.op)
        grouping: list[str] = []
        without = False
        if node.modifier is not None:
            grouping = list(node.modifier.labels)
            without = node.modifier.type == pp.AggModifierType.Without
        if op == "count_values":
            label = self._string(_unwrap(node.param))
            if not label or label in self.ctx.bad_strings:
                raise PromQLError(f"invalid label name {self.ctx.bad_strings.get(label, chr(34) * 2)}")
            return merge_same_labels(agg.count_values(self.vector(node.expr), label, grouping, without))
        if op in _IGNORE_HISTOGRAMS:
            inner = self.eval(node.expr)
            if isinstance(inner, Vec) and inner.hist is not None and inner.hist_mask().any():
                self.ctx.annots.info(
                    f"PromQL info: ignored histogram in {op} aggregation ({self.ctx.pos(node)})"
                )
                inner = inner.floats_only()
            return self._aggregate_vec(node, op, grouping, without, inner)
        if op in ("sum", "avg"):
            with self._hint_path("sum"):
                return self._aggregate_vec(node, op, grouping, without, self.eval(node.expr))
        return self._aggregate_vec(node, op, grouping, without, self.eval(node.expr))

    def _aggregate_vec(self, node: Any, op: str, grouping: list[str], without: bool, inner: Value) -> Vec:
        if not isinstance(inner, Vec):
            raise PromQLError(f"expected instant vector, got {type(inner).__name__.lower()}: {node.expr}")
        param = self.scalar(_unwrap(node.param)) if node.param is not None else None
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            assert param is not None
            empty = param.size == 0 or (  # no steps at all (a subquery shorter than its step)
                (not np.isnan(param).any() and param.max() < 1)
                if op != "limit_ratio"
                else (not np.isnan(param).any() and param.max() == 0 and param.min() == 0)
            )
            if empty:
                return Vec.empty(self.n)
            agg.check_k_param(op, param)
            vec = inner
            out, order = agg.select_k(
                op, vec, grouping, without, param, self.ctx.annots, self.ctx.pos(node.param)
            )
            if vec.drop is not None:  # the selected rows keep their marks
                out = dataclass_replace(out, drop=vec.drop)
            if self.n == 1:
                return out.take(order)
            keep = out.present.any(axis=1)
            return out.take(np.flatnonzero(keep))
        if op == "quantile" and param is not None:
            bad = param[np.isnan(param) | (param < 0) | (param > 1)]
            for q in np.unique(bad):
                self.ctx.annots.warn(
                    f"PromQL warning: quantile value should be between 0 and 1, got {format_float(q)}"
                    f" ({self.ctx.pos(node.param)})"
                )
        vec = inner
        if vec.hist is not None and op in ("sum", "avg"):
            out = nativefuncs.sum_avg(op, vec, grouping, without, self.ctx.annots, self.ctx.pos(node))
        else:
            out = agg.aggregate(op, vec, grouping, without, param, Annotations())
        return _group_marks(vec, out, grouping, without)

    # -- binary -----------------------------------------------------------------------
    def _binary(self, node: Any) -> Value:
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        mod = node.modifier
        if has_fill_modifier(node):
            raise PromQLError(
                "the fill modifier is not supported by this engine "
                "(Prometheus's experimental promql-binop-fill-modifiers)"
            )
        return_bool = bool(mod.return_bool) if mod is not None else False
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return Scalar(binary.scalar_scalar(op, lhs.values, rhs.values))
        annots, pos = self.ctx.annots, self.ctx.pos(node)
        delayed = self.ctx.delayed_names
        if isinstance(lhs, Vec) and isinstance(rhs, Scalar):
            return binary.vector_scalar(op, lhs, rhs.values, False, return_bool, annots, pos, delayed=delayed)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vec):
            return binary.vector_scalar(op, rhs, lhs.values, True, return_bool, annots, pos, delayed=delayed)
        if not (isinstance(lhs, Vec) and isinstance(rhs, Vec)):
            raise PromQLError("binary expression must contain only scalar and instant vector types")
        card = "many-to-many" if op in binary.SET_OPS else "one-to-one"
        on, labels, include = False, (), ()
        if mod is not None:
            card = _CARD.get(str(mod.card), card)
            if mod.matching is not None:
                on = mod.matching.type == pp.LabelModifierType.Include
                labels = tuple(mod.matching.labels)
            include = tuple(mod.group_labels or ())
        matching = binary.Matching(card, on, labels, include, return_bool)
        if op in binary.SET_OPS:
            return binary.set_operation(op, lhs, rhs, matching)
        return binary.vector_vector(
            op, lhs, rhs, matching, prometheus2=self.ctx.prometheus2, annots=annots, pos=pos, delayed=delayed
        )


def _group_marks(inner: Vec, out: Vec, grouping: list[str], without: bool) -> Vec:
    """Delayed name removal through an aggregation: a group keeps ``__name__`` only when grouped
    ``by`` it, and then its name goes if any member's was to go (Prometheus ORs the members)."""
    if inner.drop is None or without or METRIC_NAME not in grouping:
        return out
    marked: dict[Labels, bool] = {}
    for lab, d in zip(inner.labels, inner.drop.tolist(), strict=True):
        key = agg.group_labels(lab, grouping, without)
        marked[key] = marked.get(key, False) or d
    return dataclass_replace(out, drop=np.array([marked.get(lab, False) for lab in out.labels], dtype=bool))


def _stats_hints(series: Series) -> Series:
    """``series`` as Prometheus's HistogramStatsIterator reads it: a histogram sample whose
    counter-reset hint is unknown gets "reset" or "not_reset" by comparing it with the sample
    before (the first sample, and gauge or already-hinted ones, keep theirs)."""
    hs = series.histograms
    if hs is None:
        return series
    out = hs.copy()
    prev: FloatHistogram | None = None
    for i, h in enumerate(hs):
        if not isinstance(h, FloatHistogram):
            prev = None
            continue
        if h.counter_reset_hint == "unknown" and prev is not None:
            out[i] = dataclass_replace(h, counter_reset_hint="reset" if h.detect_reset(prev) else "not_reset")
        prev = h
    return dataclass_replace(series, histograms=out)


def _remove_marked_names(value: Value) -> Value:
    """The end of delayed name removal (see :class:`Engine`); a no-op when nothing is marked."""
    if isinstance(value, Vec):
        return remove_marked_names(value)
    if isinstance(value, RangeVec) and value.drop is not None:
        labels = [
            drop_name(lab) if d else lab for lab, d in zip(value.labels, value.drop.tolist(), strict=True)
        ]
        check_unique_series(labels)
        return dataclass_replace(value, labels=labels, drop=None)
    return value


class Engine:
    """Evaluate PromQL over a :class:`SeriesStore` with Prometheus 3.x semantics.

    ``prometheus2=True`` mimics Prometheus 2.x where it differs in data selection: range
    windows and the lookback window include their left edge, and ``rate``-style
    extrapolation applies its counter zero-point clamp before the gap threshold.

    ``delayed_name_removal=True`` is Prometheus 3's ``promql-delayed-name-removal`` feature (off by
    default there and here): functions and operators mark the rows whose ``__name__`` goes and the
    names are dropped once, at the end, so ``label_replace`` can still read or keep them and
    ``sum by (env) (rate(...))`` over several metrics does not collide midway.
    """

    def __init__(
        self,
        store: SeriesStore,
        lookback_ms: int = 300_000,
        prometheus2: bool = False,
        *,
        delayed_name_removal: bool = False,
    ) -> None:
        self.store = store
        self.lookback_ms = int(lookback_ms)
        self.prometheus2 = bool(prometheus2)
        self.delayed_name_removal = bool(delayed_name_removal)
        self._trees: dict[str, Any] = {}

    def parse(self, expr: str) -> Any:
        """The syntax tree of ``expr``, parsed once per engine: a rule manager evaluates the same
        texts many times (trees are only read, so sharing them is safe)."""
        tree = self._trees.get(expr)
        if tree is None:
            if len(self._trees) >= _MAX_CACHED_TREES:  # a long-lived engine answering ad-hoc queries
                self._trees.clear()
            tree = self._trees[expr] = parse(expr, dialect_for(self.prometheus2))
        return tree

    def _context(self, text: str, tree: Any, start: int, end: int, step: int) -> _Context:
        bad_strings, go_strings = go_string_literals(text)
        check_regex_utf8(tree, bad_strings)
        return _Context(
            self.store,
            text,
            self.lookback_ms,
            self.prometheus2,
            start,
            end,
            step,
            at_modifiers(text, tree),
            bad_strings,
            go_strings,
            delayed_names=self.delayed_name_removal,
        )

    def instant(self, expr: str, at_ms: int) -> QueryResult:
        tree = self.parse(expr)
        ctx = self._context(expr, tree, int(at_ms), int(at_ms), 0)
        steps = np.array([int(at_ms)], dtype=np.int64)
        value = _remove_marked_names(_Evaluator(ctx, steps).eval(tree))
        warns, infos = ctx.annots.warnings, ctx.annots.infos
        if isinstance(value, String):
            return QueryResult(
                "string",
                steps,
                [],
                np.empty((0, 1)),
                np.zeros((0, 1), bool),
                string=value.value,
                warnings=warns,
                infos=infos,
            )
        if isinstance(value, Scalar):
            return QueryResult(
                "scalar",
                steps,
                [()],
                value.values[None, :],
                np.ones((1, 1), bool),
                warnings=warns,
                infos=infos,
            )
        if isinstance(value, RangeVec):
            raw, labels, raw_hists = [], [], []
            for i, lab in enumerate(value.labels):
                lo, hi = value.bounds(i)
                if hi[0] > lo[0]:
                    labels.append(lab)
                    raw.append((value.timestamps[i][lo[0] : hi[0]], value.values[i][lo[0] : hi[0]]))
                    hs = None if value.histograms is None else value.histograms[i]
                    raw_hists.append(None if hs is None else hs[lo[0] : hi[0]])
            n = len(labels)
            vals = np.array([r[1][-1] for r in raw]).reshape(n, 1)
            return QueryResult(
                "matrix", steps, labels, vals, np.ones((n, 1), bool), raw=raw, warnings=warns, infos=infos,
                raw_histograms=raw_hists if any(h is not None for h in raw_hists) else None,
            )  # fmt: skip
        keep = np.flatnonzero(value.present[:, 0]) if value.labels else np.array([], dtype=np.intp)
        out = value.take(keep)
        return QueryResult(
            "vector",
            steps,
            out.labels,
            out.values,
            out.present,
            warnings=warns,
            infos=infos,
            histograms=out.hist,
        )

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> QueryResult:
        if step_ms <= 0:
            raise PromQLError("zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise PromQLError("end timestamp must not be before start time")
        tree = self.parse(expr)
        ctx = self._context(expr, tree, int(start_ms), int(end_ms), int(step_ms))
        steps = np.arange(int(start_ms), int(end_ms) + 1, int(step_ms), dtype=np.int64)
        value = _remove_marked_names(_Evaluator(ctx, steps).eval(tree))
        warns, infos = ctx.annots.warnings, ctx.annots.infos
        if isinstance(value, Scalar):
            return QueryResult(
                "matrix",
                steps,
                [()],
                value.values[None, :],
                np.ones((1, steps.size), bool),
                warnings=warns,
                infos=infos,
            )
        if not isinstance(value, Vec):
            kind = "range vector" if isinstance(value, RangeVec) else "string"
            raise PromQLError(
                f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector'
            )
        keep = [i for i in range(len(value.labels)) if value.present[i].any()]
        keep.sort(key=lambda i: value.labels[i])
        out = value.take(keep)
        return QueryResult(
            "matrix",
            steps,
            out.labels,
            out.values,
            out.present,
            warnings=warns,
            infos=infos,
            histograms=out.hist,
        )
