"""The PromQL syntax-tree walk and the questions asked with it, on hand-read expressions."""

from __future__ import annotations

import promql_parser as pp

from sloanalysis.promql.walk import children, longest_window_ms, metric_names, selectors, walk


def _kinds(nodes: object) -> list[str]:
    return [type(n).__name__ for n in nodes]  # type: ignore[attr-defined]


def test_walk_visits_every_node_parents_first() -> None:
    tree = pp.parse('sum by (a) (rate(x[5m])) / -count_values("v", y)')
    assert _kinds(walk(tree)) == [
        "BinaryExpr",
        "AggregateExpr",
        "Call",
        "MatrixSelector",
        "VectorSelector",
        "UnaryExpr",
        "AggregateExpr",
        "StringLiteral",
        "VectorSelector",
    ]


def test_post_order_puts_children_first() -> None:
    tree = pp.parse("(a + max_over_time(b[1m:]))")
    assert _kinds(walk(tree, post_order=True)) == [
        "VectorSelector",
        "VectorSelector",
        "SubqueryExpr",
        "Call",
        "BinaryExpr",
        "ParenExpr",
    ]


def test_leaves_have_no_children() -> None:
    for text in ("1", '"s"', "up"):
        assert children(pp.parse(text)) == []


def test_selectors_include_those_in_ranges_and_subqueries() -> None:
    tree = pp.parse("a + rate(b[5m]) + sum(c offset 1m) + max_over_time(d[1h:5m]) + topk(scalar(e), f)")
    assert [vs.name for vs in selectors(tree)] == ["a", "b", "c", "d", "e", "f"]


def test_longest_window() -> None:
    assert longest_window_ms(pp.parse("rate(x[5m]) + max_over_time(rate(y[2m])[1h:1m])")) == 3_600_000
    assert longest_window_ms(pp.parse("rate(x[90s])")) == 90_000
    assert longest_window_ms(pp.parse("x + 1")) == 0


def test_metric_names_by_name_or_equality_matcher() -> None:
    tree = pp.parse('{__name__="foo"} + bar{job="j"} + {__name__=~"baz.*"} + {__name__!="qux", job="j"}')
    assert metric_names(tree) == {"foo", "bar"}
