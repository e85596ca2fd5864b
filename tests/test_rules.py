"""Rule-file loading: what Prometheus accepts and rejects, with one-line errors."""

from __future__ import annotations

import pytest

from sloanalysis.rules.model import AlertingRule, RecordingRule, RulesError, parse_rules


def test_loads_groups_rules_and_durations() -> None:
    g = parse_rules(
        "groups:\n- name: a\n  interval: 30s\n  rules:\n  - record: r:x\n    expr: sum(x)\n"
        "  - alert: A\n    expr: r:x > 1\n    for: 2m\n    keep_firing_for: 1m\n    labels: {s: page}\n",
        "f.yml",
    )
    assert g[0].interval_ms == 30_000 and g[0].source == "f.yml"
    assert g[0].rules[0] == RecordingRule("r:x", "sum(x)", {})
    assert g[0].rules[1] == AlertingRule("A", "r:x > 1", 120_000, 60_000, {"s": "page"}, {})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("groups: [\n", "invalid YAML"),
        ("groups:\n- name: a\n  rules:\n  - alert: A\n    expr: x\n    fro: 1m\n", "field fro not found"),
        (
            "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: sum(x\n",
            'group "a", rule 1 (alert "A"): expr',
        ),
        ("groups:\n- name: a\n  rules: []\n- name: a\n  rules: []\n", "repeated"),
        (
            "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: x\n    for: 5 minutes\n",
            "not a valid duration",
        ),
        (
            "groups:\n- name: a\n  rules:\n  - alert: A\n    expr: x\n    annotations: {d: '{{ nope }}'}\n",
            "not defined",
        ),
        ("groups:\n- name: a\n  rules:\n  - record: r\n    expr: x\n    for: 1m\n", "invalid field 'for'"),
        ("groups:\n- name: a\n  rules:\n  - record: r\n    alert: A\n    expr: x\n", "only one of"),
        (
            "groups:\n- name: a\n  rules:\n  - record: 'bad name'\n    expr: x\n",
            "invalid recording rule name",
        ),
    ],
)
def test_rejects_bad_files_with_location(text: str, needle: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, "f.yml")
    msg = str(info.value)
    assert msg.startswith("f.yml:") and needle in msg and "\n" not in msg
