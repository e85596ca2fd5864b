"""Scoring firing intervals against incidents, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloanalysis.errors import UserError
from sloanalysis.rules.backtest import FALSE_POSITIVE, backtest
from sloanalysis.rules.model import load_rule_files, parse_rules
from sloanalysis.rules.scoring import budget_sli_from_slos, score
from sloanalysis.rules.tuning import (
    Comparison,
    grid_search,
    pareto_front,
    rewrite_alert,
    split_comparison,
    with_threshold,
)
from sloanalysis.store import SeriesStore

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ROOT = Path(__file__).parents[1]


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


# -- the threshold of an alert, the backtest and the grid search ----------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rate(x[5m]) > 10", Comparison("rate(x[5m])", ">", 10.0)),
        # a number on the left reads as the same comparison seen from the expression's side
        ("0.5 <= sum(y)", Comparison("sum(y)", ">=", 0.5)),
        ("(x{a=~'b.c'} == 2)", Comparison("x{a=~'b.c'}", "==", 2.0)),
        ("x > bool 3", Comparison("x", ">", 3.0, bool_modifier=True)),
        ("x > 0x10", Comparison("x", ">", 16.0)),
        # not a top-level comparison with a number: the `> 3` belongs to the right side of unless
        ("x > 5 unless y > 3", None),
        ("x > y", None),
        ("x + 1", None),
        ("x > (1 - 0.99)", None),
    ],
)
def test_split_comparison(expr: str, expected: Comparison | None) -> None:
    assert split_comparison(expr) == expected


def test_with_threshold_keeps_the_expression_side() -> None:
    assert with_threshold("5 < rate(x[5m])", 7) == "rate(x[5m]) > 7"
    assert with_threshold("(x > bool 3)", 0.25) == "x > bool 0.25"
    with pytest.raises(UserError, match="no top-level comparison"):
        with_threshold("x > y", 1)


def _run() -> tuple[SeriesStore, pd.DataFrame]:
    """x is 10 during [20 min, 30 min) of two hours scraped every 15 s, else 0; one incident then."""
    ts = T0 + np.arange(0, 120 * MIN, 15_000)
    store = SeriesStore()
    store.add({"__name__": "x"}, ts, np.where((ts >= T0 + 20 * MIN) & (ts < T0 + 30 * MIN), 10.0, 0.0))
    return store, _incidents([("i1", T0 + 20 * MIN, T0 + 30 * MIN, ("High",))])


RULES = "groups:\n- name: g\n  rules:\n  - alert: High\n    expr: x > 5\n    for: 2m\n"


def test_backtest_attributes_firings_to_incidents() -> None:
    store, incidents = _run()
    groups = parse_rules(RULES + "  - record: slow\n    expr: avg_over_time(x[3h])\n", "f")
    bt = backtest(groups, store, incidents, T0, T0 + 120 * MIN)
    # true from the 20-min evaluation; for 2m: firing at 22 min; false at 30 min: resolved then
    (firing,) = bt.firings
    assert (firing["firing_at_ms"], firing["resolved_at_ms"]) == (T0 + 22 * MIN, T0 + 30 * MIN)
    assert firing["duration_ms"] == 8 * MIN and firing["incident"] == "i1"
    high = bt.scores.set_index("alert").loc["High"]
    assert (high["detected"], high["false_positives"], high["detection_ms"]) == (1, 0, 2 * MIN)
    assert bt.alert_names == ["High"] and bt.pairs["detected"].tolist() == [True]
    # the 3h window is longer than the 2h evaluated
    assert any("'slow'" in w and "3h" in w for w in bt.warnings)
    assert bt.detached().evaluation is None and bt.evaluation is not None


def test_backtest_firing_outside_every_incident_is_a_false_positive() -> None:
    store, _ = _run()
    bt = backtest(parse_rules(RULES, "f"), store, _incidents([]), T0, T0 + 120 * MIN)
    assert [f["incident"] for f in bt.firings] == [FALSE_POSITIVE]


def test_grid_search_and_its_pareto_front() -> None:
    store, incidents = _run()
    groups = parse_rules(RULES, "f")
    points = [{"threshold": 5.0, "for": 0}, {"threshold": 20.0, "for": 0}]
    rows = grid_search(groups, "High", points, [(store, incidents, T0, T0 + 120 * MIN)], sli=None)
    # threshold 5 with for 0 fires at the 20-min evaluation itself; 20 is above every value
    assert [(r["detected"], r["detection_ms"]) for r in rows] == [(1, 0.0), (0, None)]
    assert [r["pareto"] for r in rows] == [True, False]


def test_budget_sli_from_slos() -> None:
    from sloanalysis.slo.formats import load_slos

    slos = load_slos(ROOT / "slos/tron-payment.yaml")
    assert budget_sli_from_slos(slos, None).name == slos[0].id
    second = budget_sli_from_slos(slos, slos[1].name)
    assert (second.name, second.objective) == (slos[1].id, slos[1].objective)
    with pytest.raises(UserError, match="no SLO named 'nope'"):
        budget_sli_from_slos(slos, "nope")
    with pytest.raises(UserError, match="no SLOs"):
        budget_sli_from_slos([], None)


def test_load_rule_files_rejects_a_group_defined_twice(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yml", tmp_path / "b.yml"
    a.write_text(RULES)
    b.write_text(RULES)
    assert [g.name for g in load_rule_files([a])] == ["g"]
    with pytest.raises(UserError, match=f"{b}: group 'g' is already defined in {a}"):
        load_rule_files([a, b])
