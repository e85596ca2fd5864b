"""Scoring firing intervals against incidents, by hand."""

from __future__ import annotations

import pandas as pd

from sloanalysis.rules.model import parse_rules
from sloanalysis.rules.scoring import score
from sloanalysis.rules.tuning import pareto_front, rewrite_alert

MIN = 60_000


def _alerts(rows: list[tuple[str, int, int | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "alertname": n,
                "labels": {},
                "annotations": {},
                "active_at_ms": f,
                "firing_at_ms": f,
                "resolved_at_ms": r,
                "value_at_firing": 1.0,
            }
            for n, f, r in rows
        ]
    )


def _incidents(rows: list[tuple[str, int, int, tuple[str, ...]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": i,
                "kind": "k",
                "start": pd.Timestamp(s, unit="ms", tz="UTC"),
                "end": pd.Timestamp(e, unit="ms", tz="UTC"),
                "expected_alerts": a,
            }
            for i, s, e, a in rows
        ]
    )


def test_detection_reset_misses_and_false_positives() -> None:
    alerts = _alerts([("A", 12 * MIN, 25 * MIN), ("A", 100 * MIN, 110 * MIN), ("B", 50 * MIN, None)])
    incidents = _incidents([("i1", 10 * MIN, 20 * MIN, ("A",)), ("i2", 40 * MIN, 45 * MIN, ("A", "B"))])
    rows, pairs = score(alerts, incidents, 0, 1440 * MIN, grace_ms={"A": 2 * MIN, "B": 10 * MIN}, sli=None)
    by = {r["alert"]: r for r in rows}
    # A: i1 detected 2 min after start, reset 5 min after end; i2 missed; 100-110 min is a false positive.
    assert (by["A"]["detected"], by["A"]["missed"], by["A"]["false_positives"]) == (1, 1, 1)
    assert by["A"]["detection_ms"] == 2 * MIN and by["A"]["reset_ms"] == 5 * MIN
    assert by["A"]["precision"] == 0.5 and by["A"]["recall"] == 0.5 and by["A"]["fp_per_day"] == 1.0
    # B fires 5 min after i2 ended, inside its 10-min grace: detected after 10 min, still firing.
    assert by["B"]["detected"] == 1 and by["B"]["detection_ms"] == 10 * MIN and by["B"]["reset_ms"] is None
    overall = by["(overall)"]
    assert (overall["incidents"], overall["detected"], overall["firings"], overall["false_positives"]) == (
        3,
        2,
        3,
        1,
    )
    assert [p["detected"] for p in pairs if p["alert"] == "A"] == [True, False]


def test_threshold_rewrite_and_pareto() -> None:
    g = parse_rules("groups:\n- name: a\n  rules:\n  - alert: A\n    expr: rate(x[5m]) > 10\n", "f")
    out = rewrite_alert(g, "A", {"threshold": 2.5, "for": 60_000})
    r = out[0].rules[0]
    assert r.expr == "rate(x[5m]) > 2.5" and r.for_ms == 60_000
    rows = [
        {"recall": 1.0, "detection_ms": 60.0, "fp_per_day": 2.0},
        {"recall": 1.0, "detection_ms": 120.0, "fp_per_day": 0.0},
        {"recall": 1.0, "detection_ms": 120.0, "fp_per_day": 1.0},
        {"recall": 0.5, "detection_ms": 10.0, "fp_per_day": 0.0},
    ]
    front = pareto_front(rows)
    assert front == [rows[0], rows[1], rows[3]]
