"""The six alerting approaches of the SRE Workbook's "Alerting on SLOs", analytically.

For an objective ``o`` (error budget ``eps = 1 - o``), a period ``P`` and a step incident that
starts at t = 0 with a constant error rate ``e`` (burn rate ``b = e / eps``), a rule that alerts
when the error ratio over a window ``w`` exceeds ``k * eps`` (``k`` the burn factor):

- sees the window's error ratio grow as ``e * t / w`` (t <= w), so it becomes true at
  ``t = w * k / b`` and only if ``b > k``; a ``for: f`` clause adds ``f``;
- **detection time**: that instant (the earliest over the rules of one alert); in practice up to
  one scrape interval (the errors must be scraped) and one rule-evaluation interval later
  (``detection_max_ms``);
- **budget consumed at detection**: ``b * t_detect / P`` of the period's budget (for a pure burn-
  rate rule ``k * w / P`` whatever ``e``: 2 % for 1h at 14.4 over 30 days);
- **reset time**: after a sustained incident (longer than every window) ends, a window's ratio
  falls as ``e * (w - tau) / w`` and the rule clears at ``tau = w * (1 - k / b)``. The same holds
  for an incident that lasted just long enough to fire the rule. A multiwindow pair clears when
  its short window clears; an alert clears when every rule that fired has cleared (``for`` does
  not delay resolution);
- a burn rate equal to ``k`` (up to float rounding) does not fire: the comparison is strict;
- **largest burn rate that never alerts**: a constant burn ``b <= k`` never makes ``e > k * eps``,
  so it is the smallest ``k`` of the alert's rules.

The approaches (windows of 2, 4, 5 and 6 follow the period as :mod:`sloanalysis.slo.rulegen` scales
them, or are those of another rule style, ``windows``: Sloth's keep 1h/5m ... and scale the
factors, Pyrra's add a ``for`` to each pair; 1 and 3 use the Workbook's fixed windows):

1. target error rate >= SLO threshold: ratio over 10m > eps;
2. increased alert window: ratio over 5 % of the period (36h for 30 days) > eps;
3. incrementing alert duration: ratio over 1m > eps for 1h;
4. alert on burn rate: ratio over the first page window (1h) > 14.4 eps (2 % of the budget);
5. multiple burn rates: page on the long page windows (1h at 14.4, 6h at 6), ticket on the long
   ticket windows (1d at 3, 3d at 1);
6. multiwindow, multi-burn-rate: 5 with each long window paired with its short window (1/12).

Measured values (``--simulate``): :func:`alert_table` takes an optional ``simulate`` callable
that receives the :class:`Approach`, the severity and the error rate and returns a
:class:`Measured`; its values appear in ``sim_*`` columns beside the analytic ones. Each
approach renders its own Prometheus alert rules over any SLI (:meth:`Approach.alert_rules`), so
a rule-evaluation engine can run step incidents through exactly these rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sloanalysis.durations import format_duration_ms, parse_duration_ms
from sloanalysis.slo.rulegen import (
    DEFAULT_MIN_LONG_MS,
    DEFAULT_MIN_SHORT_MS,
    BurnWindow,
    burn_windows,
)

__all__ = [
    "ERROR_RATES",
    "Approach",
    "Measured",
    "Rule",
    "alert_table",
    "approaches",
    "evaluate",
    "step_incident_simulator",
]

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
ERROR_RATES: tuple[float, ...] = (1.0, 0.1, 0.01, 0.001)
_EQUAL = 1e-9
"""Relative tolerance: a burn rate equal to a factor up to float rounding (0.001 / (1 - 0.999))
counts as equal, and ``error ratio > factor * eps`` is then false, as it is exactly."""
Severity = Literal["page", "ticket"]


@dataclass(frozen=True)
class Rule:
    """Alert when the error ratio over ``window_ms`` (and ``short_ms``, if set) exceeds ``factor * eps``."""

    window_ms: int
    factor: float
    short_ms: int | None = None
    for_ms: int = 0

    def describe(self) -> str:
        w = format_duration_ms(self.window_ms)
        if self.short_ms is not None:
            w += f"/{format_duration_ms(self.short_ms)}"
        text = f"{w} > {self.factor:g}x"
        return text + (f" for {format_duration_ms(self.for_ms)}" if self.for_ms else "")

    def detection_ms(self, burn: float) -> float | None:
        """Time from the start of a constant burn to the rule firing; None if it never fires."""
        if burn <= self.factor * (1.0 + _EQUAL):
            return None
        return self.window_ms * self.factor / burn + self.for_ms

    def reset_ms(self, burn: float) -> float:
        """Time from the end of a sustained incident at ``burn`` to the rule clearing."""
        w = self.short_ms if self.short_ms is not None else self.window_ms
        return w * (1.0 - self.factor / burn)


@dataclass(frozen=True)
class Approach:
    """One of the six approaches: its rules per severity."""

    number: int
    name: str
    rules: dict[Severity, tuple[Rule, ...]]

    def alert_rules(
        self, error_ratio_expr: Callable[[int], str], objective: float, name: str
    ) -> list[dict[str, Any]]:
        """Prometheus alerting rules of this approach over an SLI (``error_ratio_expr(window_ms)``):
        one per severity, or one per pair when the pairs' ``for`` differ (Pyrra's)."""
        eps = f"(1 - {objective!r})"
        out: list[dict[str, Any]] = []
        for severity, rules in self.rules.items():
            fors = {r.for_ms for r in rules}
            for batch in [rules] if len(fors) == 1 else [(r,) for r in rules]:
                parts = []
                for r in batch:
                    cond = f"({error_ratio_expr(r.window_ms)}) > ({r.factor!r} * {eps})"
                    if r.short_ms is not None:
                        cond = f"({cond})\nand\n(({error_ratio_expr(r.short_ms)}) > ({r.factor!r} * {eps}))"
                    parts.append(f"({cond})")
                rule: dict[str, Any] = {
                    "alert": f"{name}Approach{self.number}",
                    "expr": "\nor\n".join(parts),
                    "labels": {"severity": severity, "approach": str(self.number)},
                }
                if batch[0].for_ms:
                    rule["for"] = format_duration_ms(batch[0].for_ms)
                out.append(rule)
        return out


def approaches(
    period_ms: int,
    *,
    min_long_ms: int = DEFAULT_MIN_LONG_MS,
    min_short_ms: int = DEFAULT_MIN_SHORT_MS,
    windows: Sequence[BurnWindow] | None = None,
) -> list[Approach]:
    """The six approaches for ``period_ms``: burn-rate windows scaled as :func:`burn_windows` does,
    or ``windows`` (a rule style's, :func:`~sloanalysis.slo.rulegen.style_windows`)."""
    pairs = list(windows or burn_windows(period_ms, min_long_ms=min_long_ms, min_short_ms=min_short_ms))
    page = [w for w in pairs if w.severity == "page"]
    ticket = [w for w in pairs if w.severity == "ticket"]
    wide = max(MINUTE_MS, round(period_ms * 0.05))
    return [
        Approach(1, "target error rate >= SLO threshold", {"page": (Rule(10 * MINUTE_MS, 1.0),)}),
        Approach(2, "increased alert window", {"page": (Rule(wide, 1.0),)}),
        Approach(3, "incrementing alert duration", {"page": (Rule(MINUTE_MS, 1.0, for_ms=HOUR_MS),)}),
        Approach(4, "alert on burn rate", {"page": (Rule(page[0].long_ms, page[0].factor),)}),
        Approach(
            5,
            "multiple burn rates",
            {
                "page": tuple(Rule(w.long_ms, w.factor) for w in page),
                "ticket": tuple(Rule(w.long_ms, w.factor) for w in ticket),
            },
        ),
        Approach(
            6,
            "multiwindow, multi-burn-rate",
            {
                "page": tuple(Rule(w.long_ms, w.factor, w.short_ms, w.for_ms) for w in page),
                "ticket": tuple(Rule(w.long_ms, w.factor, w.short_ms, w.for_ms) for w in ticket),
            },
        ),
    ]


@dataclass(frozen=True)
class Measured:
    """What a simulation measured for one approach, severity and error rate (None: never)."""

    detection_ms: float | None
    budget_consumed: float | None
    reset_ms: float | None


def evaluate(rules: Sequence[Rule], burn: float, period_ms: int) -> dict[str, Any]:
    """Analytic detection, budget at detection, reset and quiet burn rate of one alert's rules."""
    fired = [(r.detection_ms(burn), r) for r in rules]
    hits = [(t, r) for t, r in fired if t is not None]
    quiet = min(r.factor for r in rules)
    if not hits:
        return {"detected": False, "detection_ms": None, "budget_consumed": None, "reset_ms": None,
                "first_rule": None, "max_quiet_burn_rate": quiet}  # fmt: skip
    t, first = min(hits, key=lambda h: h[0])
    return {
        "detected": True,
        "detection_ms": t,
        "budget_consumed": burn * t / period_ms,
        "reset_ms": max(r.reset_ms(burn) for _, r in hits),
        "first_rule": first.describe(),
        "max_quiet_burn_rate": quiet,
    }


Simulate = Callable[[Approach, Severity, float], Measured]


def alert_table(
    objective: float,
    period_ms: int,
    *,
    error_rates: Sequence[float] = ERROR_RATES,
    scrape_interval_ms: int = 15_000,
    evaluation_interval_ms: int = 30_000,
    min_long_ms: int = DEFAULT_MIN_LONG_MS,
    min_short_ms: int = DEFAULT_MIN_SHORT_MS,
    simulate: Simulate | None = None,
    windows: Sequence[BurnWindow] | None = None,
) -> list[dict[str, Any]]:
    """One row per approach, severity and error rate (values unrounded; durations in ms);
    ``windows``: a rule style's window pairs instead of the native ones (:func:`approaches`)."""
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective must lie in (0, 1), got {objective!r}")
    eps = 1.0 - objective
    rows: list[dict[str, Any]] = []
    for approach in approaches(
        period_ms, min_long_ms=min_long_ms, min_short_ms=min_short_ms, windows=windows
    ):
        for severity, rules in approach.rules.items():
            for e in error_rates:
                burn = e / eps
                result = evaluate(rules, burn, period_ms)
                t = result["detection_ms"]
                row: dict[str, Any] = {
                    "approach": approach.number,
                    "name": approach.name,
                    "severity": severity,
                    "rules": "; ".join(r.describe() for r in rules),
                    "error_rate": e,
                    "burn_rate": burn,
                    "detected": result["detected"],
                    "detection_ms": t,
                    "detection_max_ms": None
                    if t is None
                    else t + scrape_interval_ms + evaluation_interval_ms,
                    "budget_consumed": result["budget_consumed"],
                    "reset_ms": result["reset_ms"],
                    "first_rule": result["first_rule"],
                    "max_quiet_burn_rate": result["max_quiet_burn_rate"],
                }
                if simulate is not None:
                    m = simulate(approach, severity, e)
                    row["sim_detection_ms"] = m.detection_ms
                    row["sim_budget_consumed"] = m.budget_consumed
                    row["sim_reset_ms"] = m.reset_ms
                rows.append(row)
    return rows


def step_incident_simulator(
    objective: float,
    period_ms: int,
    *,
    scrape_interval_ms: int = 15_000,
    evaluation_interval_ms: int = 30_000,
    requests_per_second: float = 10.0,
) -> Simulate:
    """A ``simulate`` callable for :func:`alert_table` that measures with the real rule evaluation.

    For each approach, severity and error rate: two counters (requests and errors, scraped every
    ``scrape_interval_ms``) with no errors for the longest window of the alert's rules, then a
    step to ``error_rate`` lasting that window plus ``for`` plus one hour (so the "sustained
    incident" reset of the analytic model applies), then no errors again for one more window.
    The approach's own rules (:meth:`Approach.alert_rules`) are evaluated every
    ``evaluation_interval_ms`` by :func:`sloanalysis.rules.manager.evaluate_rules`. Measured: detection
    (incident start to the first firing), budget consumed at detection (``burn * t / P``, which for
    these constant-traffic counters equals errors / (budget of the period)), and reset (incident
    end to resolution of the alert that was firing then).
    """
    from sloanalysis.rules.manager import evaluate_rules
    from sloanalysis.rules.model import AlertingRule, RuleGroup
    from sloanalysis.store import SeriesStore

    def ratio(window_ms: int) -> str:
        w = format_duration_ms(window_ms)
        return f"sum(rate(sim_errors_total[{w}])) / sum(rate(sim_requests_total[{w}]))"

    def simulate(approach: Approach, severity: Severity, error_rate: float) -> Measured:
        rules = approach.rules[severity]
        longest = max(max(r.window_ms, r.short_ms or 0) for r in rules)
        hold = max(r.for_ms for r in rules)
        t0 = longest + 10 * scrape_interval_ms
        t0 -= t0 % evaluation_interval_ms  # the incident starts on an evaluation
        duration = longest + hold + HOUR_MS
        t1 = t0 + duration
        stop = t1 + longest + 2 * evaluation_interval_ms
        ts = np.arange(3_500, stop + 1, scrape_interval_ms, dtype=np.int64)  # scrapes off the grid
        secs = ts / 1000.0
        requests = requests_per_second * secs
        bad_secs = np.clip(secs - t0 / 1000.0, 0.0, duration / 1000.0)
        errors = requests_per_second * error_rate * bad_secs
        store = SeriesStore()
        store.add({"__name__": "sim_requests_total", "job": "sim"}, ts, requests)
        store.add({"__name__": "sim_errors_total", "job": "sim"}, ts, errors)
        specs = [
            r for r in approach.alert_rules(ratio, objective, "Sim") if r["labels"]["severity"] == severity
        ]
        alerting = tuple(
            AlertingRule(
                s["alert"], s["expr"], parse_duration_ms(s.get("for", "0s")), 0, dict(s["labels"]), {}
            )
            for s in specs
        )
        group = RuleGroup("sim", evaluation_interval_ms, alerting)
        ev = evaluate_rules([group], store, t0, stop, default_interval_ms=evaluation_interval_ms)
        fired = ev.alerts[ev.alerts["firing_at_ms"].notna()]
        if fired.empty:
            return Measured(None, None, None)
        first = int(min(fired["firing_at_ms"]))
        detection = float(first - t0)
        burn = error_rate / (1.0 - objective)
        records: list[dict[str, Any]] = fired.to_dict("records")  # type: ignore[assignment]
        ends = [r["resolved_at_ms"] for r in records if r["firing_at_ms"] <= t1]
        reset = None if not ends or any(e is None for e in ends) else float(max(ends) - t1)
        return Measured(detection, burn * detection / period_ms, reset)

    return simulate
