"""Burn-rate rules as Pyrra generates them (pyrra-dev/pyrra ``slo/rules.go``, ``Windows()``).

Pyrra derives every window from the period, as fractions of 28 days rounded to the minute
(Go's ``Duration.Round``: halves away from zero), with fixed factors and ``for`` durations:

========  ===============  ===============  ======  ===============
severity  long             short            factor  for
========  ===============  ===============  ======  ===============
critical  period / 672     period / 8064    14      period / 20160
critical  period / 112     period / 1344    7       period / 2688
warning   period / 28      period / 336     2       period / 672
warning   period / 7       period / 112     1       period / 224
========  ===============  ===============  ======  ===============

(28 days: 1h/5m for 2m, 6h/30m for 15m, 1d/2h for 1h, 4d/6h for 3h.) One group per SLO, named
after it, evaluated every 30s: ``<metric>:burnrate<w>`` for every window (the total metric
without ``_total``/``_count``; other inputs use the SLO id) labelled ``slo`` plus the SLO's
labels, then one ``ErrorBudgetBurn`` alert per window pair labelled ``short``, ``long``,
``severity`` and ``exhaustion`` (period / factor).

Before it, as Pyrra's ``IncreaseRules`` (default path, ``performanceOverAccuracy`` off), the
``<name>-increase`` group, evaluated every 30s (period under 7d), 1m (14d), 1m30s (21d), 2m
(28d), 2m30s (35d), 3m (42d), 3m30s (49d) or 4m: the period's ``increase`` of each counter the
indicator reads, ``<metric>:increase<period>`` (the metric without ``_total``, ``_count``,
``_bucket``), summed by the grouping plus the labels only the errors/success selector names (not
``le``) plus the total's regex matchers, each followed by its ``SLOMetricAbsent`` alert
(``absent(<selector>) == 1``, severity ``critical``, ``for`` the time the fastest pair needs to
fire at 100 % errors: ``factor * (1 - target) * long`` in whole seconds plus its ``for``, rounded to
the minute). A bool gauge records ``<metric>:count<period>`` and ``:sum<period>``; a native
histogram ``histogram_count`` and the good share, without absent alerts. With two metrics the two
absent alerts have equal labels, as in Pyrra's output (promtool's duplicate-rules lint reports
both the same way). Expressions are printed
as Prometheus's parser prints them (matchers sorted, ``sum by (a, b) (...)``). Only specs read
from Pyrra (:attr:`~sloanalysis.slo.spec.SLO.selectors`) have these; the ``-generic`` group (for
Pyrra's UI) is not generated.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import promql_parser

from sloanalysis.durations import format_duration_ms
from sloanalysis.slo.spec import SLO

__all__ = ["PyrraWindow", "absent_for_ms", "increase_group", "pyrra_groups", "pyrra_windows"]

_NS_PER_MS = 1_000_000
_MINUTE_NS = 60_000 * _NS_PER_MS

# (severity, factor, for divisor, long divisor, short divisor), Go's integer expressions of 28d.
_WINDOWS = (
    ("critical", 14.0, 28 * 24 * (60 // 2), 28 * 24, 28 * 24 * (60 // 5)),
    ("critical", 7.0, 28 * 24 * (60 // 15), 28 * (24 // 6), 28 * 24 * (60 // 30)),
    ("warning", 2.0, 28 * 24, 28, 28 * (24 // 2)),
    ("warning", 1.0, 28 * (24 // 3), 7, 28 * (24 // 6)),
)


@dataclass(frozen=True)
class PyrraWindow:
    severity: str
    long_ms: int
    short_ms: int
    for_ms: int
    factor: float


def _go_round_minute(ns: int) -> int:
    """Go's ``Duration.Round(time.Minute)`` of a non-negative duration: halves away from zero."""
    q, r = divmod(ns, _MINUTE_NS)
    return (q + (1 if 2 * r >= _MINUTE_NS else 0)) * _MINUTE_NS


def pyrra_windows(period_ms: int) -> list[PyrraWindow]:
    """Pyrra's ``Windows(period)``: Go's integer division of nanoseconds, then rounding."""
    period_ns = period_ms * _NS_PER_MS

    def part(divisor: int) -> int:
        return _go_round_minute(period_ns // divisor) // _NS_PER_MS

    return [
        PyrraWindow(sev, part(long_d), part(short_d), part(for_d), factor)
        for sev, factor, for_d, long_d, short_d in _WINDOWS
    ]


def _prefix(slo: SLO) -> str:
    return slo.record_prefix or re.sub(r"[^A-Za-z0-9_:]", "_", slo.id)


def _matchers(slo: SLO) -> str:
    labels = {**slo.labels, "slo": slo.name}
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


# -- the -increase group and the absent alerts ------------------------------------------------

_DAY_MS = 86_400_000
_OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


@dataclass(frozen=True)
class _Selector:
    """A metric selector as Pyrra holds it: the name and its matchers ``(name, op, value)``."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]

    @classmethod
    def parse(cls, text: str) -> _Selector:
        expr = promql_parser.parse(text)
        assert isinstance(expr, promql_parser.VectorSelector)  # the reader checked it is one
        ms = tuple((m.name, _OPS[str(m.op)], m.value) for m in expr.matchers.matchers)
        return cls(str(expr.name), ms)

    @property
    def names(self) -> set[str]:
        """Matcher names, with ``__name__`` (Go's parser keeps a matcher for the metric name)."""
        return {"__name__", *(n for n, _, _ in self.matchers)}

    def text(self) -> str:
        """As Go's ``VectorSelector.String``: the name, then the matchers sorted as strings."""
        inner = sorted(f"{n}{op}{json.dumps(v, ensure_ascii=False)}" for n, op, v in self.matchers)
        return f"{self.name}{{{','.join(inner)}}}" if inner else self.name

    def equal_labels(self) -> dict[str, str]:
        return {n: v for n, op, v in self.matchers if op == "="}

    def regex_names(self) -> set[str]:
        return {n for n, op, _ in self.matchers if op in ("=~", "!~")}


def _go_float(x: float) -> str:
    """Go's ``strconv.FormatFloat(x, 'f', -1, 64)`` (and ``%g`` for ordinary magnitudes)."""
    return np.format_float_positional(x, trim="-")


def _sum(grouping: list[str], inner: str) -> str:
    return f"sum by ({', '.join(grouping)}) ({inner})" if grouping else f"sum({inner})"


def _increase_name(metric: str, period_ms: int) -> str:
    base = metric.removesuffix("_total").removesuffix("_count").removesuffix("_bucket")
    return f"{base}:increase{format_duration_ms(period_ms)}"


def _increase_interval(period_ms: int) -> str:
    """Pyrra's ``increaseInterval``: 30s under 7 days, then 30s more for every further week, to 4m."""
    weeks = min(period_ms // (7 * _DAY_MS), 7)
    return format_duration_ms(30_000 * (weeks + 1))


def absent_for_ms(slo: SLO) -> int:
    """Pyrra's ``AbsentDuration``: how long the fastest pair needs to fire when every request fails
    (``factor * (1 - target) * long``, truncated to whole seconds as Go's conversion does), plus
    that pair's ``for``, rounded to the minute."""
    w = pyrra_windows(slo.period_ms)[0]
    seconds = int(w.factor * (1 - slo.objective) * (w.long_ms / 1000))
    return _go_round_minute((seconds * 1000 + w.for_ms) * _NS_PER_MS) // _NS_PER_MS


def _absent(slo: SLO, sel: _Selector, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "alert": "SLOMetricAbsent",
        "expr": f"absent({sel.text()}) == 1",
        "for": format_duration_ms(absent_for_ms(slo)),
        "labels": {**labels, "severity": "critical"},
    }


def _common_labels(slo: SLO, total: _Selector, drop: set[str]) -> dict[str, str]:
    """``slo``, the propagated metadata labels and the total's equality matchers, less ``drop``."""
    labels = {**slo.labels, "slo": slo.name, **total.equal_labels()}
    return {k: v for k, v in sorted(labels.items()) if k not in drop}


def _counter_rules(slo: SLO, total: _Selector, other: _Selector, role: str) -> list[dict[str, Any]]:
    """Ratio (``other`` the errors) and latency (``other`` the success bucket) indicators."""
    extra = other.names - total.names - {"le"}
    grouping = sorted(set(slo.grouping) | extra | total.regex_names())
    labels = _common_labels(slo, total, set(grouping))
    window = format_duration_ms(slo.period_ms)
    absent = slo.selectors.get("absent") != "false"

    def record(sel: _Selector, rule_labels: dict[str, str]) -> dict[str, Any]:
        expr = _sum(grouping, f"increase({sel.text()}[{window}])")
        return {"record": _increase_name(sel.name, slo.period_ms), "expr": expr, "labels": rule_labels}

    if role == "errors":
        rules = [record(total, labels)]
        if absent:
            rules.append(_absent(slo, total, labels))
        if other.name != total.name:
            rules.append(record(other, labels))
            if absent:
                rules.append(_absent(slo, other, labels))
        return rules
    le = next((v for n, _, v in other.matchers if n == "le"), "")
    with_le = {**labels, "le": le}
    rules = [record(total, labels), record(other, with_le)]
    if absent:
        rules += [_absent(slo, total, labels), _absent(slo, other, with_le)]
    return rules


def _gauge_rules(slo: SLO, gauge: _Selector) -> list[dict[str, Any]]:
    grouping = sorted(set(slo.grouping) | gauge.names)
    labels = _common_labels(slo, gauge, set(grouping))
    window = format_duration_ms(slo.period_ms)
    rules: list[dict[str, Any]] = [
        {
            "record": f"{gauge.name}:{fn}{window}",
            "expr": _sum(grouping, f"{fn}_over_time({gauge.text()}[{window}])"),
            "labels": labels,
        }
        for fn in ("count", "sum")
    ]
    if slo.selectors.get("absent") != "false":
        rules.append(_absent(slo, gauge, labels))
    return rules


def _native_rules(slo: SLO, native: _Selector, latency: float) -> list[dict[str, Any]]:
    labels = _common_labels(slo, native, set())
    name = _increase_name(native.name, slo.period_ms)
    hist = _sum(list(slo.grouping), f"increase({native.text()}[{format_duration_ms(slo.period_ms)}])")
    good = f"histogram_fraction(0, {_go_float(latency)}, {hist}) * histogram_count({hist})"
    return [
        {"record": name, "expr": f"histogram_count({hist})", "labels": labels},
        {"record": name, "expr": good, "labels": {**labels, "le": _go_float(latency)}},
    ]


def increase_group(slo: SLO) -> dict[str, Any] | None:
    """Pyrra's ``<name>-increase`` group for a spec read from Pyrra; None for other specs."""
    sel = {k: _Selector.parse(v) for k, v in slo.selectors.items() if k not in ("latency", "absent")}
    if "errors" in sel:
        rules = _counter_rules(slo, sel["total"], sel["errors"], "errors")
    elif "success" in sel:
        rules = _counter_rules(slo, sel["total"], sel["success"], "success")
    elif "gauge" in sel:
        rules = _gauge_rules(slo, sel["gauge"])
    elif "native" in sel:
        rules = _native_rules(slo, sel["native"], float(slo.selectors["latency"]))
    else:
        return None
    return {"name": f"{slo.name}-increase", "interval": _increase_interval(slo.period_ms), "rules": rules}


def pyrra_groups(slo: SLO) -> list[dict[str, Any]]:
    """Pyrra's groups for ``slo``: the ``-increase`` group (specs read from Pyrra), then the
    burn-rate group: recording rules, then one alert per window pair."""
    increase = increase_group(slo)
    return ([increase] if increase is not None else []) + [_burnrate_group(slo)]


def _burnrate_group(slo: SLO) -> dict[str, Any]:
    windows = pyrra_windows(slo.period_ms)
    prefix, base = _prefix(slo), {"slo": slo.name, **slo.labels}
    rules: list[dict[str, Any]] = []
    for window_ms in sorted({w.long_ms for w in windows} | {w.short_ms for w in windows}):
        record = f"{prefix}:burnrate{format_duration_ms(window_ms)}"
        rules.append({"record": record, "expr": slo.error_ratio_expr(window_ms), "labels": dict(base)})
    if slo.alerting.page or slo.alerting.ticket:
        target, m = repr(slo.objective), _matchers(slo)
        for w in windows:
            thr = f"({w.factor:.0f} * (1 - {target}))"
            short = f"{prefix}:burnrate{format_duration_ms(w.short_ms)}{m}"
            long = f"{prefix}:burnrate{format_duration_ms(w.long_ms)}{m}"
            labels = {
                **base,
                "short": format_duration_ms(w.short_ms),
                "long": format_duration_ms(w.long_ms),
                "severity": w.severity,
                "exhaustion": format_duration_ms(int(slo.period_ms / w.factor) // 1000 * 1000),
            }
            rules.append(
                {
                    "alert": slo.alerting.name or "ErrorBudgetBurn",
                    "expr": f"{short} > {thr} and {long} > {thr}",
                    "for": format_duration_ms(w.for_ms),
                    "labels": labels,
                }
            )
    return {"name": slo.name, "interval": "30s", "rules": rules}
