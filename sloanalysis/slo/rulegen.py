"""Prometheus recording rules and multi-window multi-burn-rate (MWMB) alerts for SLOs.

Three styles (:data:`STYLES`), chosen per call or by the format the SLO came from
(:func:`default_style`): ``sloth`` writes exactly what Sloth writes
(:mod:`sloanalysis.slo.styles.sloth`), ``pyrra`` Pyrra's burn-rate group
(:mod:`sloanalysis.slo.styles.pyrra`), ``native`` this module's rules, described below. The
project's own format and OpenSLO default to ``native``: it keeps every pair's budget share for
any period (Sloth has windows for 28 and 30 days only).

The alert policy is the SRE Workbook's ("Alerting on SLOs", approach 6) as Sloth ships it, for
a 30-day period:

=========  ===========  ============  ===========  =============================
severity   long window  short window  burn factor  budget spent in long window
=========  ===========  ============  ===========  =============================
page       1h           5m            14.4         2 %
page       6h           30m           6            5 %
ticket     1d           2h            3            10 %
ticket     3d           6h            1            10 %
=========  ===========  ============  ===========  =============================

Each pair fires when the error ratio over *both* windows exceeds ``factor * (1 - objective)``;
the pairs of one severity are joined by ``or``.

Scaling to other periods (:func:`burn_windows`). What must stay the same is the *fraction of the
budget* a pair stands for (2 %, 5 %, 10 %, 10 %): burning at ``factor`` for ``long`` spends
``factor * long / period`` of the budget. So:

1. windows scale with the period: ``long = long_30d * period / 30d`` (same for ``short``),
   rounded to whole seconds;
2. windows have a floor, because a ``rate()`` needs several scrapes and a page on two minutes of
   data is noise: long windows at least ``min_long_ms`` (5 m), short ones at least
   ``min_short_ms`` (1 m) and never longer than their long window;
3. the factor is then computed from the window actually used:
   ``factor = budget_fraction * period / long``.

Unclamped windows keep the 30-day factors exactly (7 days: 14m/1m10s at 14.4, ...). Clamped
windows get a lower factor, so they still fire after the same budget fraction: for a 24-hour
SLO the first page pair is 5m/1m at ``0.02 * 1440 / 5 = 5.76`` (not 2m/10s at 14.4). This is
Pyrra's approach (windows proportional to the period) combined with Sloth's (the factor is what
a window's budget fraction implies), plus the floor. A factor for which
``factor * (1 - objective) >= 1`` can never fire (the error ratio cannot exceed 1);
:func:`generate_rules` reports it as a warning.

Recording rules, named as Sloth names them so that its dashboards work: per SLO and window
``slo:sli_error:ratio_rate<window>`` (all windows of the policy, the period, the threshold
alert's window), and ``slo:objective:ratio``, ``slo:error_budget:ratio``,
``slo:time_period:days``, ``slo:current_burn_rate:ratio`` (over the shortest short window),
``slo:period_burn_rate:ratio``, ``slo:period_error_budget_remaining:ratio``. Time-slice SLIs first
record their indicator as ``slo:sli_good:timeslice`` in a group evaluated every slice, and their
windows average it. Labels: ``slo_id``, ``slo_service``, ``slo_name``, ``slo_window`` and the
spec's labels. Zero traffic gives ``0/0 = NaN`` error ratios, which compare false: no alert.

The seed's own alert thresholds ("availability < 99.5 %", "P95 > 60 s") become one extra alert
per SLO, ``<name>Threshold``, over ``threshold.window`` with ``for: threshold.for``, so a backtest
can compare them with the burn-rate alerts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import yaml

from sloanalysis.durations import format_duration_ms
from sloanalysis.slo.spec import SLO, LatencySLI, TimesliceSLI
from sloanalysis.slo.styles.pyrra import pyrra_groups, pyrra_windows
from sloanalysis.slo.styles.sloth import sloth_groups, sloth_windows

__all__ = [
    "BASE_PERIOD_MS",
    "BASE_POLICY",
    "STYLES",
    "BurnWindow",
    "RuleSet",
    "Style",
    "alert_windows",
    "burn_windows",
    "default_style",
    "dump_rules",
    "generate_rules",
    "style_windows",
]

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
BASE_PERIOD_MS = 30 * DAY_MS
DEFAULT_MIN_LONG_MS = 5 * MINUTE_MS
DEFAULT_MIN_SHORT_MS = MINUTE_MS

Severity = Literal["page", "ticket"]
Style = Literal["sloth", "pyrra", "native"]
STYLES: tuple[str, ...] = ("sloth", "pyrra", "native")
_ORIGIN_STYLES: dict[str, Style] = {
    "prometheus/v1": "sloth",
    "sloth.slok.dev/v1": "sloth",
    "openslo/v1alpha": "sloth",
    "pyrra.dev/v1alpha1": "pyrra",
}

BASE_POLICY: tuple[tuple[Severity, int, int, Fraction], ...] = (
    ("page", HOUR_MS, 5 * MINUTE_MS, Fraction(2, 100)),
    ("page", 6 * HOUR_MS, 30 * MINUTE_MS, Fraction(5, 100)),
    ("ticket", DAY_MS, 2 * HOUR_MS, Fraction(10, 100)),
    ("ticket", 3 * DAY_MS, 6 * HOUR_MS, Fraction(10, 100)),
)
"""(severity, long window, short window, budget fraction) for the 30-day base period."""


@dataclass(frozen=True)
class BurnWindow:
    """One long/short window pair of the MWMB policy."""

    severity: Severity
    long_ms: int
    short_ms: int
    factor: float
    budget_fraction: float
    for_ms: int = 0
    """The alert's ``for`` (Pyrra's windows have one; the others fire at once)."""

    def threshold(self, objective: float) -> float:
        """Error ratio above which both windows must be for the pair to fire."""
        return self.factor * (1.0 - objective)


def _scale(window_ms: int, period_ms: int) -> int:
    """``window * period / 30d`` rounded to whole seconds (at least one second)."""
    exact = Fraction(window_ms) * Fraction(period_ms, BASE_PERIOD_MS)
    return max(SECOND_MS, round(exact / SECOND_MS) * SECOND_MS)


def burn_windows(
    period_ms: int,
    *,
    min_long_ms: int = DEFAULT_MIN_LONG_MS,
    min_short_ms: int = DEFAULT_MIN_SHORT_MS,
    policy: Sequence[tuple[Severity, int, int, Fraction]] = BASE_POLICY,
) -> list[BurnWindow]:
    """The policy's window pairs for ``period_ms``: scaled windows, floors, budget-preserving factors."""
    if period_ms <= 0:
        raise ValueError("period must be positive")
    out = []
    for severity, long_base, short_base, fraction in policy:
        long_ms = max(_scale(long_base, period_ms), min_long_ms)
        short_ms = min(max(_scale(short_base, period_ms), min_short_ms), long_ms)
        factor = float(fraction * Fraction(period_ms, long_ms))
        out.append(BurnWindow(severity, long_ms, short_ms, factor, float(fraction)))
    return out


@dataclass
class RuleSet:
    """Rule groups (as Prometheus's rule file structure) plus warnings and the chosen windows."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    windows: dict[str, list[BurnWindow]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"groups": self.groups}


def _num(x: float) -> str:
    """A float as PromQL source: shortest repr, integers without ``.0``."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _selector(slo: SLO) -> str:
    return f'slo_id="{slo.id}"'


def _record_name(window_ms: int) -> str:
    return f"slo:sli_error:ratio_rate{format_duration_ms(window_ms)}"


def _base_labels(slo: SLO) -> dict[str, str]:
    return {**slo.labels, "slo_id": slo.id, "slo_service": slo.service, "slo_name": slo.name}


def _budget(slo: SLO) -> str:
    return f"(1 - {_num(slo.objective)})"


def _pair_expr(slo: SLO, w: BurnWindow) -> str:
    sel = _selector(slo)
    thr = f"({_num(w.factor)} * {_budget(slo)})"
    return (
        f"(\n"
        f"  max without (slo_window) ({_record_name(w.short_ms)}{{{sel}}} > {thr})\n"
        f"  and\n"
        f"  max without (slo_window) ({_record_name(w.long_ms)}{{{sel}}} > {thr})\n"
        f")"
    )


def _threshold_alert(slo: SLO, recorded: set[int]) -> dict[str, Any] | None:
    t = slo.alerting.threshold
    if t is None:
        return None
    sel = _selector(slo)
    w = format_duration_ms(t.window_ms)
    if t.kind == "sli_below":
        expr = f"{_record_name(t.window_ms)}{{{sel}}} > (1 - {_num(t.value)})"
        assert t.window_ms in recorded
        summary = f"{slo.name}: SLI over {w} below {t.value:g}"
    else:
        sli = slo.sli
        assert isinstance(sli, LatencySLI)
        q = sli.quantile if sli.quantile is not None else slo.objective
        expr = (
            f"1 - (\n  {sli.bucket_expr(t.value, t.window_ms)}\n  /\n  {sli.total_expr(t.window_ms)}\n)"
            f" > (1 - {_num(q)})"
        )
        summary = f"{slo.name}: P{q * 100:g} latency over {w} above {t.value:g}s"
    rule: dict[str, Any] = {"alert": f"{slo.alerting.name}Threshold", "expr": expr}
    if t.for_ms:
        rule["for"] = format_duration_ms(t.for_ms)
    rule["labels"] = {
        **slo.labels,
        **slo.alerting.labels,
        "severity": "warning",
        "slo_id": slo.id,
        "slo_severity": "threshold",
    }
    rule["annotations"] = {
        **slo.alerting.annotations,
        "summary": summary,
        "description": "Threshold alert as the seed's SLO table writes it (not budget-based).",
    }
    return rule


def _alert(slo: SLO, severity: Severity, pairs: list[BurnWindow]) -> dict[str, Any]:
    a = slo.alerting
    extra_labels = a.page_labels if severity == "page" else a.ticket_labels
    extra_ann = a.page_annotations if severity == "page" else a.ticket_annotations
    expr = "\nor\n".join(_pair_expr(slo, w) for w in pairs)
    windows = ", ".join(
        f"{format_duration_ms(w.long_ms)}/{format_duration_ms(w.short_ms)} at {_num(w.factor)}" for w in pairs
    )
    labels = {
        **slo.labels,
        **a.labels,
        "severity": severity,
        **extra_labels,
        "slo_id": slo.id,
        "slo_severity": severity,
    }
    annotations = {
        "summary": f"{slo.name}: error budget burning too fast ({severity})",
        "description": (
            f"Objective {slo.objective:g} over {format_duration_ms(slo.period_ms)}; "
            f"burn-rate windows {windows}."
        ),
        **a.annotations,
        **extra_ann,
    }
    return {"alert": a.name, "expr": expr, "labels": labels, "annotations": annotations}


def _slo_groups(slo: SLO, windows: list[BurnWindow]) -> list[dict[str, Any]]:
    base = _base_labels(slo)
    recorded = {w.long_ms for w in windows} | {w.short_ms for w in windows} | {slo.period_ms}
    if slo.alerting.threshold is not None and slo.alerting.threshold.kind == "sli_below":
        recorded.add(slo.alerting.threshold.window_ms)
    sli_rules: list[dict[str, Any]] = []
    sli_group: dict[str, Any] = {"name": f"sloanalysis-sli-recordings-{slo.id}"}
    if isinstance(slo.sli, TimesliceSLI):
        sli_group["interval"] = format_duration_ms(slo.sli.slice_ms)
        sli_rules.append(
            {"record": "slo:sli_good:timeslice", "expr": slo.sli.indicator_expr(), "labels": base}
        )
    for window in sorted(recorded):
        if isinstance(slo.sli, TimesliceSLI):
            expr = (
                f"1 - avg_over_time(slo:sli_good:timeslice{{{_selector(slo)}}}[{format_duration_ms(window)}])"
            )
        else:
            expr = slo.error_ratio_expr(window)
        sli_rules.append(
            {
                "record": _record_name(window),
                "expr": expr,
                "labels": {**base, "slo_window": format_duration_ms(window)},
            }
        )
    sli_group["rules"] = sli_rules

    sel = _selector(slo)
    shortest = min(recorded)
    meta = {
        "name": f"sloanalysis-meta-recordings-{slo.id}",
        "rules": [
            {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})", "labels": base},
            {"record": "slo:error_budget:ratio", "expr": f"vector{_budget(slo)}", "labels": base},
            {
                "record": "slo:time_period:days",
                "expr": f"vector({_num(slo.period_ms / DAY_MS)})",
                "labels": base,
            },
            {
                "record": "slo:current_burn_rate:ratio",
                "expr": f"{_record_name(shortest)}{{{sel}}} / {_budget(slo)}",
                "labels": base,
            },
            {
                "record": "slo:period_burn_rate:ratio",
                "expr": f"{_record_name(slo.period_ms)}{{{sel}}} / {_budget(slo)}",
                "labels": base,
            },
            {
                "record": "slo:period_error_budget_remaining:ratio",
                "expr": f"1 - slo:period_burn_rate:ratio{{{sel}}}",
                "labels": base,
            },
        ],
    }
    alerts: list[dict[str, Any]] = []
    for severity, wanted in (("page", slo.alerting.page), ("ticket", slo.alerting.ticket)):
        pairs = [w for w in windows if w.severity == severity]
        if wanted and pairs:
            alerts.append(_alert(slo, severity, pairs))  # type: ignore[arg-type]
    threshold = _threshold_alert(slo, recorded)
    if threshold is not None:
        alerts.append(threshold)
    groups = [sli_group, meta]
    if alerts:
        groups.append({"name": f"sloanalysis-alerts-{slo.id}", "rules": alerts})
    return groups


def default_style(slo: SLO) -> Style:
    """The style of the tool the spec came from: Sloth specs ``sloth``, Pyrra's ``pyrra``, the
    project's own format and OpenSLO ``native``."""
    return _ORIGIN_STYLES.get(slo.origin, "native")


def _tool_windows(slo: SLO, style: Style) -> list[BurnWindow]:
    """The windows of the Sloth or Pyrra style as :class:`BurnWindow` (for the header)."""
    return style_windows(slo.period_ms, style)


def style_windows(
    period_ms: int,
    style: Style,
    *,
    min_long_ms: int = DEFAULT_MIN_LONG_MS,
    min_short_ms: int = DEFAULT_MIN_SHORT_MS,
) -> list[BurnWindow]:
    """The window pairs ``style``'s rules alert on for a period (no spec needed: ``alert-table``)."""
    if style == "native":
        return burn_windows(period_ms, min_long_ms=min_long_ms, min_short_ms=min_short_ms)
    if style == "sloth":
        return [
            BurnWindow(w.severity, w.long_ms, w.short_ms, w.factor, w.budget_percent / 100)  # type: ignore[arg-type]
            for w in sloth_windows(period_ms)
        ]
    return [
        BurnWindow(
            "page" if w.severity == "critical" else "ticket",
            w.long_ms,
            w.short_ms,
            w.factor,
            w.factor * w.long_ms / period_ms,
            w.for_ms,
        )
        for w in pyrra_windows(period_ms)
    ]


def alert_windows(
    slo: SLO,
    style: Style | None = None,
    *,
    min_long_ms: int = DEFAULT_MIN_LONG_MS,
    min_short_ms: int = DEFAULT_MIN_SHORT_MS,
) -> list[BurnWindow]:
    """The window pairs the rules of ``style`` (None: the SLO's default) alert on for ``slo``."""
    chosen = style or default_style(slo)
    if chosen == "native":
        return burn_windows(slo.period_ms, min_long_ms=min_long_ms, min_short_ms=min_short_ms)
    return _tool_windows(slo, chosen)


def generate_rules(
    slos: Sequence[SLO],
    *,
    min_long_ms: int = DEFAULT_MIN_LONG_MS,
    min_short_ms: int = DEFAULT_MIN_SHORT_MS,
    style: Style | None = None,
) -> RuleSet:
    """Rule groups for every SLO in ``style`` (None: each SLO's :func:`default_style`).

    ``native``: three groups each, described above; ``sloth``: :mod:`sloanalysis.slo.styles.sloth`;
    ``pyrra``: :mod:`sloanalysis.slo.styles.pyrra`."""
    out = RuleSet()
    for slo in slos:
        chosen = style or default_style(slo)
        if chosen != "native":
            out.windows[slo.id] = _tool_windows(slo, chosen)
            out.groups.extend(sloth_groups(slo) if chosen == "sloth" else pyrra_groups(slo))
            continue
        windows = burn_windows(slo.period_ms, min_long_ms=min_long_ms, min_short_ms=min_short_ms)
        out.windows[slo.id] = windows
        for w in windows:
            if w.threshold(slo.objective) >= 1.0:
                pair = f"{format_duration_ms(w.long_ms)}/{format_duration_ms(w.short_ms)}"
                out.warnings.append(
                    f"{slo.id}: {w.severity} pair {pair}"
                    f" at burn factor {_num(w.factor)} can never fire: it needs an error ratio of"
                    f" {w.threshold(slo.objective):g} (objective {slo.objective:g})"
                )
            if w.long_ms > slo.period_ms:
                out.warnings.append(
                    f"{slo.id}: window {format_duration_ms(w.long_ms)} is longer than the period"
                    f" {format_duration_ms(slo.period_ms)}"
                )
        out.groups.extend(_slo_groups(slo, windows))
    return out


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, no anchors; a private dumper so nothing global changes."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def _header(rules: RuleSet, source: str) -> str:
    lines = [f"# Generated by sloanalysis generate-rules from {source}. Do not edit.", "#"]
    for slo_id, windows in rules.windows.items():
        parts = ", ".join(
            f"{w.severity} {format_duration_ms(w.long_ms)}/{format_duration_ms(w.short_ms)}@{_num(w.factor)}"
            for w in windows
        )
        lines.append(f"# {slo_id}: {parts}")
    lines.extend(f"# WARNING: {w}" for w in rules.warnings)
    return "\n".join(lines) + "\n"


def dump_rules(rules: RuleSet, fmt: Literal["yaml", "json"] = "yaml", source: str = "SLO files") -> str:
    """The rule file text: YAML (with a comment header naming windows and factors) or JSON."""
    if fmt == "json":
        return json.dumps(rules.as_dict(), indent=2) + "\n"
    body = yaml.dump(rules.as_dict(), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return _header(rules, source) + body
