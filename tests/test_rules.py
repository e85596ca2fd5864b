"""Rule-file loading: what Prometheus accepts and rejects, with one-line errors."""

from __future__ import annotations

import pytest

from sloanalysis.promql.parse import PROMETHEUS_2
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
            'f.yml: 5:11: group "a", rule 1, "A": could not parse expression: 1:6: parse error:',
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
            "groups:\n- name: a\n  rules:\n  - record: 'a{b}'\n    expr: x\n",
            '4:13: group "a", rule 1, "a{b}": braces present in the recording rule name',
        ),
    ],
)
def test_rejects_bad_files_with_location(text: str, needle: str) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(text, "f.yml")
    msg = str(info.value)
    assert msg.startswith("f.yml:") and needle in msg and "\n" not in msg


def test_names_are_utf8_in_prometheus_3_and_legacy_in_2() -> None:
    """Prometheus 3 validates names as UTF-8 (any text but braces); 2.42 as [a-zA-Z_:][a-zA-Z0-9_:]*."""
    text = "groups:\n- name: a\n  rules:\n  - record: 'bad name'\n    expr: x\n    labels: {1a: v}\n"
    assert parse_rules(text)[0].rules[0] == RecordingRule("bad name", "x", {"1a": "v"})
    with pytest.raises(RulesError) as info:
        parse_rules(text, "f.yml", dialect=PROMETHEUS_2)
    assert info.value.errors == (
        'f.yml: 4:13: group "a", rule 1, "bad name": invalid recording rule name: bad name',
        'f.yml: group "a", rule 1, "bad name": invalid label name: 1a',
    )


def test_group_labels_join_each_rule_and_lose_to_its_own() -> None:
    g = parse_rules(
        "groups:\n- name: a\n  labels: {team: x, s: low}\n  rules:\n  - alert: A\n    expr: up\n"
        "    labels: {s: page}\n"
    )
    assert g[0].rules[0].labels == {"team": "x", "s": "page"}


def test_only_the_first_yaml_document_is_read() -> None:
    g = parse_rules("groups:\n- name: a\n  rules: []\n---\ngroups: [oops\n")
    assert [x.name for x in g] == ["a"]
