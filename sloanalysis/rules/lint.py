"""Static checks of alerting rules and Grafana dashboards against a metric catalog.

Every expression is parsed and walked once; each node gets an :class:`Info` (the metric it
derives from, the labels its result keeps, its value range), and the checks read those facts:

- parse errors (with the ``line:col`` inside the expression);
- selectors naming a metric, label or label value that the catalog does not have (selects nothing);
- ratios of one counter that match series one-to-one: ``rate(x{status="failed"}[5m]) / rate(x[5m])``
  pairs each numerator series with the denominator series of identical labels, i.e. itself, so it
  is 1 whenever anything happened;
- ``rate``/``irate``/``increase`` over a gauge; range windows under 4 scrape intervals;
- ``histogram_quantile`` over a vector without ``le`` or not made of ``_bucket`` series, or over
  several label sets (one quantile per series: many lines or many alerts);
- comparisons that can never be true given the value's possible range (an enum gauge, a percentage,
  a ratio, a usage and its limit);
- ``up`` alerts whose ``for`` is under two scrapes, alerts on noisy signals without ``for``;
- dashboard legends naming labels the result lacks or not telling its series apart, stat panels
  that show several series, byte conversions by 1024 labelled MB/GB, and annotations whose "N% of
  LIMIT" does not match the threshold.

The catalog comes from a run's series (:func:`catalog_from_run`), from exporter metadata in a
JSON file (:func:`catalog_from_file`, e.g. ``tronsim catalog``), from a Prometheus server's series
and metadata APIs (:func:`catalog_from_prometheus`), or is absent (:func:`structural_catalog`: the
existence checks are skipped). In every case the recording rules of the linted file join it
(:func:`with_recording_rules`): a ``record:`` name is a known metric, with the label sets its
expression keeps when they can be worked out from the catalog (else its labels go unchecked).
Metric types come from the catalog or from name conventions: ``_total`` and ``_bucket`` are
counters, ``_count``/``_sum`` too when a ``_bucket`` family exists. Rules files are read by
:func:`sloanalysis.rules.model.load_rules`.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import promql_parser as pp

from sloanalysis._go import match_op
from sloanalysis.dashboard import load_dashboard
from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.promql.parse import PROMETHEUS_3, Dialect, PromQLError, parse
from sloanalysis.promql.walk import duration_ms, metric_names
from sloanalysis.rules.model import AlertingRule, RecordingRule, RuleGroup, RulesError, load_rules
from sloanalysis.rules.tuning import split_comparison
from sloanalysis.store import METRIC_NAME, Matcher, SeriesStore

__all__ = [
    "Catalog",
    "Finding",
    "catalog_from_file",
    "catalog_from_metadata",
    "catalog_from_prometheus",
    "catalog_from_run",
    "catalog_from_server",
    "catalog_from_store",
    "lint_dashboard",
    "lint_expr",
    "lint_files",
    "lint_rules",
    "referenced_metrics",
    "structural_catalog",
    "with_recording_rules",
]

MIB = 1024 * 1024
_COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}
_COUNTER_FUNCS = {"rate", "irate", "increase", "resets"}
_LABEL_PRESERVING = {
    "abs", "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "clamp", "clamp_min",
    "clamp_max", "sgn", "timestamp", "last_over_time", "avg_over_time", "min_over_time",
    "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
    "stdvar_over_time", "present_over_time", "delta", "idelta", "deriv", "predict_linear", "changes",
    "rate", "irate", "increase", "resets",
}  # fmt: skip
_KEEPS_RANGE = {"last_over_time", "avg_over_time", "min_over_time", "max_over_time", "quantile_over_time"}


@dataclass(frozen=True)
class Finding:
    """One problem: ``where`` names the rule (``alert X``) or panel (``panel 1 "Title"``)."""

    severity: str  # "error" or "warning"
    where: str
    expr: str
    check: str
    message: str

    def as_row(self) -> dict[str, str]:
        return {
            "severity": self.severity,
            "where": self.where,
            "check": self.check,
            "message": self.message,
            "expr": self.expr,
        }


@dataclass(frozen=True)
class Catalog:
    """What a target exports: series label sets per metric, types, value ranges."""

    series: Mapping[str, tuple[Mapping[str, str], ...]]
    types: Mapping[str, str]  # explicit types (e.g. from metadata); the rest by name convention
    scrape_interval_ms: int = 15_000
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    enums: Mapping[str, Mapping[float, str]] = field(default_factory=dict)
    metrics_known: bool = True
    """False for :func:`structural_catalog`: which metrics, labels and values exist is unknown."""
    opaque: frozenset[str] = frozenset()
    """Metrics known to exist whose label sets are unknown (their labels and values go unchecked)."""

    def kind(self, metric: str) -> str:
        """``counter`` or ``gauge``."""
        if metric in self.types:
            return self.types[metric]
        if metric.endswith(("_total", "_bucket")):
            return "counter"
        for suffix in ("_count", "_sum"):
            if metric.endswith(suffix) and metric[: -len(suffix)] + "_bucket" in self.series:
                return "counter"
        return "gauge"

    def label_names(self, metric: str) -> set[str]:
        return {k for s in self.series.get(metric, ()) for k in s}

    def label_values(self, metric: str, label: str) -> set[str]:
        return {s[label] for s in self.series.get(metric, ()) if label in s}


# -- catalogs -------------------------------------------------------------------------------------


def _limits_facts(service: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Value ranges implied by the service's configuration (usage can never exceed its limit)."""
    out: dict[str, tuple[float, float]] = {}
    if "daily_limit" in service:
        out["tron_daily_limit_usage_usdt"] = (0.0, float(service["daily_limit"]))
    if "hourly_limit" in service:
        out["tron_hourly_limit_usage_usdt"] = (0.0, float(service["hourly_limit"]))
    mem = service.get("process", {}).get("memory_limit_mb")
    if mem is not None:
        out["tron_memory_usage_bytes"] = (0.0, float(mem) * MIB)
    return out


def _network_facts(network: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The client gives up on a TRON call after ``client_timeout``: latencies never exceed it."""
    timeout = network.get("client_timeout")
    return {} if timeout is None else {"tron_network_latency_seconds": (0.0, float(timeout))}


# The documented value sets of the reference service (seed help texts, docs/reference-service.md).
_ENUMS: dict[str, dict[float, str]] = {
    "tron_circuit_breaker_status": {0.0: "closed", 1.0: "open", 2.0: "half_open"},
    "up": {0.0: "down", 1.0: "up"},
}
# Why a value cannot leave its range, for messages.
_RANGE_NOTES = {
    "tron_network_latency_seconds": "the TRON client gives up at its timeout",
    "tron_daily_limit_usage_usdt": "the limiter refuses payouts beyond the daily limit",
    "tron_hourly_limit_usage_usdt": "the limiter refuses payouts beyond the hourly limit",
    "tron_memory_usage_bytes": "the process is killed at its memory limit",
}
_DEFAULT_SERVICE = {"daily_limit": 10000.0, "hourly_limit": 1000.0, "process": {"memory_limit_mb": 1024.0}}
_DEFAULT_NETWORK = {"client_timeout": 10.0}


def _enums_from_help(help_texts: Mapping[str, str]) -> dict[str, dict[float, str]]:
    """``(0=closed, 1=open, 2=half_open)`` in a help text declares an enum gauge."""
    out: dict[str, dict[float, str]] = {}
    for name, text in help_texts.items():
        pairs = re.findall(r"(-?\d+(?:\.\d+)?)=([A-Za-z_]+)", text)
        if len(pairs) >= 2:
            out[name] = {float(v): n for v, n in pairs}
    return out


def catalog_from_store(
    store: SeriesStore,
    *,
    scrape_interval_ms: int = 15_000,
    service: Mapping[str, Any] | None = None,
    network: Mapping[str, Any] | None = None,
    types: Mapping[str, str] | None = None,
) -> Catalog:
    series: dict[str, list[dict[str, str]]] = {}
    for s in store:
        labels = dict(s.labels)
        name = labels.pop(METRIC_NAME, "")
        if name:
            series.setdefault(name, []).append(labels)
    ranges = _limits_facts(_DEFAULT_SERVICE | dict(service or {}))
    ranges |= _network_facts(_DEFAULT_NETWORK | dict(network or {}))
    return Catalog(
        series={k: tuple(v) for k, v in series.items()},
        types=dict(types or {}),
        scrape_interval_ms=scrape_interval_ms,
        ranges=ranges,
        enums={k: v for k, v in _ENUMS.items() if k in series},
    )


def catalog_from_run(path: str | Path) -> Catalog:
    """Catalog of a run directory: its series, scrape interval and the service's limits."""
    from sloanalysis.sources.rundir import load_run

    run = load_run(path)
    interval = float(run.run_json.get("scrape_interval_seconds", 15.0))
    scenario = run.run_json.get("scenario", {})
    return catalog_from_store(
        run.store,
        scrape_interval_ms=round(interval * 1000),
        service=scenario.get("service", {}),
        network=scenario.get("network", {}),
    )


def structural_catalog(scrape_interval_ms: int = 15_000) -> Catalog:
    """No catalog: the checks that need none (ratios, ranges of percentages and ratios, windows,
    ``for``); whether metrics, labels and values exist is not checked."""
    return Catalog(series={}, types={}, scrape_interval_ms=scrape_interval_ms, metrics_known=False)


def catalog_from_file(path: str | Path) -> Catalog:
    """Catalog from a metric-catalog JSON file (``tronsim catalog --out FILE``): ``families``
    (name, type, help, samples of name and labels), ``target_labels``, ``scrape_interval_seconds``."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{p}: cannot read the catalog: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{p}: invalid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("families"), list):
        raise UserError(f"{p}: not a metric catalog (expected an object with 'families': [...])")
    families = []
    for i, f in enumerate(doc["families"]):
        try:
            samples = [
                (str(x["name"]), {str(k): str(v) for k, v in x["labels"].items()}) for x in f["samples"]
            ]
            families.append((str(f["name"]), str(f["type"]), str(f.get("help", "")), samples))
        except (KeyError, TypeError, AttributeError):
            raise UserError(
                f"{p}: families[{i}]: expected name, type and samples (each with name and labels)"
            ) from None
    try:
        interval_ms = round(float(doc.get("scrape_interval_seconds", 15.0)) * 1000)
        target = {str(k): str(v) for k, v in (doc.get("target_labels") or {}).items()}
    except (TypeError, ValueError, AttributeError):
        raise UserError(f"{p}: scrape_interval_seconds must be a number, target_labels an object") from None
    if interval_ms <= 0:
        raise UserError(f"{p}: scrape_interval_seconds must be positive")
    return catalog_from_metadata(families, scrape_interval_ms=interval_ms, extra_labels=target)


def catalog_from_metadata(
    families: Iterable[tuple[str, str, str, Iterable[tuple[str, Mapping[str, str]]]]],
    *,
    scrape_interval_ms: int = 15_000,
    extra_labels: Mapping[str, str] | None = None,
) -> Catalog:
    """Catalog from exporter metadata: (family, type, help, [(sample name, labels)]) per family."""
    series: dict[str, list[dict[str, str]]] = {}
    types: dict[str, str] = {}
    helps: dict[str, str] = {}
    for _family, mtype, help_text, samples in families:
        for name, labels in samples:
            series.setdefault(name, []).append({**labels, **dict(extra_labels or {})})
            types[name] = "counter" if mtype in ("counter", "histogram", "summary") else "gauge"
            helps[name] = help_text
    enums = {k: v for k, v in _ENUMS.items() if k in series} | _enums_from_help(helps)
    return Catalog(
        series={k: tuple(v) for k, v in series.items()},
        types=types,
        scrape_interval_ms=scrape_interval_ms,
        ranges=_limits_facts(_DEFAULT_SERVICE) | _network_facts(_DEFAULT_NETWORK),
        enums=enums,
    )


# -- expression analysis --------------------------------------------------------------------------

ALL = None  # "kept" value meaning: every label of the underlying series


@dataclass(frozen=True)
class Info:
    """What is statically known about a sub-expression's result."""

    kind: str  # vector, scalar, matrix, string
    metric: str | None = None
    matchers: frozenset[tuple[str, str, str]] = frozenset()
    kept: frozenset[str] | None = ALL  # output label names (ALL: those of the metric's series)
    chain: tuple[str, ...] = ()  # functions applied, to compare two sides' shapes
    lo: float = -math.inf
    hi: float = math.inf
    enum: Mapping[float, str] | None = None
    value: float | None = None  # scalar literals
    counter_rate: bool = False
    noisy: bool = False
    ratio: bool = False  # a part of a counter over its whole


class _Walker:
    def __init__(self, catalog: Catalog, where: str, text: str, out: list[Finding]) -> None:
        self.cat, self.where, self.text, self.out = catalog, where, text, out
        self.infos: list[Info] = []

    def find(self, severity: str, check: str, message: str) -> None:
        f = Finding(severity, self.where, self.text, check, message)
        if f not in self.out:
            self.out.append(f)

    # the metric's label names, minus the name, for "without" and legends
    def labels_of(self, info: Info) -> set[str] | None:
        if info.kept is not ALL:
            return set(info.kept)
        if info.metric is None or not self.cat.metrics_known or info.metric in self.cat.opaque:
            return None
        return self.cat.label_names(info.metric)

    def series_count(self, info: Info) -> int | None:
        """How many distinct output label sets the catalog gives this result."""
        if info.metric is None or info.metric in self.cat.opaque:
            return None
        combos = set()
        for s in self.cat.series.get(info.metric, ()):
            if not all(_matcher(m).matches(s.get(m[0], "")) for m in info.matchers):
                continue
            keep = s.keys() if info.kept is ALL else info.kept
            combos.add(tuple(sorted((k, s[k]) for k in keep if k in s)))
        return len(combos)

    def eval(self, node: Any) -> Info:
        info = self._eval(node)
        self.infos.append(info)
        return info

    def _eval(self, node: Any) -> Info:
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr)
        if isinstance(node, pp.NumberLiteral):
            return Info("scalar", lo=node.val, hi=node.val, value=node.val)
        if isinstance(node, pp.StringLiteral):
            return Info("string")
        if isinstance(node, pp.UnaryExpr):
            inner = self.eval(node.expr)
            val = -inner.value if inner.value is not None else None
            return replace(inner, lo=-inner.hi, hi=-inner.lo, value=val, enum=None)
        if isinstance(node, pp.VectorSelector):
            return self._selector(node)
        if isinstance(node, pp.MatrixSelector):
            inner = self._selector(node.vector_selector)
            return replace(inner, kind="matrix", chain=(f"[{duration_ms(node.range)}]",))
        if isinstance(node, pp.SubqueryExpr):
            inner = self.eval(node.expr)
            return replace(inner, kind="matrix", chain=(*inner.chain, "subquery"))
        if isinstance(node, pp.Call):
            return self._call(node)
        if isinstance(node, pp.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self._binary(node)
        return Info("vector")

    def _selector(self, vs: Any) -> Info:
        raw = vs.matchers.or_matchers[0] if vs.matchers.or_matchers else vs.matchers.matchers
        matchers = [(m.name, match_op(m.op), m.value) for m in raw]
        name = vs.name or next((v for n, op, v in matchers if n == METRIC_NAME and op == "="), None)
        matchers = [m for m in matchers if m[0] != METRIC_NAME]
        if name is None:
            return Info("vector", matchers=frozenset(matchers))
        opaque = name in self.cat.opaque
        if self.cat.metrics_known and name not in self.cat.series and not opaque:
            self.find("error", "unknown-metric", f"metric {name} is not in the catalog: selects nothing")
            return Info("vector", metric=name, matchers=frozenset(matchers))
        if self.cat.metrics_known and not opaque:
            self._check_label_values(name, matchers)
        kind = self.cat.kind(name)
        lo, hi = self.cat.ranges.get(name, (0.0 if kind == "counter" else -math.inf, math.inf))
        enum = self.cat.enums.get(name)
        if enum:
            lo, hi = min(enum), max(enum)
        if name.endswith("_percent"):
            lo, hi = max(lo, 0.0), min(hi, 100.0)
        return Info(
            "vector", metric=name, matchers=frozenset(matchers), lo=lo, hi=hi, enum=enum, noisy=bool(enum)
        )

    def _check_label_values(self, name: str, matchers: list[tuple[str, str, str]]) -> None:
        names = self.cat.label_names(name)
        for label, op, value in matchers:
            m = _matcher((label, op, value))
            values = self.cat.label_values(name, label) if label in names else {""}
            if op in ("=", "=~") and not any(m.matches(v) for v in values):
                known = ", ".join(sorted(values - {""})) or "none: the metric has no such label"
                self.find(
                    "error",
                    "unknown-label-value",
                    f"{name}{{{label}{op}{json.dumps(value)}}} selects nothing (values of {label}: {known})",
                )

    def _call(self, node: Any) -> Info:
        fname = node.func.name
        args = [self.eval(a) for a in node.args]
        if fname in ("rate", "irate", "increase") and args and args[0].metric is not None:
            self._check_counter_func(fname, node.args[0], args[0])
        if fname == "histogram_quantile" and len(args) == 2:
            return self._histogram_quantile(args[0], args[1])
        if fname in _LABEL_PRESERVING and args:
            src = next((a for a in args if a.kind in ("vector", "matrix")), args[0])
            is_rate = fname in ("rate", "irate", "increase")
            keep_range = fname in _KEEPS_RANGE
            return replace(
                src,
                kind="vector",
                chain=(*src.chain, fname),
                lo=src.lo if keep_range else (0.0 if is_rate else -math.inf),
                hi=src.hi if keep_range else math.inf,
                enum=src.enum if fname == "last_over_time" else None,
                counter_rate=is_rate,
                noisy=src.noisy or is_rate,
            )
        if fname in ("vector", "scalar", "time"):
            return Info("scalar" if fname != "vector" else "vector")
        return Info("vector", noisy=any(a.noisy for a in args))

    def _check_counter_func(self, fname: str, arg: Any, info: Info) -> None:
        assert info.metric is not None
        if info.metric in self.cat.series and self.cat.kind(info.metric) == "gauge":
            self.find(
                "error",
                "rate-of-gauge",
                f"{fname}() over {info.metric}, a gauge: counter resets are invented whenever it goes "
                "down; use delta()/deriv() or the gauge itself",
            )
        if isinstance(arg, pp.MatrixSelector):
            window = duration_ms(arg.range)
            scrape = self.cat.scrape_interval_ms
            if window < 4 * scrape:
                severity = "error" if window < 2 * scrape else "warning"
                self.find(
                    severity,
                    "short-window",
                    f"{fname}(...[{format_duration_ms(window)}]) spans under 4 scrape intervals "
                    f"({format_duration_ms(scrape)}): one missed scrape leaves too few samples",
                )

    def _histogram_quantile(self, q: Info, v: Info) -> Info:
        out = Info("vector", noisy=True, lo=0.0)
        if v.metric is None:
            return out
        if not v.metric.endswith("_bucket"):
            self.find(
                "error",
                "quantile-not-bucket",
                f"histogram_quantile over {v.metric}, which is not a _bucket series: the result is empty",
            )
            return out
        labels = self.labels_of(v)
        if labels is not None and "le" not in labels:
            self.find(
                "error",
                "quantile-without-le",
                "histogram_quantile over a vector without the le label (aggregated away): the result is "
                "empty; aggregate with by (le)",
            )
            return out
        kept = None if labels is None else frozenset(labels - {"le"})
        # Observations never exceed the largest possible value (a client timeout, say), nor can
        # the interpolated quantile.
        hi = self.cat.ranges.get(v.metric.removesuffix("_bucket"), (0.0, math.inf))[1]
        info = replace(v, kept=kept, chain=(*v.chain, "histogram_quantile"), lo=0.0, hi=hi, noisy=True)
        info = replace(info, metric=v.metric.removesuffix("_bucket"))
        n = self.series_count(replace(info, metric=v.metric))
        if v.kept is ALL and n is not None and n > 1:
            varying = sorted(
                k for k in (kept or ()) if len({s.get(k, "") for s in self.cat.series.get(v.metric, ())}) > 1
            )
            self.find(
                "warning",
                "quantile-per-series",
                f"histogram_quantile without aggregation gives {n} quantiles, one per "
                f"({', '.join(varying)}), not one overall; use sum by (le) (...)",
            )
        return info

    def _aggregate(self, node: Any) -> Info:
        op = str(node.op)
        if node.param is not None:
            self.eval(node.param)
        inner = self.eval(node.expr)
        if node.modifier is None:
            kept: frozenset[str] | None = frozenset()
        elif node.modifier.type == pp.AggModifierType.Without:
            labels = self.labels_of(inner)
            kept = None if labels is None else frozenset(labels - set(node.modifier.labels))
        else:
            kept = frozenset(node.modifier.labels)
        if op in ("topk", "bottomk", "limitk", "limit_ratio"):
            return inner
        lo, hi = inner.lo, inner.hi
        if op in ("sum", "count", "count_values", "group"):
            lo, hi = (0.0 if inner.lo >= 0 else -math.inf), (math.inf if inner.hi > 0 else inner.hi)
            if op in ("count", "group"):
                lo, hi = (0.0 if op == "count" else 1.0), (math.inf if op == "count" else 1.0)
        return replace(inner, kept=kept, chain=(*inner.chain, f"{op}"), lo=lo, hi=hi, enum=None)

    def _binary(self, node: Any) -> Info:
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        mod = node.modifier
        if op in _COMPARISONS:
            return self._comparison(op, lhs, rhs, bool(mod is not None and mod.return_bool))
        if op in ("and", "or", "unless"):
            return replace(lhs, noisy=lhs.noisy or rhs.noisy)
        if lhs.kind == "scalar" and rhs.kind == "scalar":
            return Info("scalar")
        if rhs.kind == "scalar" or lhs.kind == "scalar":
            vec, sc, vec_left = (lhs, rhs, True) if rhs.kind == "scalar" else (rhs, lhs, False)
            return _scalar_arith(op, vec, sc, vec_left)
        if op == "/" and self._one_to_one_ratio(lhs, rhs, mod):
            return replace(lhs, lo=1.0, hi=1.0, ratio=True, enum=None, metric=None)
        if op == "/" and _part_of_whole(lhs, rhs):
            return replace(lhs, lo=0.0, hi=1.0, ratio=True, enum=None, metric=None, chain=())
        return Info("vector", noisy=lhs.noisy or rhs.noisy, kept=lhs.kept)

    def _one_to_one_ratio(self, lhs: Info, rhs: Info, mod: Any) -> bool:
        if not _part_of_whole(lhs, rhs) or lhs.kept != rhs.kept:
            return False
        if mod is not None and str(mod.card) != "VectorMatchCardinality.OneToOne":
            return False
        labels = self.labels_of(lhs)
        if labels is None and lhs.kept is ALL and not self.cat.metrics_known:
            # without a catalog, the labels the selectors name are the ones known to exist
            labels = {m[0] for m in lhs.matchers | rhs.matchers}
        if labels is None:
            return False
        matching = set(labels)
        if mod is not None and mod.matching is not None:
            if mod.matching.type == pp.LabelModifierType.Include:
                matching = set(mod.matching.labels)
            else:
                matching -= set(mod.matching.labels)
        narrowed = {m[0] for m in lhs.matchers - rhs.matchers}
        if not narrowed or not narrowed <= matching or not (labels <= matching):
            return False
        example = sorted(narrowed)[0]
        self.find(
            "error",
            "one-to-one-ratio",
            f"ratio of {lhs.metric} matches series one-to-one: each numerator series (narrowed by "
            f"{example}) is divided by the denominator series with the same labels, i.e. by itself, so "
            f"the result is 1 whenever anything happened; aggregate both sides, e.g. "
            f"sum(rate({lhs.metric}{{...}}[5m])) / sum(rate({lhs.metric}[5m]))",
        )
        return True

    def _comparison(self, op: str, lhs: Info, rhs: Info, return_bool: bool) -> Info:
        if lhs.kind == "scalar" and rhs.kind != "scalar":
            flipped = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}[op]
            return self._comparison(flipped, rhs, lhs, return_bool)
        if rhs.value is not None and lhs.kind == "vector":
            self._threshold(op, lhs, rhs.value)
        out = replace(lhs, noisy=lhs.noisy or rhs.noisy)
        return replace(out, lo=0.0, hi=1.0, enum=None) if return_bool else out

    def _threshold(self, op: str, v: Info, t: float) -> None:
        what = v.metric or "the expression"
        if v.enum is not None:
            hits = [x for x in v.enum if _compare(op, x, t)]
            states = ", ".join(f"{_num(x)} ({n})" for x, n in sorted(v.enum.items()))
            if not hits:
                self.find(
                    "error",
                    "impossible-threshold",
                    f"{what} {op} {_num(t)} is never true: {what} takes only {states}",
                )
            return
        lo, hi = v.lo, v.hi
        never = (
            (op == ">" and t >= hi)
            or (op == ">=" and t > hi)
            or (op == "<" and t <= lo)
            or (op == "<=" and t < lo)
            or (op == "==" and not lo <= t <= hi)
        )
        if never:
            span = f"between {_num(lo)} and {_num(hi)}"
            why = "a part of a counter over its whole" if v.ratio else what
            note = _RANGE_NOTES.get(what, "") if not v.ratio else ""
            self.find(
                "error",
                "impossible-threshold",
                f"{op} {_num(t)} is never true: {why} is always {span}" + (f" ({note})" if note else ""),
            )


def _scalar_arith(op: str, vec: Info, sc: Info, vec_left: bool) -> Info:
    """Interval arithmetic for ``vector op scalar`` with a literal; unknown results widen."""
    c = sc.value
    base = replace(vec, enum=None, metric=vec.metric, value=None)
    if c is None:
        return replace(base, lo=-math.inf, hi=math.inf)
    lo, hi = vec.lo, vec.hi
    if op == "*" and c > 0:
        lo, hi = lo * c, hi * c
    elif op == "/" and vec_left and c > 0:
        lo, hi = lo / c, hi / c
    elif op == "+":
        lo, hi = lo + c, hi + c
    elif op == "-" and vec_left:
        lo, hi = lo - c, hi - c
    else:
        lo, hi = -math.inf, math.inf
    return replace(base, lo=lo, hi=hi)


def _part_of_whole(lhs: Info, rhs: Info) -> bool:
    """Same counter, same functions, numerator narrowed by more matchers than the denominator."""
    return (
        lhs.metric is not None
        and lhs.metric == rhs.metric
        and lhs.counter_rate
        and lhs.chain == rhs.chain
        and rhs.matchers < lhs.matchers
    )


def _matcher(m: tuple[str, str, str]) -> Matcher:
    return Matcher.of(*m)


def _compare(op: str, a: float, b: float) -> bool:
    return {
        "==": a == b,
        "!=": a != b,
        ">": a > b,
        "<": a < b,
        ">=": a >= b,
        "<=": a <= b,
    }[op]


def _num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:g}" if x != int(x) or abs(x) >= 1e15 else str(int(x))


def lint_expr(
    text: str, catalog: Catalog, where: str, dialect: Dialect = PROMETHEUS_3
) -> tuple[list[Finding], Info | None]:
    """Findings for one expression and what is known about its result (None if it does not parse
    as ``dialect``'s Prometheus parses it)."""
    out: list[Finding] = []
    try:
        tree = parse(text, dialect)
    except PromQLError as exc:
        return [Finding("error", where, text, "parse", str(exc))], None
    walker = _Walker(catalog, where, text, out)
    info = walker.eval(tree)
    return out, info


# -- rules ----------------------------------------------------------------------------------------


def lint_rules(
    path: str | Path,
    catalog: Catalog,
    groups: Sequence[RuleGroup] | None = None,
    dialect: Dialect = PROMETHEUS_3,
) -> list[Finding]:
    """Findings for every rule of a rules file (``groups``: the file already loaded), against
    ``catalog`` and the file's own recording rules. A file ``dialect``'s Prometheus would refuse
    raises :class:`RulesError` with every error promtool prints (the PromQL ones excepted: they
    are findings, with their position inside the expression)."""
    if groups is None:
        groups = load_rules(path, check_exprs=False, dialect=dialect)
    rules = [r for g in groups for r in g.rules]
    catalog = with_recording_rules(catalog, [r for r in rules if isinstance(r, RecordingRule)])
    out: list[Finding] = []
    for rule in rules:
        alerting = isinstance(rule, AlertingRule)
        where = f"alert {rule.name}" if alerting else f"record {rule.name}"
        found, info = lint_expr(rule.expr, catalog, where, dialect)
        out.extend(found)
        if info is None or not isinstance(rule, AlertingRule):
            continue
        expr, for_ms = rule.expr, rule.for_ms
        scrape = catalog.scrape_interval_ms
        if re.search(r"\bup\b\s*(\{|==|<|$)", expr) and for_ms < 2 * scrape:
            out.append(
                Finding(
                    "warning",
                    where,
                    expr,
                    "up-for",
                    f"alerts on up with for: {format_duration_ms(for_ms)}, under two scrape intervals "
                    f"({format_duration_ms(2 * scrape)}): a single failed scrape pages",
                )
            )
        if for_ms == 0 and info.noisy:
            out.append(
                Finding(
                    "warning",
                    where,
                    expr,
                    "no-for",
                    "fires on the first evaluation of a noisy signal (a rate, a quantile or a state that "
                    "flaps): without a 'for' each blip opens and resolves an alert",
                )
            )
        texts = " ".join(rule.annotations.values())
        out.extend(_text_checks(where, expr, info, texts))
    return out


_UNITS = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1024.0, "mib": float(MIB), "gib": float(MIB * 1024)}


def _text_checks(where: str, expr: str, info: Info, text: str) -> list[Finding]:
    """Units and "N% of LIMIT" claims in annotations or legends against the expression."""
    out: list[Finding] = []
    mib = bool(re.search(r"/\s*1024\s*/\s*1024|/\s*1048576", expr))
    if mib and re.search(r"\b[MG]B\b", text):
        out.append(
            Finding(
                "warning",
                where,
                expr,
                "unit",
                "divides bytes by 1024 twice (MiB) but the text says MB/GB (powers of 1000)",
            )
        )
    comparison = split_comparison(expr)
    threshold = None if comparison is None else comparison.threshold
    claim = re.search(r"(\d+(?:\.\d+)?)%\s+of\s+([\d,]+(?:\.\d+)?)\s*([KMG]i?B|[A-Za-z]+)?", text)
    if threshold is not None and claim:
        pct = float(claim.group(1)) / 100.0
        limit = float(claim.group(2).replace(",", ""))
        unit = (claim.group(3) or "").lower()
        scale_limit = _UNITS.get(unit, 1.0)
        scale_value = float(MIB) if mib else 1.0
        actual = threshold * scale_value / (limit * scale_limit)
        if abs(actual - pct) > 0.005:
            out.append(
                Finding(
                    "warning",
                    where,
                    expr,
                    "threshold-text",
                    f"the text claims {claim.group(0)} but the threshold {_num(threshold)} is "
                    f"{actual * 100:.1f}% of it",
                )
            )
    return out


# -- dashboards -----------------------------------------------------------------------------------


def lint_dashboard(path: str | Path, catalog: Catalog) -> list[Finding]:
    """Findings for every panel target of a Grafana dashboard JSON (bare or ``{"dashboard": ...}``)."""
    out: list[Finding] = []
    for panel in load_dashboard(path)[1]:
        where = f"panel {'?' if panel.id is None else panel.id} {json.dumps(panel.title)}"
        for target in panel.targets:
            expr, legend = target.expr, target.legend_format
            found, info = lint_expr(expr, catalog, where)
            out.extend(found)
            if info is None:
                continue
            out.extend(_legend_checks(where, expr, legend, info, catalog, panel.type))
            out.extend(_text_checks(where, expr, info, legend))
    return out


def _legend_checks(
    where: str, expr: str, legend: str, info: Info, catalog: Catalog, panel_type: Any
) -> list[Finding]:
    out: list[Finding] = []
    walker = _Walker(catalog, where, expr, [])
    labels = walker.labels_of(info)
    refs = re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend)
    for ref in refs:
        if labels is not None and ref not in labels:
            out.append(
                Finding(
                    "warning",
                    where,
                    expr,
                    "legend-label",
                    f"legend {{{{{ref}}}}} names a label the result does not have "
                    f"(it keeps: {', '.join(sorted(labels)) or 'no labels'})",
                )
            )
    n = walker.series_count(info)
    if n is None or n <= 1:
        return out
    if panel_type == "stat":
        out.append(
            Finding(
                "warning",
                where,
                expr,
                "stat-many-series",
                f"a stat panel over {n} series shows {n} numbers, not one; aggregate the query",
            )
        )
        return out
    distinct = walker.series_count(replace(info, kept=frozenset(r for r in refs if labels and r in labels)))
    if distinct is not None and distinct < n:
        out.append(
            Finding(
                "warning",
                where,
                expr,
                "legend-ambiguous",
                f"{n} series share {distinct} legend name(s) {json.dumps(legend)}: lines cannot be told "
                "apart; aggregate by the labels the legend shows",
            )
        )
    return out


def lint_files(
    rules: str | Path | None,
    dashboard: str | Path | None,
    catalog: Catalog,
    *,
    dialect: Dialect = PROMETHEUS_3,
) -> list[Finding]:
    """Findings for a rules file (read as ``dialect``'s Prometheus reads it) and a dashboard; the
    dashboard's queries may read the metrics the rules file records."""
    out: list[Finding] = []
    if rules is not None:
        groups = load_rules(rules, check_exprs=False, dialect=dialect)
        out.extend(lint_rules(rules, catalog, groups, dialect))
        recorded = [r for g in groups for r in g.rules if isinstance(r, RecordingRule)]
        catalog = with_recording_rules(catalog, recorded)
    if dashboard is not None:
        out.extend(lint_dashboard(dashboard, catalog))
    return out


# -- recording rules and servers as catalogs ---------------------------------------------------------

_RECORD_PASSES = 3  # rules recorded from rules further down the file settle within a few passes


def _recorded_series(
    cat: Catalog, info: Info, labels: Mapping[str, str]
) -> tuple[dict[str, str], ...] | None:
    """The label sets a recording rule's result has, when the catalog tells (None: unknown)."""
    if info.kept == frozenset():
        return (dict(labels),)
    if info.metric is None or info.metric in cat.opaque or info.metric not in cat.series:
        return None
    found: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
    for s in cat.series[info.metric]:
        if not all(_matcher(m).matches(s.get(m[0], "")) for m in info.matchers):
            continue
        kept = dict(s) if info.kept is ALL else {k: v for k, v in s.items() if k in info.kept}
        kept |= labels
        found.setdefault(tuple(sorted(kept.items())), kept)
    return tuple(found.values())


def with_recording_rules(catalog: Catalog, rules: Sequence[RecordingRule]) -> Catalog:
    """``catalog`` plus the metrics the recording rules define: each ``record:`` name is known,
    with the label sets its expressions keep (each rule's own labels added; several rules may
    record one name) when the catalog gives them, as a gauge (a bare selector keeps its metric's
    type) with the value range its expressions allow."""
    if not rules:
        return catalog
    cat = catalog
    for _ in range(_RECORD_PASSES):
        series: dict[str, list[dict[str, str]]] = {}
        opaque: set[str] = set()
        types: dict[str, str] = {}
        ranges: dict[str, tuple[float, float]] = {}
        for rule in rules:
            name = rule.record
            try:
                info = _Walker(cat, "", rule.expr, []).eval(parse(rule.expr))
            except PromQLError:
                opaque.add(name)
                continue
            found = _recorded_series(cat, info, rule.labels)
            if found is None:
                opaque.add(name)
            else:
                series.setdefault(name, []).extend(found)
            bare = info.metric is not None and not info.chain and info.metric in cat.series
            kind = cat.kind(info.metric) if bare and info.metric else "gauge"
            types[name] = kind if types.get(name, kind) == kind else "gauge"
            lo, hi = ranges.get(name, (info.lo, info.hi))
            ranges[name] = (min(lo, info.lo), max(hi, info.hi))
        known = {k: tuple(v) for k, v in series.items() if k not in opaque}
        cat = replace(
            catalog,
            series={**catalog.series, **known},
            opaque=catalog.opaque | opaque,
            types={**catalog.types, **types},
            ranges={**catalog.ranges, **{k: r for k, r in ranges.items() if r != (-math.inf, math.inf)}},
        )
    return cat


def referenced_metrics(rules: str | Path | None, dashboard: str | Path | None) -> set[str]:
    """Metric names the rules file's and the dashboard's expressions select by name."""
    exprs: list[str] = []
    if rules is not None:
        with contextlib.suppress(RulesError):  # lint_files reports the file's errors
            exprs += [r.expr for g in load_rules(rules, check_exprs=False) for r in g.rules]
    if dashboard is not None:
        exprs += [t.expr for panel in load_dashboard(dashboard)[1] for t in panel.targets]
    names: set[str] = set()
    for text in exprs:
        try:
            names |= metric_names(parse(text))
        except PromQLError:
            continue
    return names


def _types_from_metadata(metadata: Mapping[str, tuple[str, str]], names: set[str]) -> dict[str, str]:
    """Sample names -> counter/gauge from metadata families (``x`` histogram: ``x_bucket``,
    ``x_count``, ``x_sum`` counters; ``x`` counter: ``x`` and ``x_total``; ``unknown``: by name)."""
    types: dict[str, str] = {}
    for family, (mtype, _help) in metadata.items():
        if mtype in ("histogram", "gaugehistogram"):
            counted: tuple[str, ...] = ("_bucket", "_count", "_sum") if mtype == "histogram" else ()
            gauges: tuple[str, ...] = () if mtype == "histogram" else ("_bucket", "_gcount", "_gsum")
        elif mtype == "summary":
            counted, gauges = ("_count", "_sum"), ("",)
        elif mtype == "counter":
            counted, gauges = ("", "_total"), ()
        elif mtype in ("gauge", "info", "stateset"):
            counted, gauges = (), ("", "_info")
        else:
            continue
        for suffix in counted:
            if family + suffix in names:
                types[family + suffix] = "counter"
        for suffix in gauges:
            if family + suffix in names:
                types[family + suffix] = "gauge"
    return types


def catalog_from_server(
    names: Iterable[str],
    series: Iterable[Mapping[str, str]],
    metadata: Mapping[str, tuple[str, str]],
    *,
    scrape_interval_ms: int = 15_000,
) -> Catalog:
    """Catalog from what a server's APIs answered: every metric name, the label sets of the series
    fetched (``__name__`` included), and metadata (family -> (type, help)). A name whose series were
    not fetched is known, its labels unchecked."""
    by_name: dict[str, list[dict[str, str]]] = {}
    for entry in series:
        labels = dict(entry)
        name = labels.pop(METRIC_NAME, "")
        if name:
            by_name.setdefault(name, []).append(labels)
    all_names = set(names) | set(by_name)
    helps = {family: text for family, (_t, text) in metadata.items()}
    enums = {k: v for k, v in _ENUMS.items() if k in all_names}
    enums |= {k: v for k, v in _enums_from_help(helps).items() if k in all_names}
    return Catalog(
        series={k: tuple(v) for k, v in by_name.items()},
        types=_types_from_metadata(metadata, all_names),
        scrape_interval_ms=scrape_interval_ms,
        enums=enums,
        opaque=frozenset(all_names - set(by_name)),
    )


_SERIES_PER_REQUEST = 20  # match[] selectors per /api/v1/series request: URLs stay short


def catalog_from_prometheus(url: str, metrics: Iterable[str], *, timeout: float = 30.0) -> Catalog:
    """Catalog of a Prometheus server: its metric names (``/api/v1/label/__name__/values``), the
    series of ``metrics`` (the names the linted files select; ``/api/v1/series``, 20 names a
    request), types and help (``/api/v1/metadata``), the global scrape interval
    (``/api/v1/status/config``). Every request is bounded by ``timeout`` seconds."""
    from sloanalysis.sources.prometheus import (
        PrometheusClient,
        fetch_metadata,
        fetch_metric_names,
        fetch_scrape_interval_ms,
        fetch_series,
    )

    with PrometheusClient(url, timeout=timeout) as client:
        names = fetch_metric_names(client)
        wanted = sorted(set(metrics) & set(names))
        found: list[dict[str, str]] = []
        for i in range(0, len(wanted), _SERIES_PER_REQUEST):
            chunk = wanted[i : i + _SERIES_PER_REQUEST]
            found += fetch_series(client, ["{" + f"{METRIC_NAME}={json.dumps(n)}" + "}" for n in chunk])
        metadata = fetch_metadata(client)
        interval = fetch_scrape_interval_ms(client)
    return catalog_from_server(names, found, metadata, scrape_interval_ms=interval)


def has_errors(findings: Sequence[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)
