"""A Grafana dashboard for SLOs: per SLO its SLI, burn rate per alert window, budget left and
alert state, as Grafana's dashboard JSON model (``schemaVersion`` 39, Grafana 10/11).

Queries read the series the rules of :func:`~sloanalysis.slo.rulegen.generate_rules` record, in
the same ``style`` (default: each SLO's own, as ``generate-rules``): ``slo:sli_error:ratio_rate<w>``
and ``slo:period_error_budget_remaining:ratio`` selected by ``slo_id`` (native) or ``sloth_id``
(Sloth), and the ``ALERTS`` series of the SLO's alerts (found by ``slo_id``, ``sloth_id`` or
Pyrra's ``slo`` label). A series the rules do not record (Pyrra's own names), or every series with
``recorded=False``, is replaced by the SLI's own query over the window (no rules needed, heavier
over long windows). Burn rates are drawn for the long window of every alert pair the rules use
(:attr:`RuleSet.windows`, :func:`~sloanalysis.slo.rulegen.burn_windows` for native rules), with
the pairs' factors as dashed thresholds.

The data source is the templated variable ``datasource`` (type ``prometheus``), so the file
works both provisioned and imported; queries hold no template variable, so they parse as PromQL.
The ``uid`` is derived from the SLO ids: regenerating the dashboard for the same SLOs replaces it
in Grafana instead of adding a copy.

Layout: one row per SLO (24 columns): two stats (SLI and budget left over the period, 6 columns
each) and the alert state (12), then the SLI and burn rate graphs (12 + 12), then the budget left
graph (24). Calendar SLOs: the recording rules measure a rolling period of the calendar unit's
nominal length; the panels say so (the calendar period's own budget is ``sloanalysis slo``'s).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sloanalysis.durations import format_duration_human, format_duration_ms
from sloanalysis.slo.rulegen import BurnWindow, RuleSet, Style, burn_windows, generate_rules
from sloanalysis.slo.spec import SLO

__all__ = ["SCHEMA_VERSION", "dashboard", "dashboard_uid"]

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_UID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def dashboard_uid(slos: Sequence[SLO]) -> str:
    """``slo-`` and a hash of the SLO ids: stable, at most 40 characters of ``[A-Za-z0-9_-]``."""
    digest = hashlib.sha256("\n".join(sorted(s.id for s in slos)).encode()).hexdigest()[:16]
    return f"slo-{digest}"


def _num(x: float) -> str:
    """A number as PromQL source, to 12 significant digits (Sloth's 99.9 / 100 is 0.999)."""
    x = float(f"{x:.12g}")
    return str(int(x)) if x.is_integer() else repr(x)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class _Queries:
    """The PromQL of one SLO's panels, from its recorded series or its own SLI queries."""

    slo: SLO
    records: set[str]
    recorded: bool
    id_label: str = "slo_id"
    id_value: str = ""

    @property
    def sel(self) -> str:
        return f'{self.id_label}="{_quote(self.id_value or self.slo.id)}"'

    def error_ratio(self, window_ms: int) -> str:
        name = f"slo:sli_error:ratio_rate{format_duration_ms(window_ms)}"
        if self.recorded and name in self.records:
            return f"{name}{{{self.sel}}}"
        return f"({self.slo.error_ratio_expr(window_ms)})"

    def sli(self, window_ms: int) -> str:
        return f"1 - {self.error_ratio(window_ms)}"

    def burn_rate(self, window_ms: int) -> str:
        return f"{self.error_ratio(window_ms)} / (1 - {_num(self.slo.objective)})"

    def budget_left(self) -> str:
        name = "slo:period_error_budget_remaining:ratio"
        if self.recorded and name in self.records:
            return f"{name}{{{self.sel}}}"
        return f"1 - {self.burn_rate(self.slo.period_ms)}"


def _id_labels(slo: SLO) -> tuple[tuple[str, str], ...]:
    """Labels by which generated rules name their SLO: native, Sloth and Pyrra styles."""
    return (("slo_id", slo.id), ("sloth_id", slo.id), ("slo", slo.name))


def _rules_of(rules: RuleSet, slo: SLO) -> tuple[tuple[str, str], list[dict[str, Any]]]:
    """The label naming the SLO in its rules (name, value), and those rules (records and alerts)."""
    every = [r for g in rules.groups for r in g.get("rules", [])]
    for label, value in _id_labels(slo):
        mine = [r for r in every if (r.get("labels") or {}).get(label) == value]
        if mine:  # alerts may carry the label only through their expression's result (Sloth)
            needle = f'{label}="{_quote(value)}"'
            mine += [r for r in every if "alert" in r and r not in mine and needle in str(r.get("expr", ""))]
            return (label, value), mine
    return ("slo_id", slo.id), []


def _target(expr: str, ref: str, legend: str = "") -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def _steps(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


class _Layout:
    """Panel ids (unique, from 1) and rows of the 24-column grid, top to bottom."""

    def __init__(self) -> None:
        self.next_id = 1
        self.y = 0
        self.panels: list[dict[str, Any]] = []

    def add(self, panel: dict[str, Any], x: int, w: int, h: int) -> None:
        panel["id"] = self.next_id
        self.next_id += 1
        panel["gridPos"] = {"h": h, "w": w, "x": x, "y": self.y}
        self.panels.append(panel)

    def newline(self, h: int) -> None:
        self.y += h


def _stat(
    title: str, targets: list[dict[str, Any]], unit: str, thresholds: dict[str, Any], desc: str
) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": desc,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, "decimals": 3, "thresholds": thresholds}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
    }


def _series(
    title: str, targets: list[dict[str, Any]], unit: str, desc: str, **defaults: Any
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DATASOURCE,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit, **defaults}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
    }


def _slo_panels(layout: _Layout, slo: SLO, q: _Queries, alerts: list[str], windows: list[BurnWindow]) -> None:
    """One SLO's row and panels (see the module's docstring for the layout)."""
    period = format_duration_human(slo.period_ms)
    cal = getattr(slo, "calendar", None)
    window_words = f"rolling {period}" + (f" (SLO window: {cal}; its budget: sloanalysis slo)" if cal else "")
    _overview(layout, slo, q, window_words)
    layout.add(_alert_panel(q, alerts), 12, 12, 6)
    layout.newline(6)
    _graphs(layout, slo, q, windows, window_words)


def _overview(layout: _Layout, slo: SLO, q: _Queries, window_words: str) -> None:
    """The SLO's row and its two stats (SLI and budget left)."""
    period = format_duration_human(slo.period_ms)
    o = slo.objective
    layout.add(
        {
            "type": "row",
            "title": f"{slo.service} / {slo.name}: {o * 100:g}% over {period}",
            "collapsed": False,
            "panels": [],
        },
        0,
        24,
        1,
    )
    layout.newline(1)
    layout.add(
        _stat(
            f"SLI ({period})",
            [_target(q.sli(slo.period_ms), "A", "SLI")],
            "percentunit",
            _steps(("red", None), ("green", o)),
            f"Good share over the {window_words}; red below {o:g}.",
        ),
        0,
        6,
        6,
    )
    layout.add(
        _stat(
            "Error budget left",
            [_target(q.budget_left(), "A", "budget left")],
            "percentunit",
            _steps(("red", None), ("orange", 0.0), ("green", 0.25)),
            f"Share of the error budget ({(1 - o) * 100:.3g}%) left over the {window_words}; "
            "below 0: missed.",
        ),
        6,
        6,
        6,
    )


def _alert_panel(q: _Queries, alerts: list[str]) -> dict[str, Any]:
    """The ``ALERTS`` series of the SLO's alerts (1 while pending or firing)."""
    alert_targets = [
        _target(
            f'ALERTS{{alertname="{_quote(a)}", {q.sel}}}', chr(ord("A") + i), "{{alertstate}} {{severity}}"
        )
        for i, a in enumerate(alerts)
    ]
    return _series(
        "Alert state",
        alert_targets,
        "short",
        "1 while the SLO's alerts are pending or firing.",
        min=0,
        max=1,
        custom={"drawStyle": "line", "lineInterpolation": "stepAfter", "fillOpacity": 30},
    )


def _graphs(layout: _Layout, slo: SLO, q: _Queries, windows: list[BurnWindow], window_words: str) -> None:
    """The SLI and burn rate graphs side by side, then the budget left over time."""
    o = slo.objective
    shortest = min(w.short_ms for w in windows)
    sli_targets = [
        _target(q.sli(shortest), "A", f"SLI {format_duration_ms(shortest)}"),
        _target(q.sli(slo.period_ms), "B", f"SLI {format_duration_ms(slo.period_ms)}"),
    ]
    layout.add(
        _series(
            "SLI",
            sli_targets,
            "percentunit",
            f"Objective {o:g}.",
            thresholds=_steps(("red", None), ("green", o)),
            custom={"thresholdsStyle": {"mode": "dashed"}},
        ),
        0,
        12,
        8,
    )
    longs = sorted({w.long_ms: w for w in windows}.values(), key=lambda w: w.long_ms)
    burn_targets = [
        _target(q.burn_rate(w.long_ms), chr(ord("A") + i), f"{format_duration_ms(w.long_ms)} window")
        for i, w in enumerate(longs)
    ]
    factors = sorted({round(w.factor, 6) for w in windows})
    layout.add(
        _series(
            "Burn rate per alert window",
            burn_targets,
            "short",
            "Burn rate over each alert pair's long window; dashed: the pairs' factors "
            + ", ".join(
                f"{w.severity} {format_duration_ms(w.long_ms)}/{format_duration_ms(w.short_ms)} "
                f"at {_num(round(w.factor, 6))}"
                for w in windows
            )
            + ".",
            min=0,
            thresholds=_steps(("green", None), *(("red", f) for f in factors)),
            custom={"thresholdsStyle": {"mode": "dashed"}, "scaleDistribution": {"type": "log", "log": 10}},
        ),
        12,
        12,
        8,
    )
    layout.newline(8)
    layout.add(
        _series(
            "Error budget left",
            [_target(q.budget_left(), "A", "budget left")],
            "percentunit",
            f"Over the {window_words}.",
            thresholds=_steps(("red", None), ("green", 0.0)),
            custom={"thresholdsStyle": {"mode": "line"}},
        ),
        0,
        24,
        7,
    )
    layout.newline(7)


def dashboard(
    slos: Sequence[SLO],
    *,
    title: str = "SLOs",
    rules: RuleSet | None = None,
    style: Style | None = None,
    recorded: bool = True,
    min_long_ms: int = 5 * 60_000,
    min_short_ms: int = 60_000,
) -> dict[str, Any]:
    """The dashboard JSON model (a dict) for ``slos``; ``rules``: the rules it reads (by default
    those :func:`~sloanalysis.slo.rulegen.generate_rules` writes for them in ``style``, with the
    same window floors)."""
    if rules is None:
        rules = generate_rules(slos, min_long_ms=min_long_ms, min_short_ms=min_short_ms, style=style)
    layout = _Layout()
    for slo in slos:
        (label, value), mine = _rules_of(rules, slo)
        q = _Queries(slo, {r["record"] for r in mine if "record" in r}, recorded, label, value)
        alerts = list(dict.fromkeys(r["alert"] for r in mine if "alert" in r))
        windows = rules.windows.get(slo.id) or burn_windows(
            slo.period_ms, min_long_ms=min_long_ms, min_short_ms=min_short_ms
        )
        _slo_panels(layout, slo, q, alerts, windows)
    return {
        "uid": dashboard_uid(slos),
        "title": title,
        "description": "Generated by sloanalysis generate-dashboard. Do not edit: regenerate.",
        "tags": ["slo", "sloanalysis"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "timepicker": {},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                }
            ]
        },
        "panels": layout.panels,
    }
