"""Score alert firing intervals against a run's ground-truth incidents.

Definitions (per alert name; the label sets of one alert are merged into one timeline):

- **detection window** of an incident for an alert it lists: ``[start, end + grace]`` with
  ``grace = for + 2 * evaluation interval`` of that alert's rule: an alert with ``for: 5m`` can only
  fire 5 minutes after its condition became true, and the condition itself lags the data by up to
  an evaluation interval (plus the scrape that has to carry the errors).
- **detected / miss**: the incident lists the alert and the alert fired (a firing interval
  overlaps the detection window); otherwise it is a miss.
- **detection time**: from the incident start to the first firing inside the window (0 when the
  alert was already firing at the start).
- **reset time**: from the incident end to the end (resolution) of the last firing interval that
  overlaps the window; negative when the alert cleared before the incident ended, None when it was
  still firing at the end of the data.
- **false positive**: a firing interval that overlaps the detection window of no incident listing
  that alert. False positives per day: their count over the evaluated span in days.
- **precision**: firing intervals that overlap some listing incident / all firing intervals;
  **recall**: detected (incident, alert) pairs / all pairs. The overall row sums over alerts.
- **budget consumed before detection**: the SLO's burn rate between incident start and
  detection times that duration over the SLO period (``burn * t / P``, the Workbook's measure),
  i.e. the error ratio over ``[start, detection]`` times ``t / ((1 - objective) * P)``; by default
  the availability SLO (99.9 % over 30 days on ``slo_successful_requests_total`` /
  ``slo_total_requests_total``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from sloanalysis.errors import UserError
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.store import SeriesStore

if TYPE_CHECKING:
    from sloanalysis.slo.spec import SLO

__all__ = ["DEFAULT_SLI", "BudgetSLI", "budget_sli_from_slos", "incident_rows", "merge_intervals", "score"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class BudgetSLI:
    """What "budget consumed" is measured against: an error-ratio expression over a window."""

    error_ratio_expr: Callable[[int], str]
    objective: float
    period_ms: int
    name: str


def _avail(window_ms: int) -> str:
    w = f"{max(window_ms // 1000, 1)}s"
    good = f"sum(increase(slo_successful_requests_total[{w}]))"
    return f"1 - {good} / sum(increase(slo_total_requests_total[{w}]))"


DEFAULT_SLI = BudgetSLI(_avail, 0.999, 30 * DAY_MS, "availability 99.9% / 30d")


def budget_sli_from_slos(slos: Sequence[SLO], name: str | None = None, where: str = "SLO file") -> BudgetSLI:
    """The SLO named ``name`` (by name or id; default the first) as the budget measure."""
    if not slos:
        raise UserError(f"{where}: no SLOs")
    if name is None:
        slo = slos[0]
    else:
        match = [s for s in slos if name in (s.name, s.id)]
        if not match:
            raise UserError(f"--slo: no SLO named {name!r} in {where} ({', '.join(s.name for s in slos)})")
        slo = match[0]
    return BudgetSLI(slo.error_ratio_expr, slo.objective, slo.period_ms, slo.id)


def _opt(x: object) -> int | None:
    """An optional ms instant from a frame cell (None or NaN: absent)."""
    if x is None or (isinstance(x, float) and x != x):
        return None
    return int(x)  # type: ignore[call-overload]


def merge_intervals(intervals: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of closed intervals, sorted."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(intervals):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _budget(sli: BudgetSLI | None, engine: Engine | None, start: int, detect: int) -> float | None:
    if sli is None or engine is None:
        return None
    t = detect - start
    if t <= 0:
        return 0.0
    try:
        res = engine.instant(sli.error_ratio_expr(t), detect)
    except PromQLError:
        return None
    if res.values.size == 0 or not np.isfinite(res.values[0, 0]):
        return 0.0
    ratio = max(float(res.values[0, 0]), 0.0)
    return ratio * t / ((1.0 - sli.objective) * sli.period_ms)


def score(
    alerts: pd.DataFrame,
    incidents: pd.DataFrame,
    start_ms: int,
    end_ms: int,
    *,
    grace_ms: Mapping[str, int],
    store: SeriesStore | None = None,
    sli: BudgetSLI | None = DEFAULT_SLI,
    alert_names: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-alert rows + an overall row, per (incident, alert) rows). See the module docstring.

    ``alerts`` is :attr:`RuleEvaluation.alerts`; ``incidents`` as :func:`load_run` returns them;
    ``grace_ms`` per alert name (alerts missing from it get 0).
    """
    span_days = max(end_ms - start_ms, 1) / DAY_MS
    engine = Engine(store) if store is not None and sli is not None else None
    firing: dict[str, list[tuple[int, int]]] = {}
    open_ended: set[str] = set()  # alerts with a firing still open at the end of the data
    for r in alerts.itertuples():
        fired, resolved = _opt(r.firing_at_ms), _opt(r.resolved_at_ms)
        if fired is None:
            continue
        firing.setdefault(str(r.alertname), []).append((fired, end_ms if resolved is None else resolved))
        if resolved is None:
            open_ended.add(str(r.alertname))
    timelines = {k: merge_intervals(v) for k, v in firing.items()}
    inc = incident_rows(incidents)
    names = sorted(set(alert_names or []) | set(timelines) | {a for i in inc for a in i["alerts"]})
    pairs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for name in names:
        listed = [i for i in inc if name in i["alerts"]]
        found = _score_alert(
            name,
            timelines.get(name, []),
            listed,
            grace_ms.get(name, 0),
            name in open_ended,
            end_ms,
            sli,
            engine,
        )
        rows.append(found[0] | {"fp_per_day": found[0]["false_positives"] / span_days})
        pairs.extend(found[1])
    rows.append(_overall(rows, pairs, span_days))
    return rows, pairs


def _score_alert(
    name: str,
    tl: list[tuple[int, int]],
    listed: list[dict[str, Any]],
    grace: int,
    open_at_end: bool,
    end_ms: int,
    sli: BudgetSLI | None,
    engine: Engine | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The score row (without ``fp_per_day``) and the (incident, alert) rows of one alert, from its
    merged firing timeline and the incidents listing it; ``open_at_end``: a firing of it was still
    open at the end of the data."""
    used = [False] * len(tl)
    detected, det_times, resets, budgets = 0, [], [], []
    pairs: list[dict[str, Any]] = []
    for i in listed:
        lo, hi = i["start_ms"], i["end_ms"] + grace
        hits = [k for k, (a, b) in enumerate(tl) if a <= hi and b >= lo]
        for k in hits:
            used[k] = True
        row: dict[str, Any] = {"incident": i["id"], "kind": i["kind"], "alert": name, "detected": bool(hits)}
        if hits:
            detected += 1
            first = max(tl[hits[0]][0], lo)
            last_end = tl[hits[-1]][1]
            reset = None if last_end >= end_ms and open_at_end else last_end - i["end_ms"]
            budget = _budget(sli, engine, lo, first)
            det_times.append(first - lo)
            if reset is not None:
                resets.append(reset)
            if budget is not None:
                budgets.append(budget)
            row.update(detection_ms=first - lo, reset_ms=reset, budget_before_detection=budget)
        else:
            row.update(detection_ms=None, reset_ms=None, budget_before_detection=None)
        pairs.append(row)
    fps = used.count(False)
    summary = {
        "alert": name,
        "incidents": len(listed),
        "detected": detected,
        "missed": len(listed) - detected,
        "firings": len(tl),
        "false_positives": fps,
        "precision": (len(tl) - fps) / len(tl) if tl else None,
        "recall": detected / len(listed) if listed else None,
        "detection_ms": float(np.mean(det_times)) if det_times else None,
        "reset_ms": float(np.mean(resets)) if resets else None,
        "budget_before_detection": float(np.mean(budgets)) if budgets else None,
    }
    return summary, pairs


def _overall(rows: list[dict[str, Any]], pairs: list[dict[str, Any]], span_days: float) -> dict[str, Any]:
    firings = sum(r["firings"] for r in rows)
    fps = sum(r["false_positives"] for r in rows)
    listed = len(pairs)
    detected = sum(1 for p in pairs if p["detected"])
    dets = [p["detection_ms"] for p in pairs if p["detection_ms"] is not None]
    resets = [p["reset_ms"] for p in pairs if p["reset_ms"] is not None]
    budgets = [p["budget_before_detection"] for p in pairs if p["budget_before_detection"] is not None]
    return {
        "alert": "(overall)",
        "incidents": listed,
        "detected": detected,
        "missed": listed - detected,
        "firings": firings,
        "false_positives": fps,
        "precision": (firings - fps) / firings if firings else None,
        "recall": detected / listed if listed else None,
        "detection_ms": float(np.mean(dets)) if dets else None,
        "reset_ms": float(np.mean(resets)) if resets else None,
        "budget_before_detection": float(np.mean(budgets)) if budgets else None,
        "fp_per_day": fps / span_days,
    }


def incident_rows(incidents: pd.DataFrame) -> list[dict[str, Any]]:
    """Incidents as dicts with integer-ms ``start_ms``/``end_ms`` and a tuple of ``alerts``."""
    out = []
    records: list[dict[str, Any]] = incidents.to_dict("records")  # type: ignore[assignment]
    for r in records:
        out.append(
            {
                "id": str(r["id"]),
                "kind": str(r["kind"]),
                "start_ms": int(pd.Timestamp(r["start"]).value // 1_000_000),
                "end_ms": int(pd.Timestamp(r["end"]).value // 1_000_000),
                "alerts": tuple(r["expected_alerts"]),
            }
        )
    return out
