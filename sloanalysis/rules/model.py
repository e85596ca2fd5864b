"""Prometheus rule files: load and validate them as Prometheus's ``rulefmt`` does.

:func:`load_rules` reads ``groups:`` of recording and alerting rules and rejects what Prometheus
rejects: bad YAML, unknown fields, a group without a name, a group name repeated in one file,
a rule with both or neither of ``record``/``alert``, a missing ``expr``, PromQL that does not
parse, invalid metric or label names, ``for``/``keep_firing_for``/``annotations`` on a recording
rule, malformed durations, and label or annotation templates that do not parse. Every error is a
one-line :class:`~sloanalysis.errors.UserError` naming the file, line, group and rule.

Names may repeat across groups and within a group, as Prometheus allows (two recording rules
often write the same metric with different labels).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sloanalysis._go import is_label_name, is_metric_name
from sloanalysis.durations import parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.promql import PromQLError, parse
from sloanalysis.rules import templating
from sloanalysis.yamlload import compose_yaml

__all__ = [
    "AlertingRule",
    "RecordingRule",
    "Rule",
    "RuleGroup",
    "RulesError",
    "load_rule_files",
    "load_rules",
    "parse_rules",
]

_GROUP_FIELDS = ("name", "interval", "query_offset", "limit", "rules", "labels")
_RULE_FIELDS = ("record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations")


class RulesError(UserError):
    """A rule file that Prometheus would refuse to load."""


@dataclass(frozen=True)
class AlertingRule:
    name: str
    expr: str
    for_ms: int = 0
    keep_firing_for_ms: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(("alert", self.name, self.expr))


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.record

    def __hash__(self) -> int:
        return hash(("record", self.record, self.expr))


Rule = AlertingRule | RecordingRule


@dataclass(frozen=True)
class RuleGroup:
    name: str
    interval_ms: int | None
    rules: tuple[Rule, ...]
    limit: int = 0
    query_offset_ms: int = 0
    source: str = ""


def load_rules(path: str | os.PathLike[str], *, check_exprs: bool = True) -> list[RuleGroup]:
    """Groups of a Prometheus rule file (YAML or JSON); raises :class:`RulesError`
    (``check_exprs``: see :func:`parse_rules`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{p}: cannot read rule file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"{p}: not UTF-8 text: {exc.reason}") from None
    return parse_rules(text, str(p), check_exprs=check_exprs)


def load_rule_files(paths: Sequence[str | os.PathLike[str]]) -> list[RuleGroup]:
    """The groups of several rule files, as one Prometheus server loads them: a group name
    defined in two files is an error."""
    groups: list[RuleGroup] = []
    seen: dict[str, str] = {}
    for p in paths:
        for g in load_rules(p):
            if g.name in seen:
                raise RulesError(f"{p}: group {g.name!r} is already defined in {seen[g.name]}")
            seen[g.name] = str(p)
            groups.append(g)
    return groups


def _compose(text: str, where: str) -> yaml.Node | None:
    try:
        return compose_yaml(text, where)
    except UserError as exc:
        raise RulesError(str(exc)) from None


class _At:
    """Where we are, for error messages: ``file:line: group "g", rule 2 (alert "X"): ...``."""

    def __init__(self, file: str, node: yaml.Node, what: str = "") -> None:
        self.file, self.node, self.what = file, node, what

    def error(self, msg: str, node: yaml.Node | None = None) -> RulesError:
        line = (node or self.node).start_mark.line + 1
        return RulesError(f"{self.file}:{line}: {self.what + ': ' if self.what else ''}{msg}")


def _mapping(node: yaml.Node, at: _At, allowed: tuple[str, ...], what: str) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise at.error(f"expected a mapping for {what}, got {_kind(node)}", node)
    out: dict[str, yaml.Node] = {}
    for k, v in node.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else str(k)
        if key not in allowed:
            raise at.error(f"field {key} not found in {what} (allowed: {', '.join(allowed)})", k)
        if key in out:
            raise at.error(f"field {key} appears twice", k)
        out[key] = v
    return out


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return f"{node.value!r}"


def _scalar(node: yaml.Node, at: _At, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise at.error(f"{what}: expected a string, got {_kind(node)}", node)
    if node.tag == "tag:yaml.org,2002:null":
        return ""
    return str(node.value)


def _duration(node: yaml.Node, at: _At, what: str) -> int:
    text = _scalar(node, at, what).strip()
    try:
        return parse_prometheus_duration(text, what=what)
    except UserError as exc:
        raise at.error(str(exc), node) from None


def _labels(node: yaml.Node, at: _At, what: str) -> dict[str, str]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise at.error(f"{what}: expected a mapping, got {_kind(node)}", node)
    out: dict[str, str] = {}
    for k, v in node.value:
        name = _scalar(k, at, what)
        if not is_label_name(name) or (what == "labels" and name == "__name__"):
            raise at.error(f"{what}: invalid label name: {name}", k)
        out[name] = _scalar(v, at, f"{what}.{name}")
    return out


def parse_rules(text: str, source: str = "<rules>", *, check_exprs: bool = True) -> list[RuleGroup]:
    """Groups of rule-file text (``source`` names it in errors and seeds the group hash).
    ``check_exprs=False`` leaves PromQL that does not parse to the caller (the lint reports it
    as a finding with its position inside the expression)."""
    root = _compose(text, source)
    if root is None:
        return []
    top = _At(source, root)
    if not isinstance(root, yaml.MappingNode) or (
        root.value and not any(isinstance(k, yaml.ScalarNode) and k.value == "groups" for k, _ in root.value)
    ):
        # Not a rules file at all (a test's rule_files may name any file, /etc/passwd): say so
        # without quoting its content.
        raise top.error("not a valid rules file (expected a mapping with a 'groups' list)", root)
    fields = _mapping(root, top, ("groups",), "rule file")
    groups_node = fields.get("groups")
    if groups_node is None or (
        isinstance(groups_node, yaml.ScalarNode) and groups_node.value in ("", "null", "~")
    ):
        return []
    if not isinstance(groups_node, yaml.SequenceNode):
        raise top.error(f"groups: expected a list, got {_kind(groups_node)}", groups_node)
    groups: list[RuleGroup] = []
    seen: set[str] = set()
    for gi, gnode in enumerate(groups_node.value):
        at = _At(source, gnode, f"group {gi + 1}")
        g = _mapping(gnode, at, _GROUP_FIELDS, "rule group")
        name = _scalar(g["name"], at, "name") if "name" in g else ""
        if not name:
            raise at.error("Groupname must not be empty")
        at.what = f'group "{name}"'
        if name in seen:
            raise at.error(f'groupname: "{name}" is repeated in the same file', g["name"])
        seen.add(name)
        interval = _duration(g["interval"], at, "interval") if "interval" in g else None
        if interval == 0:
            interval = None  # Prometheus falls back to the global evaluation interval
        offset = _duration(g["query_offset"], at, "query_offset") if "query_offset" in g else 0
        limit = 0
        if "limit" in g:
            raw = _scalar(g["limit"], at, "limit")
            if not re.fullmatch(r"\d+", raw):
                raise at.error(f"limit: expected a non-negative integer, got {raw!r}", g["limit"])
            limit = int(raw)
        if "labels" in g:
            raise at.error("group labels are not supported by this evaluator", g["labels"])
        rules_node = g.get("rules")
        rules: list[Rule] = []
        if rules_node is not None and not (
            isinstance(rules_node, yaml.ScalarNode) and rules_node.tag.endswith("null")
        ):
            if not isinstance(rules_node, yaml.SequenceNode):
                raise at.error(f"rules: expected a list, got {_kind(rules_node)}", rules_node)
            for ri, rnode in enumerate(rules_node.value):
                at_rule = _At(source, rnode, f'group "{name}", rule {ri + 1}')
                rules.append(_rule(rnode, at_rule, check_exprs))
        groups.append(RuleGroup(name, interval, tuple(rules), limit, offset, source))
    return groups


def _rule(node: yaml.Node, at: _At, check_expr: bool = True) -> Rule:
    r = _mapping(node, at, _RULE_FIELDS, "rule")
    record = _scalar(r["record"], at, "record") if "record" in r else ""
    alert = _scalar(r["alert"], at, "alert") if "alert" in r else ""
    if record and alert:
        raise at.error("only one of 'record' and 'alert' must be set")
    if not record and not alert:
        raise at.error("one of 'record' or 'alert' must be set")
    at.what += f' (record "{record}")' if record else f' (alert "{alert}")'
    expr = _scalar(r["expr"], at, "expr").strip() if "expr" in r else ""
    if not expr:
        raise at.error("field 'expr' must be set in rule")
    if check_expr:
        try:
            parse(expr)
        except PromQLError as exc:
            raise at.error(f"expr: {exc}", r["expr"]) from None
    labels = _labels(r["labels"], at, "labels") if "labels" in r else {}
    if record:
        for key in ("for", "keep_firing_for", "annotations"):
            if key in r:
                raise at.error(f"invalid field '{key}' in recording rule", r[key])
        if not is_metric_name(record):
            raise at.error(f"invalid recording rule name: {record}", r["record"])
        return RecordingRule(record, expr, labels)
    annotations = _labels(r["annotations"], at, "annotations") if "annotations" in r else {}
    for kind, mapping in (("label", labels), ("annotation", annotations)):
        for key, text in mapping.items():
            try:
                templating.parse(text, f"__alert_{alert}")
            except templating.TemplateError as exc:
                raise at.error(
                    f"{kind} {key}: {exc}", r["labels" if kind == "label" else "annotations"]
                ) from None
    for_ms = _duration(r["for"], at, "for") if "for" in r else 0
    keep = _duration(r["keep_firing_for"], at, "keep_firing_for") if "keep_firing_for" in r else 0
    return AlertingRule(alert, expr, for_ms, keep, labels, annotations)


def dump_rule_groups(groups: list[RuleGroup]) -> str:
    """Rule-file YAML of ``groups`` (for rewritten rules: tuning, temporary files)."""
    from sloanalysis.durations import format_duration_ms

    out: list[dict[str, Any]] = []
    for g in groups:
        gd: dict[str, Any] = {"name": g.name}
        if g.interval_ms:
            gd["interval"] = format_duration_ms(g.interval_ms)
        if g.query_offset_ms:
            gd["query_offset"] = format_duration_ms(g.query_offset_ms)
        if g.limit:
            gd["limit"] = g.limit
        rules: list[dict[str, Any]] = []
        for r in g.rules:
            if isinstance(r, RecordingRule):
                rd: dict[str, Any] = {"record": r.record, "expr": r.expr}
            else:
                rd = {"alert": r.name, "expr": r.expr}
                if r.for_ms:
                    rd["for"] = format_duration_ms(r.for_ms)
                if r.keep_firing_for_ms:
                    rd["keep_firing_for"] = format_duration_ms(r.keep_firing_for_ms)
            if r.labels:
                rd["labels"] = dict(r.labels)
            if isinstance(r, AlertingRule) and r.annotations:
                rd["annotations"] = dict(r.annotations)
            rules.append(rd)
        gd["rules"] = rules
        out.append(gd)
    return yaml.safe_dump({"groups": out}, sort_keys=False, allow_unicode=True, width=10_000)
