"""Prometheus alert templates: the subset of Go's ``text/template`` that rule files use in practice.

Prometheus expands each alert label value and annotation with the data ``.Labels``, ``.Value``,
``.ExternalLabels``, ``.ExternalURL`` and the variables ``$labels``, ``$value``,
``$externalLabels``, ``$externalURL`` (``template/template.go``, ``rules/alerting.go``). Supported
here: text and ``{{ }}`` actions with ``{{-``/``-}}`` trimming and ``{{/* comments */}}``;
pipelines (``x | f a``), parenthesised pipelines, variables (``$x := ...``, ``$x = ...``),
fields (``.Labels.job``, ``$labels.job``), string/number/bool literals; ``if``/``else if``/
``else``, ``range`` (with ``$i, $x :=``), ``with``; the functions of Prometheus's template
package (``humanize``, ``humanize1024``, ``humanizeDuration``, ``humanizePercentage``,
``humanizeTimestamp``, ``query``, ``first``, ``label``, ``value``, ``strvalue``, ``sortByLabel``,
``toUpper``, ``toLower``, ``title``, ``match``, ``reReplaceAll``, ``stripPort``, ``stripDomain``,
``safeHtml``, ``parseDuration``, ``toTime``, ``args``, ``externalURL``, ``pathPrefix``) and Go's
builtins (``printf``, ``print``, ``println``, ``len``, ``index``, ``not``, ``and``, ``or``,
``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``html``, ``js``, ``urlquery``).

Not supported: ``define``/``template``/``block``, ``break``/``continue``, method calls. Numbers
compare across int and float (Go rejects ``gt $value 10`` with an int literal; here it works).
Values print as Go prints them (``%v``: ``1e+06``, ``123456``, ``0.1``, ``+Inf``, ``NaN``). As in Prometheus,
an error while expanding yields ``<error expanding template: ...>`` instead of failing the rule.
"""

from __future__ import annotations

import html as _html
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import re2

from sloanalysis._go import format_float
from sloanalysis.durations import parse_prometheus_duration
from sloanalysis.errors import UserError

__all__ = ["QuerySample", "Template", "TemplateError", "expand_alert_template", "parse"]


class TemplateError(UserError):
    """A template that does not parse, or fails while expanding."""


# -- value formatting (Go's fmt) ---------------------------------------------------------------


def go_str(v: Any) -> str:
    """How Go's template engine prints a value."""
    if v is None:
        return "<no value>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{k}:{go_str(val)}" for k, val in sorted(v.items())) + "]"
    if isinstance(v, list | tuple):
        return "[" + " ".join(go_str(x) for x in v) + "]"
    if isinstance(v, QuerySample):
        return "{" + go_str(v.Labels) + " " + go_str(v.Value) + "}"
    return str(v)


@dataclass(frozen=True)
class QuerySample:
    """One element of a ``query`` result, with Go's field names."""

    Labels: dict[str, str]
    Value: float


# -- lexer -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<num>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))
    | (?P<decl>:=)
    | (?P<assign>=)
    | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+)
    | (?P<dot>\.)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<punct>[()|,])
    )""",
    re.VERBOSE,
)


def _lex_action(text: str, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            bad = text[pos:].strip()[:1]
            raise TemplateError(f"{where}: unexpected {json.dumps(bad, ensure_ascii=False)} in operand")
        kind = m.lastgroup
        assert kind is not None
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _split(text: str, name: str) -> list[tuple[str, str, int]]:
    """("text", s, line) and ("action", s, line) pieces, with trim markers applied."""
    pieces: list[tuple[str, str, int]] = []
    pos = 0
    while True:
        start = text.find("{{", pos)
        if start < 0:
            pieces.append(("text", text[pos:], text.count("\n", 0, pos) + 1))
            break
        line = text.count("\n", 0, start) + 1
        body_start = start + 2
        trim_left = text.startswith("- ", body_start) or text.startswith("-\n", body_start)
        lit = text[pos:start]
        if trim_left:
            lit = lit.rstrip()
            body_start += 1
        pieces.append(("text", lit, line))
        if text[body_start:].lstrip().startswith("/*"):
            close = text.find("*/", body_start)
            end = text.find("}}", close + 2 if close >= 0 else body_start)
            if close < 0 or end < 0:
                raise TemplateError(f"template: {name}:{line}: unclosed comment")
            body_end = end
        else:
            end = _find_close(text, body_start)
            if end < 0:
                # Go's parser meets a stray character ("{{ $x }") before the end of the text.
                _lex_action(text[body_start:], f"template: {name}:{line}")
                raise TemplateError(f"template: {name}:{line}: unclosed action")
            body_end = end
        trim_right = (
            body_end > body_start
            and text[body_end - 1] == "-"
            and text[body_end - 2 : body_end - 1].isspace()
        )
        body = text[body_start : body_end - 1 if trim_right else body_end]
        if not body.strip().startswith("/*"):
            pieces.append(("action", body, line))
        pos = end + 2
        if trim_right:
            while pos < len(text) and text[pos].isspace():
                pos += 1
    return pieces


def _find_close(text: str, pos: int) -> int:
    """Index of the ``}}`` closing an action, skipping quoted strings."""
    i = pos
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "`":
            i = text.find("`", i + 1)
            if i < 0:
                return -1
        elif text.startswith("}}", i):
            return i
        i += 1
    return -1


# -- AST -----------------------------------------------------------------------------------


@dataclass
class _Pipe:
    decl: list[str]
    assign: bool
    cmds: list[list[tuple[str, Any]]]


@dataclass
class _Node:
    kind: str  # text | action | if | range | with
    text: str = ""
    pipe: _Pipe | None = None
    body: list[_Node] = field(default_factory=list)
    other: list[_Node] = field(default_factory=list)


_KEYWORDS = {"if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"}
# Variables an alert template starts with (Prometheus prepends their definitions), and Go's "$".
ALERT_VARIABLES = ("$", "$labels", "$externalLabels", "$externalURL", "$value")


class _Parser:
    def __init__(self, text: str, name: str, variables: tuple[str, ...] = ALERT_VARIABLES) -> None:
        self.name = name
        self.pieces = _split(text, name)
        self.i = 0
        self.vars = list(variables)  # in scope, as Go's parser tracks them: use before := fails

    def err(self, line: int, msg: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{line}: {msg}")

    def parse_list(self, stops: tuple[str, ...]) -> tuple[list[_Node], str, list[tuple[str, str]], int]:
        """Nodes until an action whose first word is in ``stops``; returns (nodes, stop, rest, line)."""
        nodes: list[_Node] = []
        while self.i < len(self.pieces):
            kind, s, line = self.pieces[self.i]
            self.i += 1
            if kind == "text":
                if s:
                    nodes.append(_Node("text", text=s))
                continue
            toks = _lex_action(s, f"template: {self.name}:{line}")
            if not toks:
                raise self.err(line, "missing value for command")
            if toks[0][0] != "ident" or toks[0][1] not in ("if", "range", "with"):
                self.declare(toks, line)
            head = toks[0][1] if toks[0][0] == "ident" else ""
            if head in stops:
                return nodes, head, toks[1:], line
            if head in ("else", "end"):
                raise self.err(line, f"unexpected {{{{{head}}}}}")
            if head in ("if", "range", "with"):
                nodes.append(self.parse_block(head, toks[1:], line))
            elif head in _KEYWORDS:
                raise self.err(line, f"{{{{{head}}}}} is not supported")
            else:
                nodes.append(_Node("action", pipe=self.parse_pipe(toks, line)))
        if stops:
            raise self.err(self.pieces[-1][2] if self.pieces else 1, "unexpected EOF")
        return nodes, "", [], 0

    def declare(self, toks: list[tuple[str, str]], line: int) -> None:
        """Bring ``$x :=`` into scope; ``$x =`` must name a variable in scope."""
        for j, (k, _v) in enumerate(toks):
            if k in ("decl", "assign"):
                names = [v for kk, v in toks[:j] if kk == "var"]
                if k == "assign":
                    for n in names:
                        self.use(n, line)
                self.vars.extend(names)
                return

    def use(self, var: str, line: int) -> None:
        name = var.split(".", 1)[0]
        if name not in self.vars:
            raise self.err(line, f"undefined variable {json.dumps(name)}")

    def parse_block(self, kind: str, toks: list[tuple[str, str]], line: int) -> _Node:
        scope = len(self.vars)  # what the block declares ends with it (Go's popVars)
        self.declare(toks, line)
        node = _Node(kind, pipe=self.parse_pipe(toks, line, allow_decl=kind != "if", context=kind))
        node.body, node.other = self.parse_rest(kind, node)
        del self.vars[scope:]
        return node

    def parse_rest(self, kind: str, node: _Node) -> tuple[list[_Node], list[_Node]]:
        """The body and the else branch of an if/range/with block."""
        body, stop, rest, l2 = self.parse_list(("else", "end"))
        other: list[_Node] = []
        if stop == "else":
            if rest and rest[0] == ("ident", "if") and kind == "if":
                other = [self.parse_block("if", rest[1:], l2)]  # consumes the shared {{end}}
            elif rest and rest[0] == ("ident", "with") and kind == "with":
                other = [self.parse_block("with", rest[1:], l2)]
            else:
                if rest:
                    raise self.err(l2, "unexpected tokens after else")
                other, _, _, _ = self.parse_list(("end",))
        return body, other

    def parse_pipe(
        self, toks: list[tuple[str, str]], line: int, allow_decl: bool = True, context: str = "command"
    ) -> _Pipe:
        decl: list[str] = []
        assign = False
        for j, (k, _v) in enumerate(toks):
            if k in ("decl", "assign"):
                head = toks[:j]
                if not head or any(not (kk == "var" or (kk, vv) == ("punct", ",")) for kk, vv in head):
                    raise self.err(line, "bad variable declaration")
                decl, assign, toks = [v for kk, v in head if kk == "var"], k == "assign", toks[j + 1 :]
                break
        cmds: list[list[tuple[str, Any]]] = [[]]
        depth_stack: list[list[list[tuple[str, Any]]]] = []
        for k, v in toks:
            if k == "punct" and v == "|":
                if not cmds[-1]:
                    raise self.err(line, "missing command before |")
                cmds.append([])
            elif k == "punct" and v == "(":
                depth_stack.append(cmds)
                cmds = [[]]
            elif k == "punct" and v == ")":
                if not depth_stack:
                    raise self.err(line, "unexpected right paren")
                inner = _Pipe([], False, cmds)
                cmds = depth_stack.pop()
                cmds[-1].append(("pipe", inner))
            elif k == "punct":
                raise self.err(line, f"unexpected {v!r}")
            else:
                cmds[-1].append(self.operand(k, v, line))
        if depth_stack:
            raise self.err(line, "unclosed left paren")
        if not cmds[-1]:
            raise self.err(line, f"missing value for {context if cmds == [[]] else 'command'}")
        return _Pipe(decl, assign, cmds)

    def operand(self, k: str, v: str, line: int) -> tuple[str, Any]:
        if k == "str":
            return ("lit", json.loads(v) if "\\" in v else v[1:-1])
        if k == "raw":
            return ("lit", v[1:-1])
        if k == "num":
            try:
                return ("lit", int(v, 0))
            except ValueError:
                return ("lit", float(v))
        if k == "ident":
            if v in ("true", "false"):
                return ("lit", v == "true")
            if v == "nil":
                return ("lit", None)
            if v not in FUNCTIONS:
                raise self.err(line, f'function "{v}" not defined')
            return ("func", v)
        if k == "var":
            self.use(v, line)
            name, *chain = v.split(".")
            return ("var", (name, chain))
        if k == "field":
            return ("field", v.split(".")[1:])
        if k == "dot":
            return ("dot", None)
        raise self.err(line, f"unexpected {v!r}")


# -- evaluation ------------------------------------------------------------------------------


def _truth(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    if isinstance(v, str | list | tuple | dict):
        return len(v) > 0
    return True


def _to_float(v: Any) -> float:
    if isinstance(v, bool):
        raise TemplateError(f"can't convert {v!r} to float")
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            raise TemplateError(f'strconv.ParseFloat: parsing "{v}": invalid syntax') from None
    raise TemplateError(f"can't convert {go_str(v)} to float")


def _humanize(v: Any) -> str:
    x = _to_float(v)
    if x == 0 or math.isnan(x) or math.isinf(x):
        return format_float(x, "g", 4)
    prefix = ""
    if abs(x) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(x) < 1000:
                break
            prefix, x = p, x / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(x) >= 1:
                break
            prefix, x = p, x * 1000
    return format_float(x, "g", 4) + prefix


def _humanize1024(v: Any) -> str:
    x = _to_float(v)
    if abs(x) <= 1 or math.isnan(x) or math.isinf(x):
        return format_float(x, "g", 4)
    prefix = ""
    for p in ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"):
        if abs(x) < 1024:
            break
        prefix, x = p, x / 1024
    return format_float(x, "g", 4) + prefix


def _humanize_duration(v: Any) -> str:
    x = _to_float(v)
    if math.isnan(x) or math.isinf(x):
        return format_float(x, "g", 4)
    if x == 0:
        return format_float(x, "g", 4) + "s"
    if abs(x) >= 1:
        sign = "-" if x < 0 else ""
        x = abs(x)
        d = int(x)
        s, m, h, days = d % 60, (d // 60) % 60, (d // 3600) % 24, d // 86400
        if days:
            return f"{sign}{days}d {h}h {m}m {s}s"
        if h:
            return f"{sign}{h}h {m}m {s}s"
        if m:
            return f"{sign}{m}m {s}s"
        return f"{sign}{format_float(x, 'g', 4)}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(x) >= 1:
            break
        prefix, x = p, x * 1000
    return f"{format_float(x, 'g', 4)}{prefix}s"


def _humanize_timestamp(v: Any) -> str:
    x = _to_float(v)
    if math.isnan(x) or math.isinf(x):
        return format_float(x, "g", 4)
    t = datetime.fromtimestamp(x, tz=UTC)
    frac = f"{t.microsecond:06d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*))?([a-zA-Z%])")


def _printf(fmt: Any, *args: Any) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use."""
    out: list[str] = []
    pos = 0
    it = iter(args)
    for m in _VERB.finditer(str(fmt)):
        out.append(str(fmt)[pos : m.start()])
        pos = m.end()
        flags, width, prec, verb = m.group(1), m.group(2) or "", m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        try:
            a = next(it)
        except StopIteration:
            out.append(f"%!{verb}(MISSING)")
            continue
        spec = flags + width + (f".{prec}" if prec is not None else "")
        if verb in "eEfFgG":
            if isinstance(a, int | float) and not isinstance(a, bool):
                x = float(a)
                if math.isnan(x) or math.isinf(x):
                    s = "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")
                    out.append(f"{s:>{width}}" if width else s)
                else:
                    out.append(("%" + spec + verb) % x)
            else:
                out.append(f"%!{verb}({_type_name(a)}={go_str(a)})")
        elif verb in "dxXob":
            if isinstance(a, int) and not isinstance(a, bool):
                out.append(
                    ("%" + spec + ("d" if verb == "b" else verb)) % a if verb != "b" else format(a, "b")
                )
            else:
                out.append(f"%!{verb}({_type_name(a)}={go_str(a)})")
        elif verb in "sv":
            s = go_str(a) if verb == "v" or isinstance(a, str) else f"%!s({_type_name(a)}={go_str(a)})"
            if verb == "v" and isinstance(a, float) and prec is not None:
                s = ("%." + prec + "g") % a
            out.append(("%" + flags.replace("0", "") + width + "s") % s if width else s)
        elif verb == "q":
            out.append(json.dumps(go_str(a)))
        elif verb == "t":
            out.append(go_str(a) if isinstance(a, bool) else f"%!t({_type_name(a)}={go_str(a)})")
        else:
            out.append(f"%!{verb}({_type_name(a)}={go_str(a)})")
    out.append(str(fmt)[pos:])
    extra = list(it)
    if extra:
        out.append("%!(EXTRA " + ", ".join(f"{_type_name(a)}={go_str(a)}" for a in extra) + ")")
    return "".join(out)


def _type_name(a: Any) -> str:
    if isinstance(a, bool):
        return "bool"
    if isinstance(a, int):
        return "int"
    if isinstance(a, float):
        return "float64"
    if isinstance(a, str):
        return "string"
    return type(a).__name__


def _compare(op: str, a: Any, b: Any) -> bool:
    num = (int, float)
    if isinstance(a, num) and isinstance(b, num) and not isinstance(a, bool) and not isinstance(b, bool):
        x, y = float(a), float(b)
    elif type(a) is type(b) and isinstance(a, str | bool):
        x, y = a, b  # type: ignore[assignment]
    else:
        if op in ("eq", "ne"):
            raise TemplateError("incompatible types for comparison")
        raise TemplateError("incompatible types for comparison")
    if op == "eq":
        return x == y
    if op == "ne":
        return x != y
    if isinstance(x, bool):
        raise TemplateError("invalid type for comparison")
    return {"lt": x < y, "le": x <= y, "gt": x > y, "ge": x >= y}[op]


def _first(v: Any) -> Any:
    if not isinstance(v, list | tuple) or not v:
        raise TemplateError("first() called on vector with no elements")
    return v[0]


def _label(name: Any, s: Any) -> str:
    if not isinstance(s, QuerySample):
        raise TemplateError("label() expects a query sample")
    return s.Labels.get(str(name), "")


def _value(s: Any) -> float:
    if not isinstance(s, QuerySample):
        raise TemplateError("value() expects a query sample")
    return s.Value


def _strip_port(hostport: Any) -> str:
    h = str(hostport)
    if h.startswith("["):
        end = h.find("]")
        return h[1:end] if end > 0 else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def _parse_duration(d: Any) -> float:
    try:
        return parse_prometheus_duration(str(d), what="parseDuration") / 1000.0
    except UserError as exc:
        raise TemplateError(str(exc)) from None


def _index(container: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(container, Mapping):
            container = container.get(k, "")
        elif isinstance(container, list | tuple | str):
            try:
                container = container[int(k)]
            except (IndexError, ValueError, TypeError):
                raise TemplateError(f"error calling index: index out of range: {k}") from None
        else:
            raise TemplateError(f"can't index item of type {_type_name(container)}")
    return container


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "humanize": _humanize,
    "humanize1024": _humanize1024,
    "humanizeDuration": _humanize_duration,
    "humanizePercentage": lambda v: format_float(_to_float(v) * 100, "g", 4) + "%",
    "humanizeTimestamp": _humanize_timestamp,
    "printf": _printf,
    "print": lambda *a: "".join(go_str(x) for x in a),
    "println": lambda *a: " ".join(go_str(x) for x in a) + "\n",
    "len": lambda v: len(v),
    "index": _index,
    "not": lambda v: not _truth(v),
    "eq": lambda a, *bs: any(_compare("eq", a, b) for b in bs),
    "ne": lambda a, b: _compare("ne", a, b),
    "lt": lambda a, b: _compare("lt", a, b),
    "le": lambda a, b: _compare("le", a, b),
    "gt": lambda a, b: _compare("gt", a, b),
    "ge": lambda a, b: _compare("ge", a, b),
    "html": lambda *a: _html.escape("".join(go_str(x) for x in a)),
    "js": lambda *a: json.dumps("".join(go_str(x) for x in a))[1:-1],
    "urlquery": lambda *a: urllib.parse.quote_plus("".join(go_str(x) for x in a)),
    "first": _first,
    "label": _label,
    "value": _value,
    "strvalue": lambda s: s.Labels.get("__value__", "") if isinstance(s, QuerySample) else "",
    "sortByLabel": lambda name, v: sorted(v, key=lambda s: s.Labels.get(str(name), "")),
    "toUpper": lambda s: str(s).upper(),
    "toLower": lambda s: str(s).lower(),
    "title": lambda s: re.sub(r"\b([a-z])", lambda m: m.group(1).upper(), str(s)),
    # Go's regexp is RE2: match and reReplaceAll use RE2 too (ASCII \d \w \s, no lookarounds).
    "match": lambda pattern, s: re2.search(str(pattern), str(s)) is not None,
    "reReplaceAll": lambda pattern, repl, s: re2.sub(
        str(pattern), re.sub(r"\$(\d+|\{\d+\})", lambda m: "\\" + m.group(1).strip("{}"), str(repl)), str(s)
    ),
    "stripPort": _strip_port,
    "stripDomain": lambda h: (lambda host: host.split(".")[0] + h[len(host) :])(_strip_port(h)),
    "safeHtml": lambda s: str(s),
    "parseDuration": _parse_duration,
    "toTime": lambda v: _humanize_timestamp(v),
    "args": lambda *a: {f"arg{i}": x for i, x in enumerate(a)},
    "externalURL": lambda: "",
    "pathPrefix": lambda: "",
    "query": lambda q: [],  # replaced per expansion when a query function is given
    "graphLink": lambda expr: "/graph?g0.expr=" + urllib.parse.quote_plus(str(expr)) + "&g0.tab=0",
    "tableLink": lambda expr: "/graph?g0.expr=" + urllib.parse.quote_plus(str(expr)) + "&g0.tab=1",
}


class Template:
    """A parsed template; :meth:`render` expands it against a dot value and variables."""

    def __init__(self, text: str, name: str = "template") -> None:
        self.text = text
        self.name = name
        self.nodes, _, _, _ = _Parser(text, name).parse_list(())
        self.is_literal = all(n.kind == "text" for n in self.nodes)
        self.uses_value = bool(re.search(r"\$value\b|\.Value\b|\bquery\b", text))

    def render(
        self, dot: Any, variables: Mapping[str, Any], funcs: Mapping[str, Callable[..., Any]] | None = None
    ) -> str:
        out: list[str] = []
        scope = [dict(variables)]
        fns = {**FUNCTIONS, **(funcs or {})}
        self._exec(self.nodes, dot, scope, fns, out)
        return "".join(out)

    def _exec(
        self, nodes: list[_Node], dot: Any, scope: list[dict[str, Any]], fns: Any, out: list[str]
    ) -> None:
        for n in nodes:
            if n.kind == "text":
                out.append(n.text)
            elif n.kind == "action":
                assert n.pipe is not None
                v = self._pipe(n.pipe, dot, scope, fns)
                if not n.pipe.decl:
                    out.append(go_str(v))
            elif n.kind in ("if", "with"):
                assert n.pipe is not None
                scope.append({})
                v = self._pipe(n.pipe, dot, scope, fns)
                if _truth(v):
                    self._exec(n.body, v if n.kind == "with" else dot, scope, fns, out)
                else:
                    self._exec(n.other, dot, scope, fns, out)
                scope.pop()
            elif n.kind == "range":
                assert n.pipe is not None
                decl = n.pipe.decl
                v = self._pipe(_Pipe([], False, n.pipe.cmds), dot, scope, fns)
                items = list(v.items()) if isinstance(v, Mapping) else list(enumerate(v or []))
                if not items:
                    self._exec(n.other, dot, scope, fns, out)
                for k, item in items:
                    frame: dict[str, Any] = {}
                    if len(decl) == 1:
                        frame[decl[0]] = item
                    elif len(decl) == 2:
                        frame[decl[0]], frame[decl[1]] = k, item
                    scope.append(frame)
                    self._exec(n.body, item, scope, fns, out)
                    scope.pop()

    def _lookup(self, scope: list[dict[str, Any]], name: str) -> Any:
        for frame in reversed(scope):
            if name in frame:
                return frame[name]
        raise TemplateError(f"undefined variable: {name}")

    def _pipe(self, pipe: _Pipe, dot: Any, scope: list[dict[str, Any]], fns: Any) -> Any:
        value: Any = _NOTHING
        for cmd in pipe.cmds:
            value = self._command(cmd, dot, scope, fns, value)
        for name in pipe.decl[:1]:
            if pipe.assign:
                for frame in reversed(scope):
                    if name in frame:
                        frame[name] = value
                        break
                else:
                    raise TemplateError(f"undefined variable: {name}")
            else:
                scope[-1][name] = value
        return value

    def _command(self, cmd: list[tuple[str, Any]], dot: Any, scope: Any, fns: Any, piped: Any) -> Any:
        kind, arg = cmd[0]
        if kind == "func":
            args = [self._operand(k, a, dot, scope, fns) for k, a in cmd[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            try:
                return fns[arg](*args)
            except TemplateError:
                raise
            except TypeError:
                raise TemplateError(f"wrong number of args for {arg}: got {len(args)}") from None
            except (ValueError, re.error, re2.error, KeyError, AttributeError) as exc:
                raise TemplateError(f"error calling {arg}: {exc}") from None
        if len(cmd) > 1 or piped is not _NOTHING:
            raise TemplateError(
                f"can't give argument to non-function {go_str(self._operand(kind, arg, dot, scope, fns))}"
            )
        return self._operand(kind, arg, dot, scope, fns)

    def _operand(self, kind: str, arg: Any, dot: Any, scope: Any, fns: Any) -> Any:
        if kind == "lit":
            return arg
        if kind == "dot":
            return dot
        if kind == "pipe":
            return self._pipe(arg, dot, scope, fns)
        if kind == "func":
            return fns[arg]()
        if kind == "var":
            name, chain = arg
            return _fields(self._lookup(scope, name), chain)
        if kind == "field":
            return _fields(dot, arg)
        raise TemplateError(f"unexpected operand {kind}")


_NOTHING = object()


def _fields(v: Any, chain: list[str]) -> Any:
    for name in chain:
        if isinstance(v, Mapping):
            v = v.get(name, "")  # missingkey=zero on map[string]string
        elif hasattr(v, name) and name[:1].isupper():
            v = getattr(v, name)
        else:
            raise TemplateError(f"can't evaluate field {name} in type {_type_name(v)}")
    return v


def parse(text: str, name: str = "template") -> Template:
    """Parse a template; raises :class:`TemplateError` (``template: NAME:LINE: ...``)."""
    return Template(text, name)


def expand_alert_template(
    template: Template,
    labels: Mapping[str, str],
    value: float,
    *,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    query: Callable[[str], list[QuerySample]] | None = None,
) -> str:
    """Expand ``template`` as Prometheus expands an alert's label or annotation."""
    if template.is_literal:
        return template.text
    ext = dict(external_labels or {})
    dot = {"Labels": dict(labels), "ExternalLabels": ext, "ExternalURL": external_url, "Value": value}
    variables = {
        "$labels": dot["Labels"],
        "$externalLabels": ext,
        "$externalURL": external_url,
        "$value": value,
        "$": dot,
    }
    funcs: dict[str, Callable[..., Any]] = {"externalURL": lambda: external_url}
    if query is not None:
        funcs["query"] = query
    try:
        return template.render(dot, variables, funcs)
    except TemplateError as exc:
        return f"<error expanding template: {exc}>"
    except RecursionError:
        return "<error expanding template: too deep>"
