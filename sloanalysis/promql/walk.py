"""One walk over promql_parser syntax trees, and the questions callers ask with it.

Children are read from the node attributes promql_parser defines (``expr``, ``lhs``, ``rhs``,
``param``, ``vector_selector``, ``args``); a matrix selector's vector selector counts as its child.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import promql_parser as pp

from sloanalysis._go import match_op
from sloanalysis.store import METRIC_NAME

__all__ = ["children", "duration_ms", "longest_window_ms", "metric_names", "selectors", "walk"]


def children(node: Any) -> list[Any]:
    """Direct sub-expressions of ``node``, in text order (an aggregation's parameter first)."""
    if isinstance(node, pp.BinaryExpr):
        return [node.lhs, node.rhs]
    if isinstance(node, pp.AggregateExpr):
        return [node.expr] if node.param is None else [node.param, node.expr]
    if isinstance(node, pp.Call):
        return [a for a in node.args if isinstance(a, pp.Expr)]
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        return [node.expr]
    if isinstance(node, pp.MatrixSelector):
        return [node.vector_selector]
    return []


def walk(node: Any, *, post_order: bool = False) -> Iterator[Any]:
    """Every node under ``node`` (itself included), depth first: parents before children, or after
    them with ``post_order`` (then ``@`` modifiers come in text order)."""
    if not post_order:
        yield node
    for child in children(node):
        yield from walk(child, post_order=post_order)
    if post_order:
        yield node


def duration_ms(delta: timedelta | None) -> int:
    """Milliseconds of a parser duration (exact: timedelta holds whole microseconds); 0 for None."""
    if delta is None:
        return 0
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def selectors(node: Any) -> Iterator[Any]:
    """The vector selectors ``node`` reads, those inside range selectors included."""
    return (n for n in walk(node) if isinstance(n, pp.VectorSelector))


def longest_window_ms(node: Any) -> int:
    """The longest range-selector or subquery range under ``node`` (0 without any)."""
    return max(
        (duration_ms(n.range) for n in walk(node) if isinstance(n, pp.MatrixSelector | pp.SubqueryExpr)),
        default=0,
    )


def metric_names(node: Any) -> set[str]:
    """Metric names selected by name or by an equality ``__name__`` matcher."""
    names: set[str] = set()
    for vs in selectors(node):
        if vs.name:
            names.add(vs.name)
        names.update(m.value for m in vs.matchers.matchers if m.name == METRIC_NAME and match_op(m.op) == "=")
    return names
