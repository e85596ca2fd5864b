"""Rule-manager semantics on hand-worked series (eval every 1m from 0; samples every 15 s)."""

from __future__ import annotations

import math

import numpy as np

from sloanalysis._go import xxhash64
from sloanalysis.rules.manager import eval_times, evaluate_rules
from sloanalysis.rules.model import parse_rules
from sloanalysis.store import SeriesStore, is_stale

MIN = 60_000


def _store(on_minutes: list[tuple[int, int]], value: float = 10.0) -> SeriesStore:
    """x{job="a"} = value during [a, b) minutes (sampled every 15 s), 0 elsewhere, for 20 minutes."""
    ts = np.arange(0, 20 * MIN, 15_000)
    v = np.zeros(ts.size)
    for a, b in on_minutes:
        v[(ts >= a * MIN) & (ts < b * MIN)] = value
    st = SeriesStore()
    st.add({"__name__": "x", "job": "a"}, ts, v)
    return st


def _rules(alert: str) -> list:
    return parse_rules("groups:\n- name: g\n  interval: 1m\n  rules:\n" + alert, "t.yml")


def test_xxhash64_reference_values() -> None:
    # Published XXH64 test vectors (seed 0).
    assert xxhash64(b"") == 0xEF46DB3751D8E999
    assert xxhash64(b"a") == 0xD24EC4F1A98C6E5B


def test_eval_times_align_to_offset() -> None:
    assert eval_times(10_000, 130_000, 60_000).tolist() == [60_000, 120_000]
    assert eval_times(10_000, 130_000, 60_000, 5_000).tolist() == [65_000, 125_000]


def test_pending_firing_resolved_and_alerts_series() -> None:
    # y = 2x > 5 at evaluations 2..8 min; for 3m: active 2m, firing at 5m (5-2 >= 3), resolved at 9m.
    groups = _rules(
        "  - record: y\n    expr: x * 2\n"
        "  - alert: High\n    expr: y > 5\n    for: 3m\n"
        "    annotations: {d: 'value {{ $value }} on {{ $labels.job }}'}\n"
    )
    ev = evaluate_rules(groups, _store([(2, 9)]), 0, 15 * MIN)
    assert len(ev.alerts) == 1
    a = ev.alerts.iloc[0]
    assert (a.active_at_ms, a.firing_at_ms, a.resolved_at_ms) == (2 * MIN, 5 * MIN, 9 * MIN)
    assert a.labels == {"alertname": "High", "job": "a"}
    assert a.annotations == {"d": "value 20 on a"}
    pending = ev.series.get({"__name__": "ALERTS", "alertname": "High", "alertstate": "pending", "job": "a"})
    firing = ev.series.get({"__name__": "ALERTS", "alertname": "High", "alertstate": "firing", "job": "a"})
    for_state = ev.series.get({"__name__": "ALERTS_FOR_STATE", "alertname": "High", "job": "a"})
    assert pending is not None and firing is not None and for_state is not None
    assert (pending.timestamps // MIN).tolist() == [2, 3, 4, 5]
    assert is_stale(pending.values).tolist() == [False, False, False, True]
    assert (firing.timestamps // MIN).tolist() == [5, 6, 7, 8, 9]
    assert is_stale(firing.values).tolist() == [False] * 4 + [True]
    assert for_state.values[0] == 120.0  # activeAt in seconds
    states = ev.active_at(4 * MIN)
    assert [s["state"] for s in states] == ["pending"]
    assert [s["state"] for s in ev.active_at(5 * MIN)] == ["firing"]
    assert ev.active_at(9 * MIN) == []


def test_pending_alert_that_disappears_is_dropped() -> None:
    ev = evaluate_rules(
        _rules("  - alert: High\n    expr: x > 5\n    for: 5m\n"), _store([(2, 4)]), 0, 15 * MIN
    )
    a = ev.alerts.iloc[0]
    assert a.firing_at_ms is None and a.resolved_at_ms is None and a.ended_at_ms == 4 * MIN
    assert (
        ev.series.get({"__name__": "ALERTS", "alertname": "High", "alertstate": "firing", "job": "a"}) is None
    )


def test_keep_firing_for_bridges_a_gap_then_resolves() -> None:
    # true at 2,3 | false at 4 | true at 5 | false from 6. keep_firing_for 2m:
    # gone at 4m, would resolve at 6m, but it is back at 5m; gone again at 6m -> resolved at 8m.
    ev = evaluate_rules(
        _rules("  - alert: High\n    expr: x > 5\n    keep_firing_for: 2m\n"),
        _store([(2, 4), (5, 6)]),
        0,
        15 * MIN,
    )
    assert len(ev.alerts) == 1
    a = ev.alerts.iloc[0]
    assert (a.active_at_ms, a.firing_at_ms, a.resolved_at_ms) == (2 * MIN, 2 * MIN, 8 * MIN)
    # without keep_firing_for: two separate alerts
    ev2 = evaluate_rules(_rules("  - alert: High\n    expr: x > 5\n"), _store([(2, 4), (5, 6)]), 0, 15 * MIN)
    assert ev2.alerts[["firing_at_ms", "resolved_at_ms"]].values.tolist() == [
        [2 * MIN, 4 * MIN],
        [5 * MIN, 6 * MIN],
    ]


def test_templated_labels_and_recording_stale_marker() -> None:
    groups = _rules(
        "  - record: y\n    expr: x > 5\n"
        "  - alert: High\n    expr: y\n    labels:\n"
        "      severity: '{{ if gt $value 5.0 }}page{{ else }}ticket{{ end }}'\n"
        "    annotations:\n      p: '{{ $value | humanizePercentage }} {{ humanizeDuration 90 }} "
        '{{ printf "%.1f" $value }}\'\n'
    )
    ev = evaluate_rules(groups, _store([(2, 4)], value=0.5 + 10), 0, 15 * MIN)
    a = ev.alerts.iloc[0]
    assert a.labels["severity"] == "page"
    assert a.annotations["p"] == "1050% 1m 30s 10.5"
    y = ev.series.get({"__name__": "y", "job": "a"})
    assert y is not None and (y.timestamps // MIN).tolist() == [2, 3, 4]
    assert is_stale(y.values).tolist() == [False, False, True]


def test_query_offset_and_hash_offset() -> None:
    groups = parse_rules(
        "groups:\n- name: g\n  interval: 1m\n  query_offset: 1m\n  rules:\n  - record: y\n    expr: x\n",
        "t.yml",
    )
    ev = evaluate_rules(groups, _store([(2, 4)]), 0, 15 * MIN)
    y = ev.series.get({"__name__": "y", "job": "a"})
    assert y is not None
    # evaluation at 3m queries at 2m and writes the sample at 2m
    assert y.values[(y.timestamps == 2 * MIN).argmax()] == 10.0
    ev2 = evaluate_rules(groups, _store([]), 0, 15 * MIN, eval_offset="hash")
    off = int(ev2.eval_times("g")[0]) % MIN
    assert 0 <= off < MIN and not math.isnan(off)
