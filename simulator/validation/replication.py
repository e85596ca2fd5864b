"""One replication of an alert validation: draw incidents, simulate, backtest every rule variant.

A replication's randomness comes only from its seed, ``SeedSequence(root).spawn(n)[index]``
(children ``(index, 0)`` for the incident draws and ``(index, 1)`` for the simulation), so the
result is the same whatever executor, worker count or completion order runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simulator.scenario import Scenario, with_overrides
from simulator.validation.family import ERROR_STEP, IncidentFamily, draw_incidents
from sloanalysis.rules.backtest import EvalSettings, alert_identities, backtest, grace_ms
from sloanalysis.rules.model import RuleGroup
from sloanalysis.rules.scoring import DEFAULT_SLI, BudgetSLI, expects
from sloanalysis.sources.rundir import split_expected_alert
from sloanalysis.store import SeriesStore

__all__ = ["Task", "Variant", "replication_seed", "run_replication", "step_store"]

BASE = "rules"
"""The key of the rules as given (tuning variants have other keys)."""


@dataclass(frozen=True)
class Variant:
    """A set of rule groups to backtest; ``score_only``: the alert identities scored (None: all)."""

    key: str
    groups: tuple[RuleGroup, ...]
    score_only: tuple[tuple[str, str | None], ...] | None = None


@dataclass(frozen=True)
class Task:
    index: int
    root_seed: int
    scenario: Scenario
    family: IncidentFamily
    variants: tuple[Variant, ...]
    settings: EvalSettings
    budget: BudgetSLI | None = None  # None: the default availability SLI


def replication_seed(root_seed: int, index: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """(incident draws, simulation) seed sequences of replication ``index``: the ``index``-th child
    of ``SeedSequence(root_seed).spawn`` and its two children."""
    child = np.random.SeedSequence(root_seed, spawn_key=(index,))  # == SeedSequence(root).spawn(n)[index]
    draws, sim = child.spawn(2)
    return draws, sim


def step_store(scenario: Scenario, incidents: Sequence[dict[str, Any]]) -> SeriesStore:
    """The availability counters of a constant request rate (``load.api_rate``) whose failed
    fraction steps to each incident's severity during it: fluid (expected) counts, scraped as the
    scenario scrapes (interval and offset), so the only randomness is in the incidents drawn."""
    step = scenario.scrape_interval
    times = np.arange(scenario.scrape_offset, scenario.duration + 1e-9, step)
    rate = scenario.load.api_rate
    total = rate * times
    errors = np.zeros_like(times)
    for inc in incidents:
        inside = np.clip(times - inc["start"], 0.0, inc["duration"])
        errors += rate * inc["severity"] * inside
    ts = scenario.start_ms + np.round(times * 1000).astype(np.int64)
    target = {"job": scenario.job, "instance": scenario.instance}
    store = SeriesStore()
    store.add({"__name__": "slo_total_requests_total", **target}, ts, total)
    store.add({"__name__": "slo_successful_requests_total", **target}, ts, total - errors)
    store.add({"__name__": "up", **target}, ts, np.ones_like(times))
    return store


def _simulated_store(
    scenario: Scenario, family: IncidentFamily, incidents: list[dict[str, Any]], seed: int
) -> SeriesStore:
    from simulator.model import simulate

    param = family.severity_param
    rows = [
        {
            "id": inc["id"],
            "kind": family.kind,
            "start": inc["start"],
            "duration": inc["duration"],
            "params": {**family.params, **({param: inc["severity"]} if param else {})},
        }
        for inc in incidents
    ]
    sc = with_overrides(scenario, seed=seed, duration=family.length, incidents=rows)
    return simulate(sc).store


def _incident_frame(
    scenario: Scenario, family: IncidentFamily, incidents: list[dict[str, Any]], expected: list[str]
) -> pd.DataFrame:
    start = pd.Timestamp(scenario.start_ms, unit="ms", tz="UTC")
    return pd.DataFrame(
        [
            {
                "id": inc["id"],
                "kind": family.kind,
                "start": start + pd.Timedelta(milliseconds=round(inc["start"] * 1000)),
                "end": start + pd.Timedelta(milliseconds=round((inc["start"] + inc["duration"]) * 1000)),
                "expected_alerts": expected,
            }
            for inc in incidents
        ]
    )


def _quiet_ms(windows: list[tuple[int, int]], grace: int, start_ms: int, end_ms: int) -> int:
    """The evaluated time outside every incident's detection window ``[start, end + grace]``."""
    covered = 0
    last = start_ms
    for a, b in sorted(windows):
        a, b = max(a, last), min(b + grace, end_ms)
        if b > a:
            covered += b - a
            last = b
    return max(end_ms - start_ms - covered, 0)


def _evaluate(
    variant: Variant,
    store: SeriesStore,
    frame_for: Any,
    windows: list[tuple[int, int]],
    severity_of: dict[str, float],
    span: tuple[int, int],
    settings: EvalSettings,
    budget: BudgetSLI | None = None,
) -> dict[str, Any]:
    groups = list(variant.groups)
    ids = alert_identities(groups)
    incidents = frame_for(ids)
    expected = [
        split_expected_alert(str(a)) for a in (incidents["expected_alerts"].iloc[0] if len(incidents) else [])
    ]
    bt = backtest(
        groups, store, incidents, span[0], span[1], settings=settings, sli=budget or DEFAULT_SLI,
        score_only=list(variant.score_only) if variant.score_only is not None else None,
    )  # fmt: skip
    grace = grace_ms(groups, settings.interval_ms)
    pairs = [
        {
            "incident": p["incident"],
            "incident_severity": severity_of[str(p["incident"])],
            "alert": p["alert"],
            "severity": p["severity"],
            "detected": bool(p["detected"]),
            "detection_ms": _num(p.get("detection_ms")),
            "reset_ms": _num(p.get("reset_ms")),
            "budget": _num(p.get("budget_before_detection")),
        }
        for p in bt.pairs.to_dict("records")
    ]
    alerts = [
        {
            "alert": r["alert"],
            "severity": _str(r["severity"]),
            "false_positives": int(r["false_positives"] or 0),
            # An alert the incidents expect is judged outside their detection windows; any other
            # alert fires for nothing wherever it fires, so its exposure is the whole span.
            "quiet_ms": _quiet_ms(
                windows, grace.get((r["alert"], _str(r["severity"])), grace.get(r["alert"], 0)), *span
            )
            if expects(expected, (r["alert"], _str(r["severity"])))
            else span[1] - span[0],
            "firings": int(r["firings"]),
        }
        for r in bt.scores.to_dict("records")
        if r["alert"] != "(overall)"
    ]
    return {"pairs": pairs, "alerts": alerts, "warnings": sorted(set(bt.warnings))}


def _num(x: Any) -> float | None:
    if x is None or (isinstance(x, float) and x != x):
        return None
    return float(x)


def _str(x: Any) -> str | None:
    if x is None or (isinstance(x, float) and x != x):
        return None
    return str(x)


def run_replication(task: Task) -> dict[str, Any]:
    """The incidents drawn and, per variant, the (incident, alert) rows and per-alert false
    positives with their quiet time; JSON-safe. A top-level function so every executor ships it."""
    family, scenario = task.family, task.scenario
    draws, sim = replication_seed(task.root_seed, task.index)
    incidents = draw_incidents(family, np.random.default_rng(draws))
    sim_seed = int(sim.generate_state(1, np.uint64)[0] >> np.uint64(1))  # a non-negative int64
    if family.kind == ERROR_STEP:
        sc = scenario.model_copy(update={"duration": family.length})
        store = step_store(sc, incidents)
    else:
        store = _simulated_store(scenario, family, incidents, sim_seed)
    start_ms = scenario.start_ms + round(family.warmup * 1000)
    end_ms = scenario.start_ms + round(family.length * 1000)
    rng = store.time_range()
    if rng is not None:
        end_ms = min(end_ms, rng[1])
    windows = [
        (
            scenario.start_ms + round(i["start"] * 1000),
            scenario.start_ms + round((i["start"] + i["duration"]) * 1000),
        )
        for i in incidents
    ]
    severity_of = {str(i["id"]): float(i["severity"]) for i in incidents}

    def frame_for(ids: list[tuple[str, str | None]]) -> pd.DataFrame:
        expected = list(family.expected_alerts) or list(dict.fromkeys(n for n, _ in ids))
        return _incident_frame(scenario, family, incidents, expected)

    return {
        "index": task.index,
        "seed": sim_seed,
        "span_ms": end_ms - start_ms,
        "incidents": [{k: (float(v) if k != "id" else v) for k, v in inc.items()} for inc in incidents],
        "variants": {
            v.key: _evaluate(
                v, store, frame_for, windows, severity_of, (start_ms, end_ms), task.settings, task.budget
            )
            for v in task.variants
        },
    }
