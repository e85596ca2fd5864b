"""Parsing PromQL text with ``promql-parser`` and reporting errors with a position.

The parser only says *what* is wrong; Prometheus users expect ``line:col: parse error: ...``.
The position is recovered here: messages naming a token are located in the text, and other
errors are located at the shortest prefix of the query that already fails the same way.

The parser reads the union of the Prometheus versions' languages (``holt_winters`` is registered
with it). A :class:`Dialect` says what one version accepts: :data:`PROMETHEUS_2` is Prometheus
2.42, :data:`PROMETHEUS_3` the default (Prometheus 3, experimental functions enabled as with
``--enable-feature=promql-experimental-functions``). ``parse(text, dialect)`` rejects what that
version rejects, with its wording and position; ``parse(text)`` checks no version (for text that
was already checked when its rule file was read).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import promql_parser

from sloanalysis._go import match_op
from sloanalysis.errors import UserError
from sloanalysis.promql.walk import walk


class PromQLError(UserError):
    """A PromQL expression that cannot be parsed or evaluated (user error)."""


# Prometheus 2's name for double_exponential_smoothing (renamed in 3.0); same arguments.
promql_parser.register_extra_functions(
    [
        promql_parser.Function(
            "holt_winters",
            [promql_parser.ValueType.Matrix, promql_parser.ValueType.Scalar, promql_parser.ValueType.Scalar],
            promql_parser.ValueType.Vector,
        )
    ]
)


@dataclass(frozen=True)
class Dialect:
    """The language of one Prometheus version: PromQL functions and syntax, rule-file fields.

    ``missing_functions``: functions the parser knows that this version does not;
    ``experimental``: functions (and the ``limitk``/``limit_ratio`` aggregations) that need
    ``--enable-feature=promql-experimental-functions``; ``legacy_syntax``: Prometheus 2's lexer
    (no quoted names in selectors, durations need a unit); ``utf8_names``: any UTF-8 text is a
    metric or label name (Prometheus 3), else ``[a-zA-Z_:][a-zA-Z0-9_:]*``; the ``*_fields`` are
    the keys ``rulefmt`` reads, ``*_type`` the Go type names its decoder errors cite.
    """

    name: str
    prometheus2: bool
    missing_functions: frozenset[str]
    experimental: frozenset[str]
    experimental_enabled: bool
    legacy_syntax: bool
    utf8_names: bool
    group_fields: tuple[str, ...]
    rule_fields: tuple[str, ...]
    rule_type: str
    group_node_type: str


_EXPERIMENTAL_3 = frozenset(
    [
        "double_exponential_smoothing",
        "end",
        "first_over_time",
        "histogram_quantiles",
        "info",
        "integral",
        "limit_ratio",
        "limitk",
        "mad_over_time",
        "range",
        "sort_by_label",
        "sort_by_label_desc",
        "start",
        "step",
        "ts_of_first_over_time",
        "ts_of_last_over_time",
        "ts_of_max_over_time",
        "ts_of_min_over_time",
    ]
)
# Checked against promtool 2.42 (tests/test_rule_reader.py): these calls are "unknown function".
_MISSING_2_42 = _EXPERIMENTAL_3 | {"histogram_avg", "histogram_stddev", "histogram_stdvar"}
_RULE_FIELDS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")

PROMETHEUS_2 = Dialect(
    name="Prometheus 2.42",
    prometheus2=True,
    missing_functions=_MISSING_2_42,
    experimental=frozenset(),
    experimental_enabled=False,
    legacy_syntax=True,
    utf8_names=False,
    group_fields=("name", "interval", "limit", "rules"),
    rule_fields=_RULE_FIELDS,
    rule_type="rulefmt.RuleNode",
    group_node_type="[]yaml.Node",
)
PROMETHEUS_3 = Dialect(
    name="Prometheus 3",
    prometheus2=False,
    missing_functions=frozenset({"holt_winters"}),
    experimental=_EXPERIMENTAL_3,
    experimental_enabled=True,
    legacy_syntax=False,
    utf8_names=True,
    group_fields=("name", "interval", "query_offset", "limit", "rules", "labels"),
    rule_fields=_RULE_FIELDS,
    rule_type="rulefmt.Rule",
    group_node_type="[]rulefmt.RuleGroupNode",
)


def dialect_for(prometheus2: bool) -> Dialect:
    """The dialect of ``--prometheus2`` (2.42) or of the default (Prometheus 3)."""
    return PROMETHEUS_2 if prometheus2 else PROMETHEUS_3


# promql-parser names value types after its Rust enum; Prometheus says "range vector" etc.
_TYPE_WORDS = {"matrix": "range vector", "vector": "instant vector", "scalar": "scalar", "string": "string"}


def _prometheus_wording(msg: str) -> str:
    def typ(m: re.Match[str]) -> str:
        return _TYPE_WORDS.get(m.group(1), m.group(1))

    # Prometheus's lexer reports a bracket left open at the end as unclosed.
    msg = msg.replace("unexpected end of input inside brackets", "unclosed left bracket")
    # A string expected from count_values's first argument is its parameter, not its expression.
    msg = msg.replace(
        "expected type string in aggregation expression", "expected type string in aggregation parameter"
    )
    # model.ParseDuration quotes the text it rejects: not a valid duration string: "5m1h".
    msg = re.sub(r"^(not a valid duration string: )([^\"]\S*)$", r'\1"\2"', msg)
    msg = re.sub(r"(?<=expected type )(\w+)", typ, msg)
    msg = re.sub(r"(?<=got )(\w+)$", typ, msg)
    return re.sub(r"'([^']*)'", r'"\1"', msg)


def _try_parse(text: str) -> str | None:
    try:
        promql_parser.parse(text)
    except BaseException as exc:  # the Rust extension raises ValueError, or a panic
        if isinstance(exc, KeyboardInterrupt):
            raise
        return str(exc)
    return None


def _value_type(node: Any) -> str:
    """Static type of a parsed expression in promql-parser's words (matrix, vector, ...)."""
    while isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr):
        node = node.expr
    if isinstance(node, promql_parser.StringLiteral):
        return "string"
    if isinstance(node, promql_parser.NumberLiteral):
        return "scalar"
    if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        return "matrix"
    if isinstance(node, promql_parser.Call):
        return str(node.func.return_type).rsplit(".", 1)[-1].lower()
    if isinstance(node, promql_parser.BinaryExpr):
        sides = {_value_type(node.lhs), _value_type(node.rhs)}
        return "scalar" if sides == {"scalar"} else "vector"
    return "vector"


def _call_args(text: str, name: str) -> list[tuple[int, str]]:
    """(offset, text) of each top-level argument of the first call of ``name`` in ``text``."""
    m = re.search(rf"(?<![\w:]){re.escape(name)}\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(", text)
    if m is None:
        return []
    args: list[tuple[int, str]] = []
    depth, start, i, quote = 0, m.end(), m.end(), ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote != "`":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                args.append((start, text[start:i]))
                return args
            depth -= 1
        elif c == "," and depth == 0:
            args.append((start, text[start:i]))
            start = i + 1
        i += 1
    return args


def _argument_offset(text: str, name: str, got: str) -> int | None:
    """Offset of the first argument of call ``name`` whose type is ``got`` (where Prometheus points)."""
    for offset, arg in _call_args(text, name):
        if _try_parse(arg) is None and _value_type(promql_parser.parse(arg)) == got:
            return offset + len(arg) - len(arg.lstrip())
    return None


_CALL_TYPE = re.compile(r"expected type \w+ in call to function '(\w+)', got (\w+)")
_AGG_TYPE = re.compile(r"expected type (\w+) in aggregation expression, got (\w+)")


def _error_offset(text: str, msg: str) -> int:
    """Best-effort 0-based offset of the error ``msg`` in ``text``."""
    typed = _CALL_TYPE.match(msg)
    if typed:
        found = _argument_offset(text, typed.group(1), typed.group(2))
        if found is not None:
            return found
    agg = _AGG_TYPE.match(msg)
    if agg:
        m = re.match(r"\s*(\w+)", text)
        found = _argument_offset(text, m.group(1), agg.group(2)) if m else None
        if found is not None:
            return found
    if "end of input" in msg or "unclosed" in msg:
        return len(text.rstrip())
    bad_duration = re.match(r"not a valid duration string: \"?([^\"\s]+)", msg)
    if bad_duration and bad_duration.group(1) in text:  # Prometheus points at the duration
        return text.find(bad_duration.group(1))
    for quoted in re.findall(r"'([^']+)'|\"([^\"]+)\"", msg):
        token = quoted[0] or quoted[1]
        pos = text.find(token)
        if pos >= 0:
            return pos
    # The first prefix failing with the same message pins the offending token.
    for end in range(1, len(text) + 1):
        if _try_parse(text[:end]) == msg:
            return max(end - 1, 0)
    return 0


_NODE_TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*|\S")


def node_offset(text: str, printed: str) -> int:
    """Offset in ``text`` of the expression the parser prints as ``printed`` (-1 if not found).

    The printer normalises spacing, quotes, durations (``300s`` -> ``5m``) and empty braces, so
    after an exact search the leading names and punctuation are matched with any spacing, up to
    the first token the printer may have rewritten (a number, duration or string)."""
    exact = text.find(printed)
    if exact >= 0:
        return exact
    tokens: list[str] = []
    for tok in _NODE_TOKEN.findall(printed.replace("{}", "")):
        if tok[0].isdigit() or tok in ('"', "'", "`", "."):
            break
        tokens.append(tok)
    if not tokens:
        return -1
    m = re.search(r"\s*".join(re.escape(t) for t in tokens), text)
    return m.start() if m else -1


def position(text: str, offset: int) -> str:
    """``line:col`` (1-based) of a 0-based offset, as Prometheus prints positions."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{col}"


# Deepest nesting of brackets an expression may have. Prometheus has no such limit, but the parser
# (Rust) aborts the process past a few thousand levels and the evaluator recurses once per level;
# real expressions stay below 20.
MAX_NESTING = 128


def _code_chars(text: str) -> Iterator[tuple[int, str]]:
    """Each character of ``text`` with its offset, outside string literals and comments."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'`":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" and c != "`" else 1
            i = j + 1
            continue
        if c == "#":
            nl = text.find("\n", i)
            i = n if nl < 0 else nl
            continue
        yield i, c
        i += 1


def _nesting_depth(text: str) -> tuple[int, int]:
    """The deepest bracket nesting outside strings and comments, and where it is first reached."""
    depth = deepest = at = 0
    for i, c in _code_chars(text):
        if c in "([{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, i
        elif c in ")]}":
            depth -= 1
    return deepest, at


def parse(text: str, dialect: Dialect | None = None) -> Any:
    """Parse ``text``; raise :class:`PromQLError` ``"1:14: parse error: ..."`` on bad input,
    and on what ``dialect``'s version does not accept (none given: any version's language)."""
    if not text.strip():
        raise PromQLError("1:1: parse error: no expression found in input")
    deepest, at = _nesting_depth(text)
    if deepest > MAX_NESTING:
        raise PromQLError(
            f"{position(text, at)}: parse error: expression nested {deepest} levels deep, "
            f"more than the {MAX_NESTING} this engine evaluates"
        )
    msg = _try_parse(text)
    if msg == "invalid promql query" and any(_try_parse(text + t) is None for t in (" 1", " x")):
        # The text stops where an operand must follow ("x +"): Prometheus meets the end first.
        errors = [(len(text), "unexpected end of input")]
    else:
        errors = [] if msg is None else [(_error_offset(text, msg), _prometheus_wording(msg))]
    if dialect is not None and _may_differ(text, dialect):
        found = dialect_errors(text, dialect)
        # Prometheus 2's lexer stops before any check the parser makes; at a tie otherwise the
        # version's own error comes first (it is the token its parser meets first).
        errors = found if any(m.startswith(_LEXER_WORDS) for _, m in found) else found + errors
    if errors:
        offset, message = min(errors, key=lambda e: e[0])
        raise PromQLError(f"{position(text, offset)}: parse error: {message}")
    return promql_parser.parse(text)


# -- what one version accepts ---------------------------------------------------------------------

_LEX = re.compile(
    r"""(?P<ws>\s+)|(?P<comment>\#[^\n]*)
    |(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
    |(?P<num>0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?:[a-zA-Z]+(?:[0-9]+[a-zA-Z]+)*)?)
    |(?P<ident>[a-zA-Z_][a-zA-Z0-9_:]*)
    |(?P<op>.)""",
    re.VERBOSE | re.DOTALL,
)
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "atan2",
        "offset",
    ]
)
_AGGREGATIONS = frozenset(
    [
        "sum",
        "avg",
        "count",
        "min",
        "max",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ]
)
_LIMIT_AGGREGATIONS = frozenset({"limitk", "limit_ratio"})
_LEXER_WORDS = ("unexpected string", "unexpected number", "missing unit", "not a valid duration")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of each token: str, num (numbers and durations), ident, op."""
    out = []
    for m in _LEX.finditer(text):
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            out.append((str(kind), m.group(), m.start()))
    return out


def _may_differ(text: str, dialect: Dialect) -> bool:
    """Cheap test: can ``text`` hold anything the parser accepts and ``dialect`` does not?"""
    if dialect.legacy_syntax or not dialect.experimental_enabled:
        return True
    return any(name in text for name in dialect.missing_functions)


def dialect_errors(text: str, dialect: Dialect) -> list[tuple[int, str]]:
    """(offset, message) of what ``dialect``'s version rejects in ``text`` and the parser accepts:
    functions it does not have or has behind a feature flag, and Prometheus 2's syntax."""
    toks = _tokens(text)
    errors: list[tuple[int, str]] = []
    braces = 0
    for i, (kind, tok, off) in enumerate(toks):
        prev = toks[i - 1][1] if i else ""
        nxt = toks[i + 1] if i + 1 < len(toks) else ("", "", len(text))
        if kind == "op":
            braces += {"{": 1, "}": -1}.get(tok, 0)
        if dialect.legacy_syntax:
            found = _legacy_syntax_error(toks, i, braces)
            if found is not None:
                errors.append(found)
        limit_by = tok in _LIMIT_AGGREGATIONS and nxt[1] in ("by", "without")
        if kind != "ident" or (nxt[1] != "(" and not limit_by):
            continue
        if prev == "@" or tok in _KEYWORDS or tok in _AGGREGATIONS:
            continue
        if tok in dialect.missing_functions:
            if tok in _LIMIT_AGGREGATIONS and nxt[1] != "(":
                errors.append((nxt[2], f"unexpected <{nxt[1]}>"))  # Prometheus 2 lexes limitk as a name
            else:
                errors.append((off, f"unknown function with name {json.dumps(tok)}"))
        elif tok in dialect.experimental and not dialect.experimental_enabled:
            if tok in _LIMIT_AGGREGATIONS:
                errors.append(
                    (
                        off,
                        "limitk() and limit_ratio() are experimental and must be enabled with "
                        "--enable-feature=promql-experimental-functions",
                    )
                )
            else:
                errors.append((off, f"function {json.dumps(tok)} is not enabled"))
    return errors


def _legacy_syntax_error(toks: list[tuple[str, str, int]], i: int, braces: int) -> tuple[int, str] | None:
    """Prometheus 2's lexer at token ``i``: quoted names in selectors, unitless durations."""
    kind, tok, off = toks[i]
    prev = toks[i - 1][1] if i else ""
    if kind == "str" and braces > 0 and prev in ("{", ","):
        return (
            off,
            f"unexpected string {json.dumps(tok, ensure_ascii=False)} in label matching, "
            'expected identifier or "}"',
        )
    if kind != "num" or _DURATION.fullmatch(tok):
        return None
    # A unit after a number that is no duration (1.5h): the lexer makes it a duration token and
    # model.ParseDuration rejects it, wherever a duration may stand.
    unit = re.search(r"[g-zG-Z]", tok.lstrip("0xX")) and not re.fullmatch(r"[0-9.]+[eE][-+]?[0-9]+", tok)
    bad_unit = (off, f'not a valid duration string: "{tok}"')
    if prev == "[":
        return bad_unit if unit else (off, "missing unit character in duration")
    if prev == ":" and i >= 3 and toks[i - 3][1] == "[":
        return (
            bad_unit
            if unit
            else (off, f'unexpected number "{tok}" in subquery selector, expected duration or "]"')
        )
    if prev == "offset" or (prev in ("-", "+") and i >= 2 and toks[i - 2][1] == "offset"):
        return bad_unit if unit else (off, f'unexpected number "{tok}" in offset, expected duration')
    return None


def _at_tokens(text: str) -> list[int | str]:
    """Values of every ``@`` modifier in text order: ms, or "start"/"end".

    Needed because the parser cannot hand out ``@`` times before 1970 (it panics).
    """
    out: list[int | str] = []
    for i, c in _code_chars(text):
        if c == "@":
            m = re.match(r"\s*(start\s*\(\s*\)|end\s*\(\s*\)|[-+]?[0-9.eExXa-fA-F]+)", text[i + 1 :])
            if m:
                tok = m.group(1)
                if tok.startswith("start"):
                    out.append("start")
                elif tok.startswith("end"):
                    out.append("end")
                else:
                    out.append(round(float(tok) * 1000))
    return out


_SIMPLE_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}


def _escaped_literals(text: str) -> Iterator[tuple[str, bytes, str]]:
    """(parser value, Go's bytes, source text) of every string literal with an escape.

    The parser reads ``"\\xc3\\xbf"`` as the two characters U+00C3 U+00BF, where Go reads the
    two bytes of "ÿ"; the bytes tell which string Prometheus really sees.
    """
    for m in re.finditer(r"""(?:"(?:[^"\\]|\\.)*")|(?:'(?:[^'\\]|\\.)*')""", text):
        lit = m.group(0)
        body = lit[1:-1]
        if "\\" not in body:
            continue
        raw = bytearray()
        value: list[str] = []
        i = 0
        while i < len(body):
            c = body[i]
            if c == "\\" and i + 1 < len(body):
                e = body[i + 1]
                if e == "x":
                    b = int(body[i + 2 : i + 4], 16)
                    raw.append(b)
                    value.append(chr(b))
                    i += 4
                    continue
                if e in "01234567":
                    b = int(body[i + 1 : i + 4], 8)
                    raw.append(b)
                    value.append(chr(b))
                    i += 4
                    continue
                if e in _SIMPLE_ESCAPES:
                    raw.append(_SIMPLE_ESCAPES[e])
                    value.append(chr(_SIMPLE_ESCAPES[e]))
                    i += 2
                    continue
                width = 4 if e == "u" else 8 if e == "U" else 0
                ch = chr(int(body[i + 2 : i + 2 + width], 16)) if width else e
                raw.extend(ch.encode("utf-8", errors="surrogatepass"))
                value.append(ch)
                i += 2 + width
                continue
            raw.extend(c.encode("utf-8", errors="surrogatepass"))
            value.append(c)
            i += 1
        yield "".join(value), bytes(raw), lit


def go_string_literals(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """What Prometheus sees in the string literals the parser misreads, from one scan:

    - invalid UTF-8: parser value -> source text. The parser turns ``"\\xff"`` into U+00FF,
      hiding that Prometheus sees the byte 0xFF, which is neither a label name nor a regex;
    - valid UTF-8 spelled in byte escapes: parser value -> Go's string (``"\\xc3\\xbf"`` is "ÿ"
      to Prometheus, two other characters to the parser).
    """
    invalid: dict[str, str] = {}
    decoded: dict[str, str] = {}
    for value, raw, lit in _escaped_literals(text):
        try:
            go = raw.decode("utf-8")
        except UnicodeDecodeError:
            invalid[value] = lit
            continue
        if go != value:
            decoded[value] = go
    return invalid, decoded


def has_fill_modifier(node: Any) -> bool:
    """Whether a binary expression carries ``fill``/``fill_left``/``fill_right`` (an experimental
    Prometheus feature the parser reads but this engine does not evaluate)."""
    mod = getattr(node, "modifier", None)
    fill = getattr(mod, "fill_values", None)
    return fill is not None and (fill.lhs is not None or fill.rhs is not None)


def check_regex_utf8(tree: Any, bad: dict[str, str]) -> None:
    """Reject a regex given as invalid UTF-8 bytes, as Go's regexp (and so Prometheus) does.

    ``bad`` is the first map of :func:`go_string_literals`; RE2 here would match the parser's stand-in
    characters instead of failing.
    """
    if not bad:
        return
    for node in walk(tree):
        if isinstance(node, promql_parser.VectorSelector):
            groups = node.matchers.or_matchers or [node.matchers.matchers]
            for m in (m for group in groups for m in group):
                if match_op(m.op) in ("=~", "!~") and m.value in bad:
                    raise PromQLError(f"invalid regular expression {bad[m.value]}: invalid UTF-8")
        elif isinstance(node, promql_parser.Call) and node.func.name == "label_replace":
            regex = node.args[4] if len(node.args) > 4 else None
            if isinstance(regex, promql_parser.StringLiteral) and regex.val in bad:
                raise PromQLError(f"invalid regular expression in label_replace(): {bad[regex.val]}")


def at_modifiers(text: str, tree: Any) -> dict[int, int | str]:
    """Map ``id(node)`` of every node carrying ``@`` to its time (ms) or "start"/"end".

    ``@`` follows its operand in the text, so a post-order walk visits the modifiers in
    text order; that order lets the text scan stand in when the parser cannot convert one.
    """
    # A range selector's ``@`` is kept on its vector selector but looked up by the range selector.
    ranged = {id(n.vector_selector): n for n in walk(tree) if isinstance(n, promql_parser.MatrixSelector)}
    nodes = [
        ranged.get(id(n), n)
        for n in walk(tree, post_order=True)
        if isinstance(n, promql_parser.VectorSelector | promql_parser.SubqueryExpr) and n.at is not None
    ]
    if not nodes:
        return {}
    tokens: list[int | str] | None = None
    result: dict[int, int | str] = {}
    for idx, node in enumerate(nodes):
        target = node.vector_selector if isinstance(node, promql_parser.MatrixSelector) else node
        at = target.at
        assert at is not None
        if at.type == promql_parser.AtModifierType.Start:
            result[id(node)] = "start"
            continue
        if at.type == promql_parser.AtModifierType.End:
            result[id(node)] = "end"
            continue
        try:
            when: datetime | None = at.at
            assert when is not None
            result[id(node)] = round(when.timestamp() * 1000)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            if tokens is None:
                tokens = _at_tokens(text)
            if len(tokens) != len(nodes):
                raise PromQLError(f"cannot read the @ modifier of {node}") from None
            result[id(node)] = tokens[idx]
    return result
