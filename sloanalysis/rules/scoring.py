"""Score alert firing intervals against ground-truth incidents.

Alerts are identified by name and severity (:data:`AlertId`: the rule's ``labels.severity``, None
without one): the page and ticket rules of one name are scored apart. An incident's expected
``Name`` is every severity of that name, ``Name:page`` only that one. Only the identities given
(those of the rule files) are scored: an incident expecting an alert the rules do not have is
ignored for it. Definitions (per identity; its label sets are merged into one timeline):

- **detection window** of an incident for an alert it expects: ``[start, end + grace]`` with
  ``grace = for + 2 * evaluation interval`` of that alert's rule: an alert with ``for: 5m`` can only
  fire 5 minutes after its condition became true, and the condition itself lags the data by up to
  an evaluation interval (plus the scrape that has to carry the errors).
- **detected / miss**: the incident expects the alert and the alert fired (a firing interval
  overlaps the detection window); otherwise it is a miss.
- **detection time**: from the incident start to the first firing inside the window (0 when the
  alert was already firing at the start).
- **reset time**: from the incident end to the end (resolution) of the last firing interval that
  overlaps the window; negative when the alert cleared before the incident ended, None when it was
  still firing at the end of the data.
- **false positive**: a firing interval that overlaps the detection window of no incident
  expecting that alert. False positives per day: their count over the evaluated span in days. An
  alert no incident expects is scored on these alone (recall None, precision 0 if it fired).
- **precision**: firing intervals that overlap some expecting incident / all firing intervals;
  **recall**: detected (incident, alert) pairs / all pairs. The overall row sums over alerts.
- **no ground truth** (``incidents`` None: no incidents file and no run directory): precision,
  recall and false positives are None ("n/a") for every alert; firings are still counted.
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
from sloanalysis.sources.rundir import split_expected_alert
from sloanalysis.store import SeriesStore

if TYPE_CHECKING:
    from sloanalysis.slo.spec import SLO

__all__ = [
    "DEFAULT_SLI",
    "AlertId",
    "BudgetSLI",
    "alert_identity",
    "budget_sli_from_slos",
    "expects",
    "incident_rows",
    "merge_intervals",
    "score",
]

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


AlertId = tuple[str, str | None]
"""An alert's identity: its name and its rule's ``labels.severity`` (None: no severity)."""


def expects(expected: Sequence[AlertId], alert: AlertId) -> bool:
    """Whether an incident expecting ``expected`` (``(name, severity or None)`` entries) expects
    ``alert``: same name, and same severity unless the entry gives none."""
    return any(n == alert[0] and (s is None or s == alert[1]) for n, s in expected)


def alert_identity(
    name: str, labels: Mapping[str, str], declared: Mapping[str, Sequence[str | None]]
) -> AlertId:
    """The identity of one alert instance among the ``declared`` severities of each name: its
    ``severity`` label if a rule of that name declares it, else the name's rule without severity,
    else the only rule of that name (a templated severity). Undeclared names keep their label."""
    label = labels.get("severity")
    known = declared.get(name)
    if known is None or label in known:
        return (name, label)
    if None in known:
        return (name, None)
    return (name, known[0]) if len(known) == 1 else (name, label)


def score(
    alerts: pd.DataFrame,
    incidents: pd.DataFrame | None,
    start_ms: int,
    end_ms: int,
    *,
    grace_ms: Mapping[Any, int],
    store: SeriesStore | None = None,
    sli: BudgetSLI | None = DEFAULT_SLI,
    alert_ids: Sequence[AlertId] | None = None,
    incident_list: Sequence[Mapping[str, Any]] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-alert rows + an overall row, per (incident, alert) rows). See the module docstring.

    ``alerts`` is :attr:`RuleEvaluation.alerts`; ``incidents`` as :func:`load_run` returns them,
    None without ground truth; ``grace_ms`` per alert identity or name (missing: 0);
    ``alert_ids`` the identities to score (those of the rule files; None: every one that fired
    or that an incident expects); ``incident_list``: :func:`incident_rows` of ``incidents`` when
    the caller has it already (a threshold sweep scores the same incidents hundreds of times).
    """
    span_days = max(end_ms - start_ms, 1) / DAY_MS
    truth = incidents is not None
    engine = Engine(store) if store is not None and sli is not None and truth else None
    declared: dict[str, list[str | None]] = {}
    for n, sev in alert_ids or []:
        declared.setdefault(n, []).append(sev)
    firing: dict[AlertId, list[tuple[int, int]]] = {}
    open_ended: set[AlertId] = set()  # alerts with a firing still open at the end of the data
    # The four columns zipped: the same values as itertuples() gives, without its per-call cost.
    columns = (
        [alerts[c] for c in ("alertname", "labels", "firing_at_ms", "resolved_at_ms")] if len(alerts) else []
    )
    for name, labels, firing_at, resolved_at in zip(*columns, strict=True):
        fired, resolved = _opt(firing_at), _opt(resolved_at)
        if fired is None:
            continue
        ident = alert_identity(str(name), labels if isinstance(labels, dict) else {}, declared)
        firing.setdefault(ident, []).append((fired, end_ms if resolved is None else resolved))
        if resolved is None:
            open_ended.add(ident)
    timelines = {k: merge_intervals(v) for k, v in firing.items()}
    if incidents is None:
        inc: Sequence[Mapping[str, Any]] = []
    else:
        inc = incident_list if incident_list is not None else incident_rows(incidents)
    if alert_ids is None:
        ids = set(timelines) | {a for i in inc for a in i["alerts"]}
    else:
        ids = set(alert_ids)
    pairs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for ident in sorted(ids, key=lambda a: (a[0], a[1] or "")):
        found = _score_alert(
            ident,
            timelines.get(ident, []),
            [i for i in inc if expects(i["alerts"], ident)],
            grace_ms.get(ident, grace_ms.get(ident[0], 0)),
            ident in open_ended,
            end_ms,
            sli,
            engine,
        )
        fps = found[0]["false_positives"]
        rows.append(found[0] | {"fp_per_day": fps / span_days if truth else None})
        pairs.extend(found[1])
    rows.append(_overall(rows, pairs, span_days))
    if not truth:
        for row in rows:
            row.update(precision=None, recall=None, false_positives=None, fp_per_day=None)
    return rows, pairs


def _score_alert(
    ident: AlertId,
    tl: list[tuple[int, int]],
    listed: Sequence[Mapping[str, Any]],
    grace: int,
    open_at_end: bool,
    end_ms: int,
    sli: BudgetSLI | None,
    engine: Engine | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The score row (without ``fp_per_day``) and the (incident, alert) rows of one alert, from its
    merged firing timeline and the incidents expecting it; ``open_at_end``: a firing of it was
    still open at the end of the data."""
    name, severity = ident
    used = [False] * len(tl)
    detected, det_times, resets, budgets = 0, [], [], []
    pairs: list[dict[str, Any]] = []
    for i in listed:
        lo, hi = i["start_ms"], i["end_ms"] + grace
        hits = [k for k, (a, b) in enumerate(tl) if a <= hi and b >= lo]
        for k in hits:
            used[k] = True
        row: dict[str, Any] = {
            "incident": i["id"],
            "kind": i["kind"],
            "alert": name,
            "severity": severity,
            "detected": bool(hits),
        }
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
        "severity": severity,
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
        "severity": None,
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
    """Incidents as dicts with integer-ms ``start_ms``/``end_ms`` and ``alerts``, the expected
    alerts as ``(name, severity or None)``."""
    out = []
    # Column by column (the values to_dict("records") gives, at a fraction of its cost).
    names = ("id", "kind", "start", "end", "expected_alerts")
    columns = [incidents[c] for c in names] if len(incidents) else []
    for ident, kind, start, end, expected in zip(*columns, strict=True):
        out.append(
            {
                "id": str(ident),
                "kind": str(kind),
                "start_ms": int(pd.Timestamp(start).value // 1_000_000),
                "end_ms": int(pd.Timestamp(end).value // 1_000_000),
                "alerts": tuple(split_expected_alert(str(a)) for a in expected),
            }
        )
    return out
