"""Prometheus rule files: the one reader (test-rules, backtest, tune, report and lint use it).

:func:`load_rules` reads ``groups:`` of recording and alerting rules as the chosen version's
``rulefmt`` does (:mod:`sloanalysis.rules.rulefmt`: decoding and validation, with promtool's
messages and positions) and returns :class:`RuleGroup` objects, or raises :class:`RulesError`
carrying every error promtool would print.

Names may repeat across groups and within a group, as Prometheus allows (two recording rules
often write the same metric with different labels).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sloanalysis.errors import UserError
from sloanalysis.files import read_input_text
from sloanalysis.promql.parse import PROMETHEUS_3, Dialect
from sloanalysis.rules import rulefmt
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


class RulesError(UserError):
    """A rule file that Prometheus would refuse to load.

    ``errors`` holds each error as promtool prints it (``file: 4:13: group "g", rule 1, "x": ...``;
    a decoder error spans lines); the message is all of them on one line, ``; `` between them."""

    def __init__(self, errors: str | Sequence[str]) -> None:
        self.errors = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__("; ".join(e.replace("\n  ", " ") for e in self.errors))


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


def load_rules(
    path: str | os.PathLike[str], *, check_exprs: bool = True, dialect: Dialect = PROMETHEUS_3
) -> list[RuleGroup]:
    """Groups of a Prometheus rule file (YAML or JSON); raises :class:`RulesError`
    (``check_exprs``, ``dialect``: see :func:`parse_rules`)."""
    text = read_input_text(path, RulesError)
    return parse_rules(text, str(Path(path)), check_exprs=check_exprs, dialect=dialect)


def load_rule_files(
    paths: Sequence[str | os.PathLike[str]], *, dialect: Dialect = PROMETHEUS_3
) -> list[RuleGroup]:
    """The groups of several rule files, as one Prometheus server loads them: a group name
    defined in two files is an error."""
    groups: list[RuleGroup] = []
    seen: dict[str, str] = {}
    for p in paths:
        for g in load_rules(p, dialect=dialect):
            if g.name in seen:
                raise RulesError(f"{p}: group {g.name!r} is already defined in {seen[g.name]}")
            seen[g.name] = str(p)
            groups.append(g)
    return groups


def parse_rules(
    text: str, source: str = "<rules>", *, check_exprs: bool = True, dialect: Dialect = PROMETHEUS_3
) -> list[RuleGroup]:
    """Groups of rule-file text (``source`` names it in errors and seeds the group hash), read
    as ``dialect``'s ``rulefmt`` reads it: the first YAML document only, decoded strictly
    (unknown fields, wrong types, repeated keys), then validated; every error is collected, as
    promtool prints them. ``check_exprs=False`` leaves PromQL that does not parse to the caller
    (the lint reports it as a finding with its position inside the expression)."""
    try:
        root = compose_yaml(text, source, first_document=True, check_duplicates=False)
    except UserError as exc:
        raise RulesError(str(exc)) from None
    if isinstance(root, yaml.ScalarNode) and root.tag != "tag:yaml.org,2002:null":
        # Text that is no YAML mapping at all (a test's rule_files may name any file, /etc/passwd):
        # promtool would quote its start; say what it is not instead.
        line = root.start_mark.line + 1
        raise RulesError(f"{source}:{line}: not a valid rules file (expected a mapping with a 'groups' list)")
    decoder = rulefmt.Decoder(dialect)
    try:
        doc = decoder.document(root)
    except rulefmt.Abort as exc:
        raise RulesError(f"{source}: {exc}") from None
    if decoder.errors or decoder.node_errors:
        raise RulesError([f"{source}: {e}" for e in decoder.messages()])
    errors = rulefmt.validate(doc, dialect, check_exprs)
    if errors:
        raise RulesError([f"{source}: {e}" for e in errors])
    return [_group(g, source) for g in doc]


def _group(g: rulefmt.GroupDoc, source: str) -> RuleGroup:
    rules: list[Rule] = []
    for r in g.rules:
        labels = {**g.labels, **r.labels}  # Prometheus 3's group labels; the rule's own win
        if r.record:
            rules.append(RecordingRule(r.record, r.expr.strip(), labels))
        else:
            rules.append(
                AlertingRule(r.alert, r.expr.strip(), r.for_ms, r.keep_firing_for_ms, labels, r.annotations)
            )
    return RuleGroup(g.name, g.interval_ms or None, tuple(rules), g.limit, g.query_offset_ms, source)


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
