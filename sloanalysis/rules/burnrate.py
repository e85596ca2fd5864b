"""Multiwindow burn-rate alerts: read their factor and windows, and rewrite them.

A burn-rate alert is one or more *pairs* joined by top-level ``or``; a pair is two conditions
joined by top-level ``and``, each ``error_ratio > F * budget`` (possibly inside an aggregation such
as ``max without (slo_window) (...)``), where ``budget`` is ``(1 - objective)`` or a number and
the error ratio reads one window: the range selectors of a raw expression (``rate(x[1h])``), or
the window suffix of a recorded metric (``slo:sli_error:ratio_rate1h`` as ``sloanalysis
generate-rules`` and Sloth write it, ``http_requests:burnrate1h`` as Pyrra does). The condition
with the longer window is the pair's *long* one. A pair fires when the error ratio over both
windows exceeds ``F * budget``; tuning sets ``F`` on both conditions (:func:`with_burn_rate`), and
optionally the windows: range selectors are rewritten in place, a recorded metric is renamed to
the new window's name and its recording rule copied for that window (:func:`ensure_recorded`).

The expression is rewritten as text, so everything else stays as written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from sloanalysis.durations import format_duration_ms, is_prometheus_duration, parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.promql import PromQLError, parse
from sloanalysis.rules.model import RecordingRule, RuleGroup

__all__ = [
    "BurnCondition",
    "BurnPair",
    "BurnRateAlert",
    "ensure_recorded",
    "split_burn_rate",
    "with_burn_rate",
]

_NUM = r"(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
# ``> F * (1 - objective)`` or ``> (F * budget)``: group 1 is F, 2 the objective, 3 the budget.
_THRESHOLD = re.compile(rf">=?\s*\(?\s*({_NUM})\s*\*\s*(?:\(\s*1\s*-\s*({_NUM})\s*\)|({_NUM}))\s*\)?")
_DUR = r"(?:\d+(?:ms|[smhdwy]))+"
_RANGE = re.compile(rf"\[\s*({_DUR})\s*\]")
_SUBQUERY = re.compile(rf"\[\s*{_DUR}\s*:")
# a recorded metric whose name ends in its window: ..._rate5m, ...:burnrate1h (not a function call)
_RECORDED = re.compile(
    rf"(?<![\w:])([a-zA-Z_:][\w:]*?(?:rate|burnrate|ratio_rate))({_DUR})(?![\w:])(?!\s*\()"
)
_QUOTED = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')


@dataclass(frozen=True)
class BurnCondition:
    """One side of a pair: ``error_ratio > factor * budget``; spans are positions in the alert's
    expression (``factor_span`` of the number ``F``, ``window_spans`` of each window text)."""

    factor: float
    budget: float
    factor_span: tuple[int, int]
    window_ms: int | None
    window_spans: tuple[tuple[int, int], ...]
    recorded: str | None  # the recorded metric's name without its window suffix, if any


@dataclass(frozen=True)
class BurnPair:
    long: BurnCondition
    short: BurnCondition

    @property
    def factor(self) -> float:
        return self.long.factor


@dataclass(frozen=True)
class BurnRateAlert:
    expr: str
    pairs: tuple[BurnPair, ...]


def _mask_quotes(text: str) -> str:
    """``text`` with quoted strings blanked (same length), so that brackets and words in label
    values are not read as syntax."""
    return _QUOTED.sub(lambda m: m.group(0)[0] + " " * (len(m.group(0)) - 2) + m.group(0)[-1], text)


def _split_top(masked: str, lo: int, hi: int, word: str) -> list[tuple[int, int]]:
    """Spans of ``masked[lo:hi]`` separated by ``word`` outside every bracket."""
    parts, depth, start = [], 0, lo
    pattern = re.compile(rf"\b{word}\b")
    i = lo
    while i < hi:
        c = masked[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif (
            depth == 0
            and (m := pattern.match(masked, i))
            and m.end() <= hi
            and (i == lo or not (masked[i - 1].isalnum() or masked[i - 1] in "_:"))
        ):
            parts.append((start, i))
            start = i = m.end()
            continue
        i += 1
    parts.append((start, hi))
    return parts


def _strip_parens(masked: str, lo: int, hi: int) -> tuple[int, int]:
    """The span without surrounding whitespace and enclosing parentheses."""
    while True:
        while lo < hi and masked[lo].isspace():
            lo += 1
        while hi > lo and masked[hi - 1].isspace():
            hi -= 1
        if not (masked[lo : lo + 1] == "(" and masked[hi - 1 : hi] == ")"):
            return lo, hi
        depth = 0
        for i in range(lo, hi):
            depth += {"(": 1, ")": -1}.get(masked[i], 0)
            if depth == 0 and i < hi - 1:
                return lo, hi  # "(a) and (b)": the first parenthesis closes early
        lo, hi = lo + 1, hi - 1


def _condition(masked: str, lo: int, hi: int) -> BurnCondition | None:
    found = list(_THRESHOLD.finditer(masked, lo, hi))
    if len(found) != 1:
        return None
    m = found[0]
    factor = float(m.group(1))
    budget = 1.0 - float(m.group(2)) if m.group(2) is not None else float(m.group(3))
    if _SUBQUERY.search(masked, lo, hi):
        return None
    ranges = [r for r in _RANGE.finditer(masked, lo, hi) if not (m.start() <= r.start() < m.end())]
    recorded = None
    if ranges:
        windows = {parse_prometheus_duration(r.group(1)) for r in ranges}
        spans = tuple(r.span(1) for r in ranges)
    else:
        names = list(_RECORDED.finditer(masked, lo, hi))
        windows = {parse_prometheus_duration(r.group(2)) for r in names}
        spans = tuple(r.span(2) for r in names)
        recorded = names[0].group(1) if len({r.group(1) for r in names}) == 1 and names else None
    window = windows.pop() if len(windows) == 1 else None
    return BurnCondition(factor, budget, m.span(1), window, spans if window else (), recorded)


def split_burn_rate(expr: str) -> BurnRateAlert | None:
    """``expr`` read as a multiwindow burn-rate alert (see the module docstring), or None."""
    masked = _mask_quotes(expr)
    pairs = []
    for lo, hi in _split_top(masked, 0, len(masked), "or"):
        plo, phi = _strip_parens(masked, lo, hi)
        sides = _split_top(masked, plo, phi, "and")
        if len(sides) != 2:
            return None
        a = _condition(masked, *_strip_parens(masked, *sides[0]))
        b = _condition(masked, *_strip_parens(masked, *sides[1]))
        if a is None or b is None:
            return None
        if a.window_ms is not None and b.window_ms is not None and a.window_ms < b.window_ms:
            a, b = b, a
        pairs.append(BurnPair(long=a, short=b))
    return BurnRateAlert(expr, tuple(pairs)) if pairs else None


def _number(x: float) -> str:
    return str(int(x)) if math.isfinite(x) and x == int(x) else repr(float(x))


def with_burn_rate(
    expr: str, *, factor: float | None = None, windows: tuple[int, int] | None = None, pair: int = 1
) -> tuple[str, list[tuple[str, int, int]]]:
    """``expr`` with pair ``pair`` (1-based, in the order written) given the factor and/or
    ``(long_ms, short_ms)`` windows, and the recorded metrics it now reads that need a recording
    rule: ``(name prefix, old window, new window)`` per renamed metric."""
    alert = split_burn_rate(expr)
    if alert is None:
        raise UserError(f"expression is not a multiwindow burn-rate alert: {expr!r}")
    if not 1 <= pair <= len(alert.pairs):
        raise UserError(f"--pair: the alert has {len(alert.pairs)} window pair(s), not {pair}")
    chosen = alert.pairs[pair - 1]
    edits: list[tuple[tuple[int, int], str]] = []
    renamed: list[tuple[str, int, int]] = []
    for cond, new_window in ((chosen.long, windows and windows[0]), (chosen.short, windows and windows[1])):
        if factor is not None:
            edits.append((cond.factor_span, _number(factor)))
        if new_window:
            if cond.window_ms is None:
                raise UserError(f"cannot rewrite the windows of {expr!r}: a condition reads several windows")
            edits.extend((span, format_duration_ms(new_window)) for span in cond.window_spans)
            if cond.recorded is not None and new_window != cond.window_ms:
                renamed.append((cond.recorded, cond.window_ms, new_window))
    out = expr
    for (a, b), text in sorted(edits, reverse=True):
        out = out[:a] + text + out[b:]
    try:
        parse(out)
    except PromQLError as exc:
        raise UserError(f"cannot rewrite the burn-rate alert {expr!r}: {exc}") from None
    return out, renamed


def ensure_recorded(groups: list[RuleGroup], prefix: str, old_ms: int, new_ms: int) -> list[RuleGroup]:
    """``groups`` with a recording rule for ``prefix + new window`` next to each rule recording
    ``prefix + old window`` that has no counterpart yet: its expression with the old window's range
    selectors set to the new one, its window label (``slo_window``, ``sloth_window``) too."""
    old_name, new_name = prefix + format_duration_ms(old_ms), prefix + format_duration_ms(new_ms)
    have = {
        tuple(sorted(_without_window(r.labels).items()))
        for g in groups
        for r in g.rules
        if isinstance(r, RecordingRule) and r.record == new_name
    }
    found = False
    out = []
    for g in groups:
        rules: list = []
        for r in g.rules:
            rules.append(r)
            if isinstance(r, RecordingRule) and r.record == old_name:
                found = True
                if tuple(sorted(_without_window(r.labels).items())) not in have:
                    rules.append(_recorded_for(r, new_name, old_ms, new_ms))
        out.append(replace(g, rules=tuple(rules)))
    if not found and not have:
        raise UserError(f"no recording rule {old_name!r} to derive {new_name!r} from")
    return out


def _without_window(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if not k.endswith("_window")}


def _recorded_for(rule: RecordingRule, name: str, old_ms: int, new_ms: int) -> RecordingRule:
    masked = _mask_quotes(rule.expr)
    spans = [m.span(1) for m in _RANGE.finditer(masked) if parse_prometheus_duration(m.group(1)) == old_ms]
    if not spans:
        raise UserError(
            f"recording rule {rule.record!r} reads no {format_duration_ms(old_ms)} range: "
            f"cannot derive {name!r} from it"
        )
    expr = rule.expr
    for a, b in reversed(spans):
        expr = expr[:a] + format_duration_ms(new_ms) + expr[b:]
    labels = {
        k: format_duration_ms(new_ms)
        if k.endswith("_window") and is_prometheus_duration(v) and parse_prometheus_duration(v) == old_ms
        else v
        for k, v in rule.labels.items()
    }
    return RecordingRule(name, expr, labels)
