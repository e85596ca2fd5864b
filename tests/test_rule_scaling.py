"""Rule evaluation scales with rules and groups: each expression is parsed once per evaluation,
rules are ordered from a map of their outputs, and the order is the one the definition gives
(a rule after every rule producing a metric it reads; otherwise file order; a cycle broken at its
first rule in file order), checked against a direct, quadratic reading of that definition."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import sloanalysis.promql.engine as engine_module
from sloanalysis.rules.manager import _order, evaluate_rules
from sloanalysis.rules.model import AlertingRule, RecordingRule, Rule, parse_rules
from sloanalysis.store import SeriesStore

MIN = 60_000


def _store() -> SeriesStore:
    st_ = SeriesStore()
    ts = np.arange(0, 30 * MIN, 15_000)
    for job in ("a", "b"):
        st_.add({"__name__": "x", "job": job}, ts, np.arange(ts.size, dtype=float))
    return st_


def _units(n: int, *, grouped: bool) -> str:
    """``n`` units of a recording rule and an alert on it; the recording expressions repeat
    (``u % 3``), so there are ``3 + n`` distinct expression texts."""
    lines = ["groups:"]
    for u in range(n):
        if u == 0 or grouped:
            lines += [f"- name: g{u}", "  rules:"]
        lines += [
            f"  - record: r{u}",
            f"    expr: sum by (job) (rate(x[{u % 3 + 1}m]))",
            f"  - alert: A{u}",
            f"    expr: r{u} > 0",
            "    for: 2m",
        ]
    return "\n".join(lines) + "\n"


def _count_parses(monkeypatch: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    real = engine_module.parse

    def counting(text: str, *args: Any) -> Any:
        calls[text] += 1
        return real(text, *args)

    monkeypatch.setattr(engine_module, "parse", counting)
    return calls


def test_each_expression_is_parsed_once_per_evaluation(monkeypatch: Any) -> None:
    for grouped in (False, True):
        groups = parse_rules(_units(12, grouped=grouped), "t.yml")
        calls = _count_parses(monkeypatch)
        ev = evaluate_rules(groups, _store(), 0, 20 * MIN)
        assert set(calls.values()) == {1}
        assert len(calls) == 3 + 12
        assert len(ev.alerts) == 12 * 2  # every alert, for both jobs (rate of a rising counter > 0)


def _flat(text: str) -> list[tuple[int, int, Rule]]:
    groups = parse_rules(text, "t.yml")
    return [(gi, ri, r) for gi, g in enumerate(groups) for ri, r in enumerate(g.rules)]


def test_order_follows_inputs_and_warns_about_later_rules() -> None:
    # rule 0 reads r2 (recorded after it in its group), rule 1 reads ALERTS (rule 3 writes it).
    flat = _flat(
        "groups:\n- name: g\n  rules:\n"
        "  - record: r1\n    expr: r2 + 1\n"
        "  - record: r0\n    expr: count(ALERTS)\n"
        "  - record: r2\n    expr: x\n"
        "  - alert: A\n    expr: x > 1\n"
    )
    order, warnings = _order(flat)
    assert order == [2, 0, 3, 1]
    assert warnings == [
        "rule 'r1' reads 'r2', recorded later in the same group: Prometheus sees its previous "
        "evaluation there, this evaluation sees the current one",
        "rule 'r0' reads 'A', recorded later in the same group: Prometheus sees its previous "
        "evaluation there, this evaluation sees the current one",
    ]


def test_unnamed_selectors_match_outputs_by_their_name_matchers() -> None:
    flat = _flat(
        "groups:\n- name: a\n  rules:\n"
        "  - record: all\n    expr: 'count({__name__=~\"job:.+\"})'\n"
        "  - record: any\n    expr: 'count({job=\"x\"})'\n"
        "- name: b\n  rules:\n"
        "  - record: job:y\n    expr: x\n"
    )
    order, _ = _order(flat)
    # 'all' needs job:y; 'any' has no name matcher, so it reads every metric, 'all' and job:y too.
    assert order == [2, 0, 1]


def test_a_cycle_is_broken_at_its_first_rule() -> None:
    flat = _flat(
        "groups:\n- name: g\n  rules:\n"
        "  - record: p\n    expr: q\n"
        "  - record: q\n    expr: p\n"
        "  - record: s\n    expr: x\n"
    )
    order, warnings = _order(flat)
    assert order == [2, 0, 1]
    assert warnings[-1] == "rule 'p' is part of a dependency cycle; evaluated in file order"


# -- against the definition, on random rule sets ------------------------------------------------


def _reference_order(rules: list[Rule], reads: list[set[str]]) -> list[int]:
    """The definition, directly: repeatedly take the first rule (file order) whose producers are
    all taken; with none, the first rule not taken."""
    outputs = [{r.record} if isinstance(r, RecordingRule) else {"ALERTS", "ALERTS_FOR_STATE"} for r in rules]
    deps = [{j for j in range(len(rules)) if j != i and reads[i] & outputs[j]} for i in range(len(rules))]
    order: list[int] = []
    while len(order) < len(rules):
        free = [i for i in range(len(rules)) if i not in order and deps[i] <= set(order)]
        order.append(free[0] if free else min(i for i in range(len(rules)) if i not in order))
    return order


_NAMES = ["m0", "m1", "m2", "m3", "ALERTS"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(_NAMES[:4]), st.sets(st.sampled_from(_NAMES), max_size=3)),
        min_size=1,
        max_size=12,
    ),
    st.integers(min_value=1, max_value=4),
)
def test_order_equals_the_definition(spec: list[tuple[bool, str, set[str]]], per_group: int) -> None:
    rules: list[Rule] = []
    reads: list[set[str]] = []
    for k, (alert, name, read) in enumerate(spec):
        expr = " + ".join(sorted(read)) or "vector(1)"
        rules.append(AlertingRule(f"A{k}", expr) if alert else RecordingRule(name, expr))
        reads.append(read)
    flat = [(k // per_group, k % per_group, r) for k, r in enumerate(rules)]
    order, _ = _order(flat)
    assert order == _reference_order(rules, reads)


def test_active_at_by_name_is_the_filtered_list() -> None:
    ev = evaluate_rules(parse_rules(_units(4, grouped=True), "t.yml"), _store(), 0, 20 * MIN)
    every = ev.active_at(10 * MIN)
    for name in ("A0", "A3", "missing"):
        assert ev.active_at(10 * MIN, name) == [a for a in every if a["labels"]["alertname"] == name]
