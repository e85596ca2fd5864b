"""Prometheus's ``model/rulefmt`` on a YAML node tree: decode strictly, then validate.

:class:`Decoder` does what Go's ``yaml.v3`` decoder does with ``KnownFields(true)`` on
``rulefmt.RuleGroups``: unknown fields, values of the wrong type and repeated keys are collected
as ``line N: ...`` entries (promtool prints them under ``yaml: unmarshal errors:``); a duration
that does not parse stops decoding with its own message (:class:`Abort`), as ``model.Duration``
does. :func:`validate` then returns ``Validate``'s errors in its order, with its positions
(``line:col`` of the YAML node at fault, ``0:0`` for a field that is absent). Which fields exist,
the Go type names in messages, which names are valid and which PromQL parses come from the
:class:`~sloanalysis.promql.parse.Dialect` (Prometheus 2.42 or 3).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import yaml

from sloanalysis._go import LABEL_NAME_RE, METRIC_NAME_RE
from sloanalysis.durations import parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.promql.parse import Dialect, PromQLError, parse
from sloanalysis.rules import templating

__all__ = ["Abort", "Decoder", "GroupDoc", "RuleDoc", "validate"]

_NULL = "tag:yaml.org,2002:null"


class Abort(Exception):
    """A value whose own decoder failed (a duration): Go's decoder stops at the first one."""


@dataclass
class RuleDoc:
    node: yaml.Node
    fields: dict[str, yaml.Node]
    record: str = ""
    alert: str = ""
    expr: str = ""
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class GroupDoc:
    node: yaml.Node
    name: str = ""
    interval_ms: int = 0
    query_offset_ms: int = 0
    limit: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    rules: list[RuleDoc] = field(default_factory=list)


def _line(msg: str) -> int:
    return int(msg.split(":", 1)[0].removeprefix("line "))


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL and node.style is None


_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO]?[0-7]+|[0-9]+)")
_FLOAT = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_BOOL = {"true", "True", "TRUE", "false", "False", "FALSE"}


def _short_tag(node: yaml.Node) -> str:
    """yaml.v3's resolved tag of a node: !!map, !!seq, !!str, !!int, !!float, !!bool, !!null."""
    if isinstance(node, yaml.MappingNode):
        return "!!map"
    if isinstance(node, yaml.SequenceNode):
        return "!!seq"
    if getattr(node, "style", None) is not None:
        return "!!str"
    text = node.value
    if text in ("", "~", "null", "Null", "NULL"):
        return "!!null"
    if text in _BOOL:
        return "!!bool"
    if _INT.fullmatch(text):
        return "!!int"
    if _FLOAT.fullmatch(text):
        return "!!float"
    return "!!str"


class Decoder:
    """Strict decoding of a rule file's node tree. ``errors`` collects yaml.v3's type errors;
    ``node_errors`` those of promtool's second, position-keeping decoding of the same text."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.errors: list[str] = []
        self.node_errors: list[str] = []

    def messages(self) -> list[str]:
        """One ``yaml: unmarshal errors:`` message per decoding that failed, lines in file order."""
        blocks = [b for b in (self.errors, self.node_errors) if b]
        return ["yaml: unmarshal errors:\n  " + "\n  ".join(sorted(b, key=_line)) for b in blocks]

    def _terror(self, node: yaml.Node, into: str, errors: list[str] | None = None) -> None:
        tag = _short_tag(node)
        value = ""
        if tag not in ("!!map", "!!seq"):
            text = node.value
            value = f" `{text[:7]}...`" if len(text) > 10 else f" `{text}`"
        msg = f"line {node.start_mark.line + 1}: cannot unmarshal {tag}{value} into {into}"
        (self.errors if errors is None else errors).append(msg)

    def _struct(
        self, node: yaml.Node, allowed: tuple[str, ...], type_name: str
    ) -> dict[str, yaml.Node] | None:
        """The fields of a mapping decoded into a Go struct, or None after recording why not."""
        if _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self._terror(node, type_name)
            return None
        if not self._unique_keys(node):
            return None
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else ""
            if key not in allowed:
                self.errors.append(f"line {k.start_mark.line + 1}: field {key} not found in type {type_name}")
                continue
            out[key] = v
        return out

    def _unique_keys(self, node: yaml.MappingNode) -> bool:
        before = len(self.errors)
        keys = [k for k, _ in node.value]
        for i, ki in enumerate(keys):
            for kj in keys[i + 1 :]:
                if type(ki) is type(kj) and isinstance(ki, yaml.ScalarNode) and ki.value == kj.value:
                    self.errors.append(
                        f"line {kj.start_mark.line + 1}: mapping key {_go_quote(ki.value)} "
                        f"already defined at line {ki.start_mark.line + 1}"
                    )
        return len(self.errors) == before

    def _string(self, node: yaml.Node) -> str:
        if _is_null(node):
            return ""
        if not isinstance(node, yaml.ScalarNode):
            self._terror(node, "string")
            return ""
        return str(node.value)

    def _node_text(self, node: yaml.Node) -> str:
        """A field Prometheus 2.42 keeps as a yaml.Node (record, alert, expr): its scalar text."""
        if self.dialect.prometheus2:
            return str(node.value) if isinstance(node, yaml.ScalarNode) and not _is_null(node) else ""
        return self._string(node)

    def _duration(self, node: yaml.Node) -> int:
        if _is_null(node):
            return 0
        if not isinstance(node, yaml.ScalarNode):
            self._terror(node, "string")
            return 0
        try:
            return parse_prometheus_duration(node.value, what="")
        except UserError as exc:
            raise Abort(str(exc).removeprefix(": ")) from None

    def _int(self, node: yaml.Node) -> int:
        if _is_null(node):
            return 0
        if _short_tag(node) != "!!int":
            self._terror(node, "int")
            return 0
        text = node.value.lstrip("+")
        digits = text.lstrip("-")
        if re.fullmatch(r"0[0-7]+", digits):  # Go's base-0 ParseInt: a leading 0 is octal
            return int(text, 8)
        return int(text, 0)

    def _string_map(self, node: yaml.Node) -> dict[str, str]:
        if _is_null(node):
            return {}
        if not isinstance(node, yaml.MappingNode):
            self._terror(node, "map[string]string")
            return {}
        if not self._unique_keys(node):
            return {}
        return {self._string(k): self._string(v) for k, v in node.value}

    def _list(self, node: yaml.Node, into: str) -> list[yaml.Node]:
        if _is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self._terror(node, into)
            return []
        return list(node.value)

    def document(self, root: yaml.Node | None) -> list[GroupDoc]:
        """The groups of the document (decoding errors in ``errors``)."""
        if root is None:
            return []
        top = self._struct(root, ("groups",), "rulefmt.RuleGroups")
        if top is None:
            if not isinstance(root, yaml.MappingNode):  # promtool decodes the file twice
                self._terror(root, "rulefmt.ruleGroups", self.node_errors)
            return []
        node = top.get("groups")
        if node is None:
            return []
        if not _is_null(node) and not isinstance(node, yaml.SequenceNode):
            self._terror(node, "[]rulefmt.RuleGroup")
            self._terror(node, self.dialect.group_node_type, self.node_errors)
            return []
        return [g for g in (self._group(n) for n in self._list(node, "")) if g is not None]

    def _group(self, node: yaml.Node) -> GroupDoc | None:
        f = self._struct(node, self.dialect.group_fields, "rulefmt.RuleGroup")
        if f is None:
            return None
        g = GroupDoc(node)
        for key, value in f.items():
            if key == "name":
                g.name = self._string(value)
            elif key == "interval":
                g.interval_ms = self._duration(value)
            elif key == "query_offset":
                g.query_offset_ms = self._duration(value)
            elif key == "limit":
                g.limit = self._int(value)
            elif key == "labels":
                g.labels = self._string_map(value)
            elif key == "rules":
                items = self._list(value, f"[]{self.dialect.rule_type}")
                g.rules = [r for r in (self._rule(n) for n in items) if r is not None]
        return g

    def _rule(self, node: yaml.Node) -> RuleDoc | None:
        f = self._struct(node, self.dialect.rule_fields, self.dialect.rule_type)
        if f is None:
            return None
        r = RuleDoc(node, f)
        for key, value in f.items():
            if key in ("record", "alert", "expr"):
                setattr(r, key, self._node_text(value))
            elif key in ("for", "keep_firing_for"):
                setattr(r, "for_ms" if key == "for" else "keep_firing_for_ms", self._duration(value))
            else:
                setattr(r, key, self._string_map(value))
        return r


# -- validation ---------------------------------------------------------------------------------


def _where(node: yaml.Node | None) -> str:
    """``line:col: `` of a node as Go's yaml.Node reports it; ``0:0: `` for an absent field."""
    if node is None:
        return "0:0: "
    return f"{node.start_mark.line + 1}:{node.start_mark.column + 1}: "


def _utf8_name(name: str) -> bool:
    return name != "" and not any(0xD800 <= ord(c) <= 0xDFFF for c in name)


def validate(groups: list[GroupDoc], dialect: Dialect, check_exprs: bool = True) -> list[str]:
    """``RuleGroups.Validate``'s errors, in its order (``check_exprs=False``: PromQL unchecked)."""
    errors: list[str] = []
    seen: set[str] = set()
    label_ok = _utf8_name if dialect.utf8_names else LABEL_NAME_RE.match
    for g in groups:
        if g.name == "":
            errors.append(f"{_where(g.node)}Groupname must not be empty")
        if g.name in seen:
            errors.append(f'{_where(g.node)}groupname: "{g.name}" is repeated in the same file')
        for k in g.labels:
            if not label_ok(k) or k == "__name__":
                errors.append(f"invalid label name: {k}")
        seen.add(g.name)
        for i, r in enumerate(g.rules, 1):
            head = f"group {_go_quote(g.name)}, rule {i}, {_go_quote(r.alert or r.record)}: "
            for at, msg in _rule_errors(r, dialect, check_exprs):
                errors.append(f"{at}{head}{msg}")
    return errors


def _rule_errors(r: RuleDoc, dialect: Dialect, check_exprs: bool) -> list[tuple[str, str]]:
    """(position, message) of ``Rule.Validate``'s errors for one rule."""
    out: list[tuple[str, str]] = []
    rec, alert = r.fields.get("record"), r.fields.get("alert")
    both = _where(rec) + ("" if dialect.prometheus2 else _where(alert))
    if r.record and r.alert:
        out.append((_where(rec) + _where(alert), "only one of 'record' and 'alert' must be set"))
    if not r.record and not r.alert:
        out.append((both, "one of 'record' or 'alert' must be set"))
    if not r.expr:
        out.append((_where(r.fields.get("expr")), "field 'expr' must be set in rule"))
    elif check_exprs:
        try:
            parse(r.expr, dialect)
        except PromQLError as exc:
            out.append((_where(r.fields["expr"]), f"could not parse expression: {exc}"))
    if r.record:
        for key, present in (
            ("annotations", bool(r.annotations)),
            ("for", r.for_ms != 0),
            ("keep_firing_for", r.keep_firing_for_ms != 0),
        ):
            if present:
                out.append((_where(rec), f"invalid field '{key}' in recording rule"))
        valid = _utf8_name(r.record) if dialect.utf8_names else METRIC_NAME_RE.match(r.record)
        if not valid:
            out.append((_where(rec), f"invalid recording rule name: {r.record}"))
        if dialect.utf8_names and ("{" in r.record or "}" in r.record):
            msg = f"braces present in the recording rule name; should it be in expr?: {r.record}"
            out.append((_where(rec), msg))
    label_ok = _utf8_name if dialect.utf8_names else LABEL_NAME_RE.match
    for k in r.labels:
        if not label_ok(k) or k == "__name__":
            out.append(("", f"invalid label name: {k}"))
    for k in r.annotations:
        if not label_ok(k):
            out.append(("", f"invalid annotation name: {k}"))
    if r.alert:
        for kind, mapping in (("label", r.labels), ("annotation", r.annotations)):
            for key, text in mapping.items():
                try:
                    templating.parse(text, f"__alert_{r.alert}")
                except templating.TemplateError as exc:
                    out.append(("", f"{kind} {_go_quote(key)}: {exc}"))
    return out
