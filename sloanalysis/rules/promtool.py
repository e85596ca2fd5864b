"""promtool rule unit tests (``promtool test rules``) on the embedded engine, and a writer of them.

A test file names ``rule_files`` (relative to the test file, globs allowed), an
``evaluation_interval`` (default 1m), an optional ``group_eval_order`` and ``tests``: groups of
``input_series`` in series notation at ``interval`` (default 1m), ``alert_rule_test`` cases
(``eval_time``, ``alertname``, ``exp_alerts`` of ``exp_labels``/``exp_annotations``) and
``promql_expr_test`` cases (``expr``, ``eval_time``, ``exp_samples`` of ``labels``/``value``).

As promtool does, every group is evaluated at ``0, i, 2i, ...`` up to the largest ``eval_time``
(whatever the group's own interval); an alert case at ``eval_time`` compares the *firing* alerts
of the last evaluation at or before it; expression cases query the inputs plus everything the
rules wrote, at ``eval_time``, and compare values exactly. Output and exit status follow
promtool's ``cmd/promtool/unittest.go`` (stdout ``Unit Testing:`` / ``SUCCESS``, failures on stderr).

:func:`write_regression_test` turns a backtest of an incident into such a file. The samples keep
their exact phase against the evaluation grid (a scrape 3.5 s after an evaluation stays 3.5 s
after it), so Prometheus 2 (range selectors closed on the left) and 3 (open) read the same
samples and the file passes under the real ``promtool test rules`` and under ``test-rules``.
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import yaml

from sloanalysis._go import format_float
from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.files import atomic_write_text
from sloanalysis.nativehist import FloatHistogram, histogram_string, parse_histogram
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.promql.parse import dialect_for, parse
from sloanalysis.promql.walk import longest_window_ms, metric_names
from sloanalysis.rules.gotyped import DecodeError, Slice, Struct, decode
from sloanalysis.rules.manager import RuleEvaluation, evaluate_rules
from sloanalysis.rules.model import (
    AlertingRule,
    RecordingRule,
    RuleGroup,
    RulesError,
    load_rule_files,
    load_rules,
)
from sloanalysis.sources.notation import parse_series_line, split_metric
from sloanalysis.store import METRIC_NAME, SeriesStore, is_stale
from sloanalysis.yamlload import load_yaml

__all__ = ["run_test_file", "run_test_files", "write_regression_test"]

_DEFAULT_INTERVAL_MS = 60_000


# -- Go formatting ----------------------------------------------------------------------------------


def _go_quote(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


def _go_labels(labels: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{k}={_go_quote(v)}" for k, v in sorted(labels.items())) + "}"


def _indent(text: str, prefix: str) -> str:
    return ("\n" + prefix).join(text.split("\n"))


def _alerts_text(alerts: Sequence[tuple[dict[str, str], dict[str, str]]]) -> str:
    if not alerts:
        return "[]"
    parts = [
        f"{i}:" + _indent(f"\nLabels:{_go_labels(lab)}\nAnnotations:{_go_labels(ann)}", "  ")
        for i, (lab, ann) in enumerate(alerts)
    ]
    return "[\n" + ",\n".join(parts) + "\n]"


def _samples_text(samples: Sequence[tuple[dict[str, str], float | FloatHistogram]]) -> str:
    """promtool's ``parsedSamplesString``: a histogram as Go's ``FloatHistogram.String()``."""
    if not samples:
        return "nil"
    return ", ".join(
        f"{_go_labels(lab)} {histogram_string(v) if isinstance(v, FloatHistogram) else format_float(v, 'E')}"
        for lab, v in samples
    )


# -- reading test files ---------------------------------------------------------------------------


class _Bad(Exception):
    """A test file promtool would refuse; the message is what it prints."""


# The file's Go types (cmd/promtool/unittest.go), for yaml.v2's strict decoding and its messages.
_SERIES = Struct("main.series", {"series": "string", "values": "string"})
_ALERT = Struct("main.alert", {"exp_labels": "map[string]string", "exp_annotations": "map[string]string"})
_ALERT_CASE = Struct(
    "main.alertTestCase", {"eval_time": "duration", "alertname": "string", "exp_alerts": Slice(_ALERT)}
)
_SAMPLE_FIELDS = {"labels": "string", "value": "float64"}
# promtool 3 also reads ``histogram:``, a native histogram in the promqltest notation (promtool
# 2.42 has no such field: its strict decoding rejects the key).
_SAMPLE_2 = Struct("main.sample", _SAMPLE_FIELDS)
_SAMPLE_3 = Struct("main.sample", {**_SAMPLE_FIELDS, "histogram": "string"})


def _file_type(sample: Struct, *extra: str) -> Struct:
    expr_case = Struct(
        "main.promqlTestCase", {"expr": "string", "eval_time": "duration", "exp_samples": Slice(sample)}
    )
    test_group = Struct(
        "main.testGroup",
        {
            "interval": "duration",
            "input_series": Slice(_SERIES),
            "alert_rule_test": Slice(_ALERT_CASE),
            "promql_expr_test": Slice(expr_case),
            "external_labels": "map[string]string",
            "external_url": "string",
            "name": "string",
        },
    )
    fields: dict[str, Any] = {
        "rule_files": Slice("string"),
        "evaluation_interval": "duration",
        "group_eval_order": Slice("string"),
        "tests": Slice(test_group),
    }
    return Struct("main.unitTestFile", {**fields, **{name: "bool" for name in extra}})


_FILE_2 = _file_type(_SAMPLE_2)
_FILE_3 = _file_type(_SAMPLE_3, "fuzzy_compare")
_TEST_GROUP = _FILE_2.fields["tests"].elem


def _read(path: Path, prometheus2: bool) -> dict[str, Any]:
    try:
        tree = load_yaml(path.read_text(encoding="utf-8"), str(path), schema="go")
        return dict(decode(tree, _FILE_2 if prometheus2 else _FILE_3))
    except FileNotFoundError:
        raise _Bad(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise _Bad(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    except UnicodeDecodeError as exc:
        raise _Bad(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except (UserError, DecodeError) as exc:
        raise _Bad(str(exc)) from None


def _rule_files(path: Path, doc: Mapping[str, Any], warn: IO[str] | None) -> list[str]:
    out: list[str] = []
    for rf in doc.get("rule_files") or []:
        pattern = str(rf) if os.path.isabs(str(rf)) else str(path.parent / str(rf))
        matches = sorted(glob.glob(pattern))
        if not matches and warn is not None:
            print("  WARNING: no file match pattern", pattern, file=warn)
        out.extend(matches)
    return out


# -- running --------------------------------------------------------------------------------------


@dataclass
class _Group:
    """One entry of ``tests:`` with its inputs loaded."""

    name: str
    interval_ms: int
    store: SeriesStore
    alert_cases: list[dict[str, Any]] = field(default_factory=list)
    expr_cases: list[dict[str, Any]] = field(default_factory=list)
    external_labels: dict[str, str] = field(default_factory=dict)

    def max_eval_ms(self) -> int:
        times = [c["_t"] for c in self.alert_cases] + [c["_t"] for c in self.expr_cases]
        return max(times, default=0)


def _go_rune(c: str) -> str:
    return "'" + (c if c.isprintable() else json.dumps(c)[1:-1]) + "'"


def _braces_error(line: str, i: int) -> tuple[int, str | None]:
    """Lex ``{...}`` from ``line[i] == "{"`` as Go's PromQL lexer does: (index after the ``}``,
    its error message if it stops first)."""
    i += 1
    while i < len(line):
        c = line[i]
        if c == "}":
            return i + 1, None
        if c in "\"'`":
            j = i + 1
            while j < len(line) and line[j] != c:
                j += 2 if line[j] == "\\" and c != "`" else 1
            i = j + 1
        elif c.isalpha() or c == "_":  # a label name; a digit cannot start one
            while i < len(line) and (line[i].isalnum() or line[i] == "_"):
                i += 1
        elif c in " ,\t=!~":
            i += 1
        else:
            return i, f"1:{i + 1}: parse error: unexpected character inside braces: {_go_rune(c)}"
    return i, f"1:{i + 1}: parse error: unexpected end of input inside braces"


def _values_error(line: str, i: int) -> str | None:
    """Lex a value sequence from ``line[i]`` as Go's lexer does in series descriptions (no hex;
    a number must not run into a letter, digit or ``_`` other than the ``x`` of a repetition)."""
    while i < len(line):
        c = line[i]
        if c.isdigit() or (c == "." and line[i + 1 : i + 2].isdigit()):
            j = i
            while j < len(line) and line[j].isdigit():
                j += 1
            if line[j : j + 1] == ".":
                j += 1
                while j < len(line) and line[j].isdigit():
                    j += 1
            if line[j : j + 1] in ("e", "E"):
                j += 1 + (line[j + 1 : j + 2] in ("+", "-"))
                while j < len(line) and line[j].isdigit():
                    j += 1
            nxt = line[j : j + 1]
            if nxt and nxt != "x" and (nxt.isalnum() or nxt == "_"):
                return f"1:{i + 1}: parse error: bad number syntax: {_go_quote(line[i:j])}"
            i = j
        elif c.isalpha():
            while i < len(line) and (line[i].isalnum() or line[i] in "_:") and line[i] != "x":
                i += 1
            i += line[i : i + 1] == "x"
        elif c in " \t+-x_{}":
            i += 1
        else:
            return f"1:{i + 1}: parse error: unexpected character in series sequence: {_go_rune(c)}"
    return None


def _series_error(series: str, values: str, fallback: str) -> str:
    """promtool's message for an input series line it cannot load (its lexer's position on the
    line ``series values``); ``fallback`` when the lexer would not be the one to object."""
    line = f"{series} {values}".strip()
    i = 0
    while i < len(line) and (line[i].isalnum() or line[i] in "_:"):
        i += 1
    if line[i : i + 1] == "{":
        i, err = _braces_error(line, i)
        if err:
            return err
    return _values_error(line, i) or fallback


def _series_at_zero(ts: np.ndarray, vs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples of a group without ``interval`` under promtool 2.42 (``load 0s``): all fall on
    time 0 and the storage keeps the first."""
    return np.zeros(min(ts.size, 1), dtype=ts.dtype), vs[:1]


def _load_group(tg: Mapping[str, Any], eval_ms: int, prometheus2: bool) -> _Group:
    """A decoded ``tests:`` entry with its input series loaded. Without ``interval`` promtool 2.42
    loads at interval 0 and promtool 3 at ``evaluation_interval``."""
    interval = int(tg.get("interval", 0)) or (0 if prometheus2 else eval_ms)
    store = SeriesStore()
    for s in tg.get("input_series", []):
        series, values = s.get("series", ""), s.get("values", "")
        try:
            line = parse_series_line(f"{series} {values}", interval or 1)
        except UserError as exc:
            raise _Bad(_series_error(series, values, f"{series}: {exc}")) from None
        ts, vs = (line.timestamps, line.values) if interval else _series_at_zero(line.timestamps, line.values)
        hs = line.histograms if line.histograms is None or interval else line.histograms[: vs.size]
        store.add(line.labels, ts, vs, hs)
    group = _Group(tg.get("name", ""), interval, store)
    group.external_labels = dict(tg.get("external_labels", {}))
    for case in tg.get("alert_rule_test", []):
        group.alert_cases.append({**case, "_t": case.get("eval_time", 0)})
    for case in tg.get("promql_expr_test", []):
        group.expr_cases.append({**case, "_t": case.get("eval_time", 0)})
    return group


def _ordered(groups: list[RuleGroup], order: Sequence[str], interval_ms: int) -> list[RuleGroup]:
    rank = {name: i for i, name in enumerate(order)}
    ordered = sorted(groups, key=lambda g: rank.get(g.name, 0))
    # promtool evaluates every group at every evaluation_interval tick, whatever its own interval.
    return [replace(g, interval_ms=interval_ms) for g in ordered]


def _firing(evaluation: RuleEvaluation, t_ms: int, name: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    got = [
        (dict(a["labels"]), dict(a["annotations"]))
        for a in evaluation.active_at(t_ms, name)
        if a["state"] == "firing"
    ]
    return sorted(got, key=lambda la: (sorted(la[0].items()), sorted(la[1].items())))


def _evaluate(
    rule_groups: list[RuleGroup], group: _Group, eval_ms: int, prometheus2: bool
) -> tuple[RuleEvaluation, SeriesStore]:
    evaluation = evaluate_rules(
        rule_groups,
        group.store,
        0,
        group.max_eval_ms(),
        default_interval_ms=eval_ms,
        prometheus2=prometheus2,
        external_labels=group.external_labels,
    )
    merged = SeriesStore(iter(group.store))
    for s in evaluation.series:
        merged.add(s.labels, s.timestamps, s.values, s.histograms)
    return evaluation, merged


def _missing_alertname(group: _Group) -> str | None:
    for case in group.alert_cases:
        if not case.get("alertname"):
            where = f" (in TestGroup {group.name})" if group.name else ""
            t = format_duration_ms(case["_t"])
            return (
                f"an item under alert_rule_test misses required attribute alertname at eval_time {t}{where}"
            )
    return None


def _rule_error(engine: Engine, rule: RecordingRule | AlertingRule, t_ms: int, offset_ms: int) -> str | None:
    """Why ``rule`` fails to evaluate at ``t_ms`` as Prometheus words it, or None."""
    try:
        res = engine.instant(rule.expr, t_ms - offset_ms)
    except PromQLError as exc:
        return str(exc)
    if isinstance(rule, RecordingRule) and res.kind == "vector":
        seen: set[tuple[tuple[str, str], ...]] = set()
        for lab in res.labels:
            out = {**dict(lab), **rule.labels, METRIC_NAME: rule.record}
            key = tuple(sorted((k, v) for k, v in out.items() if v != ""))
            if key in seen:
                return "vector contains metrics with the same labelset after applying rule labels"
            seen.add(key)
    return None


def _first_eval_errors(
    rule_groups: Sequence[RuleGroup],
    evaluation: RuleEvaluation,
    group: _Group,
    eval_ms: int,
    prometheus2: bool,
) -> tuple[int, list[str]] | None:
    """The first evaluation at which a rule fails and promtool's lines for every rule failing there
    (promtool stops the test group at that evaluation). Only looked for when the evaluation
    reported a failure, as it is an instant query per rule and evaluation."""
    if not any("failed" in w for w in evaluation.warnings):
        return None
    engine = Engine(evaluation.store or group.store, prometheus2=prometheus2)
    for t in range(0, group.max_eval_ms() + 1, eval_ms):
        errs = []
        for g in rule_groups:
            for rule in g.rules:
                err = _rule_error(engine, rule, t, g.query_offset_ms)
                if err is not None:
                    errs.append(f"    rule: {rule.name}, time: {_go_duration(t)}, err: {err}")
        if errs:
            return t, errs
    return None


def _go_duration(ms: int) -> str:
    """Go's time.Duration.String() for whole milliseconds (``0s``, ``1m30s``, ``1h0m0s``, ``1.5s``)."""
    if ms == 0:
        return "0s"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    sec, frac = divmod(rest, 1000)
    secs = f"{sec}" + (f".{frac:03d}".rstrip("0") if frac else "") + "s"
    if h:
        return f"{sign}{h}h{m}m{secs}"
    if m:
        return f"{sign}{m}m{secs}"
    return sign + secs


def _alert_errors(
    group: _Group, evaluation: RuleEvaluation, eval_ms: int, before_ms: int | None
) -> list[str]:
    errs: list[str] = []
    for case in sorted(group.alert_cases, key=lambda c: c["_t"]):
        at = (case["_t"] // eval_ms) * eval_ms  # the evaluation with ts <= eval_time < ts + interval
        if before_ms is not None and at >= before_ms:
            break
        got = _firing(evaluation, at, str(case["alertname"]))
        exp = []
        for a in case.get("exp_alerts", []):
            labels = {**a.get("exp_labels", {}), "alertname": str(case["alertname"])}
            exp.append((labels, dict(a.get("exp_annotations", {}))))
        exp.sort(key=lambda la: (sorted(la[0].items()), sorted(la[1].items())))
        if exp != got:
            name = f"    name: {group.name},\n" if group.name else ""
            pad = " " * 12
            errs.append(
                f"{name}    alertname: {case['alertname']}, time: {format_duration_ms(case['_t'])}, \n"
                f"        exp:{_indent(_alerts_text(exp), pad)}, \n"
                f"        got:{_indent(_alerts_text(got), pad)}"
            )
    return errs


def _same_value(a: float | FloatHistogram, b: float | FloatHistogram, fuzzy: bool) -> bool:
    """reflect.DeepEqual on float64 (NaN never equal); ``fuzzy``: promtool 3's fuzzy_compare,
    which also accepts the next float either way. Histograms: the same layout and counts, empty
    buckets aside (a float and a histogram never match)."""
    if isinstance(a, FloatHistogram) or isinstance(b, FloatHistogram):
        return isinstance(a, FloatHistogram) and isinstance(b, FloatHistogram) and a.same_as(b)
    return a == b or (fuzzy and (math.nextafter(a, -math.inf) == b or math.nextafter(a, math.inf) == b))


def _sample_value(res: Any, i: int) -> float | FloatHistogram:
    """Row ``i``'s value at the result's only step: its histogram when it holds one."""
    if res.histograms is not None and res.histograms[i, 0] is not None:
        return res.histograms[i, 0]
    return float(res.values[i, 0])


class _BadHistogram(UserError):
    """An ``exp_samples`` ``histogram:`` that is not a histogram in the promqltest notation."""


def _expected_value(sample: Mapping[str, Any]) -> float | FloatHistogram:
    """``histogram:`` (promtool 3) when given, else ``value``."""
    text = str(sample.get("histogram", "") or "")
    if not text:
        return float(sample.get("value", 0.0))
    try:
        return parse_histogram(text)
    except ValueError as exc:
        raise _BadHistogram(f"histogram {_go_quote(text)}: {exc}") from None


def _expr_errors(group: _Group, merged: SeriesStore, prometheus2: bool, fuzzy: bool) -> list[str]:
    errs: list[str] = []
    engine = Engine(merged, prometheus2=prometheus2)
    for case in group.expr_cases:
        expr, t = str(case.get("expr", "")), case["_t"]
        head = f"    expr: {_go_quote(expr)}, time: {format_duration_ms(t)}"
        try:
            res = engine.instant(expr, t)
        except PromQLError as exc:
            errs.append(f"{head}, err: {exc}")
            continue
        got_s: list[tuple[dict[str, str], float | FloatHistogram]]
        if res.kind == "scalar":
            got_s = [({}, float(res.values[0, 0]))]
        elif res.kind == "vector":
            got_s = [(dict(lab), _sample_value(res, i)) for i, lab in enumerate(res.labels)]
        else:
            errs.append(f"{head}, err: rule result is not a vector or scalar")
            continue
        exp_s: list[tuple[dict[str, str], float | FloatHistogram]] = []
        try:
            for s in case.get("exp_samples", []):
                text = s.get("labels", "")
                parsed, rest = split_metric(text) if text.strip() else ({}, "")  # "" is the empty set
                if rest.strip():
                    raise UserError(f"unexpected {rest!r}")
                exp_s.append((dict(parsed), _expected_value(s)))
        except _BadHistogram as exc:
            errs.append(f"{head}, err: {exc}")
            continue
        except UserError as exc:
            errs.append(f"{head}, err: labels {_go_quote(text)}: {exc}")
            continue
        exp_s.sort(key=lambda x: sorted(x[0].items()))
        got_s.sort(key=lambda x: sorted(x[0].items()))
        same = len(exp_s) == len(got_s) and all(
            a[0] == b[0] and _same_value(a[1], b[1], fuzzy) for a, b in zip(exp_s, got_s, strict=True)
        )
        if not same:
            errs.append(f"{head},\n        exp: {_samples_text(exp_s)}\n        got: {_samples_text(got_s)}")
    return errs


def _check_group(
    rule_groups: list[RuleGroup], group: _Group, eval_ms: int, prometheus2: bool, fuzzy: bool = False
) -> list[str]:
    """promtool's errors for one test group: alert cases in time order, then expression cases;
    a rule that fails to evaluate ends the group at that evaluation (alert cases before it kept)."""
    evaluation, merged = _evaluate(rule_groups, group, eval_ms, prometheus2)
    failed = _first_eval_errors(rule_groups, evaluation, group, eval_ms, prometheus2)
    if failed is not None:
        at, eval_errs = failed
        return _alert_errors(group, evaluation, eval_ms, at) + eval_errs
    return _alert_errors(group, evaluation, eval_ms, None) + _expr_errors(group, merged, prometheus2, fuzzy)


def _run_group(
    tg: Mapping[str, Any],
    rule_files: Sequence[str],
    order: Sequence[str],
    eval_ms: int,
    prometheus2: bool,
    fuzzy: bool,
) -> list[str]:
    """One ``tests:`` entry, in promtool's order: inputs, rule files, alert names, evaluation."""
    try:
        group = _load_group(tg, eval_ms, prometheus2)
    except _Bad as exc:
        return [str(exc)]
    rule_groups: list[RuleGroup] = []
    for rf in rule_files:
        try:
            rule_groups.extend(load_rules(rf, dialect=dialect_for(prometheus2)))
        except RulesError as exc:
            return list(exc.errors)  # each as promtool prints it
        except UserError as exc:
            return [str(exc)]
    missing = _missing_alertname(group)
    if missing:
        return [missing]
    try:
        return _check_group(_ordered(rule_groups, order, eval_ms), group, eval_ms, prometheus2, fuzzy)
    except UserError as exc:
        return [f"    {exc}"]


def run_test_file(path: str | Path, *, prometheus2: bool = False, warn: IO[str] | None = None) -> list[str]:
    """Error messages of one test file (empty when every case passes)."""
    p = Path(path)
    try:
        doc = _read(p, prometheus2)
    except _Bad as exc:
        return [str(exc)]
    rule_files = _rule_files(p, doc, warn)
    eval_ms = int(doc.get("evaluation_interval", 0)) or _DEFAULT_INTERVAL_MS
    order = list(doc.get("group_eval_order", []))
    seen: set[str] = set()
    for g in order:
        if g in seen:
            return [f"group name repeated in evaluation order: {g}"]
        seen.add(g)
    errs: list[str] = []
    for tg in doc.get("tests", []):
        errs.extend(_run_group(tg, rule_files, order, eval_ms, prometheus2, bool(doc.get("fuzzy_compare"))))
    return errs


def run_test_files(
    paths: Iterable[str | Path], out: IO[str], err: IO[str], *, prometheus2: bool = False
) -> int:
    """Run test files printing as promtool does; 0 when all pass, 1 otherwise."""
    failed = False
    for path in paths:
        print("Unit Testing: ", path, file=out)
        out.flush()
        errs = run_test_file(path, prometheus2=prometheus2, warn=err)
        if errs:
            print("  FAILED:", file=err)
            for e in errs:
                print(e, file=err)
                print(file=out)
            failed = True
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0


# -- writing a regression test --------------------------------------------------------------------


def _fmt_value(v: float) -> str:
    if is_stale(np.array([v]))[0]:
        return "stale"
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def encode_series(indices: np.ndarray, values: np.ndarray) -> str:
    """Series notation for samples at integer interval ``indices`` (from 0), compact where exact.

    Gaps become ``_``/``_xN``; consecutive samples on an exact arithmetic progression (as
    Prometheus expands it, by repeated addition) become ``a+bxN``/``axN``.
    """
    out: list[str] = []
    prev = -1
    i, n = 0, len(indices)
    stale = is_stale(values)
    while i < n:
        gap = int(indices[i]) - prev - 1
        if gap == 1:
            out.append("_")
        elif gap > 1:
            out.append(f"_x{gap}")
        j = i
        if i + 1 < n and not stale[i] and not stale[i + 1] and np.isfinite(values[i : i + 2]).all():
            step = values[i + 1] - values[i]
            acc = values[i]
            while (
                j + 1 < n
                and indices[j + 1] == indices[j] + 1
                and not stale[j + 1]
                and acc + step == values[j + 1]
                and math.isfinite(step)
            ):
                acc += step
                j += 1
        if j - i >= 2:
            step = float(values[i + 1] - values[i])
            if step == 0:
                out.append(f"{_fmt_value(values[i])}x{j - i}")
            else:
                sign = "+" if step > 0 else "-"
                out.append(f"{_fmt_value(values[i])}{sign}{_fmt_value(abs(step))}x{j - i}")
        else:
            j = i
            out.append(_fmt_value(float(values[i])))
        prev = int(indices[j])
        i = j + 1
    return " ".join(out)


def _selected_names(expr: str) -> tuple[set[str], int]:
    """Metric names an expression selects and its longest range window (ms)."""
    tree = parse(expr)
    return metric_names(tree), longest_window_ms(tree)


def _ts_ms(x: Any) -> int:
    return int(pd.Timestamp(x).value // 1_000_000)


def write_regression_test(
    rule_files: Sequence[str | Path],
    store: SeriesStore,
    incident_row: Any,
    evaluation: RuleEvaluation,
    out_path: str | Path,
    *,
    alerts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write a promtool test pinning an incident and the alerts a backtest observed around it.

    ``incident_row`` has ``id``, ``kind``, ``start``, ``end`` and ``expected_alerts``; ``evaluation``
    is the backtest of ``rule_files`` over ``store``. The pinned alerts are ``alerts`` or else the
    incident's expected alerts plus every alert that fired in its window. The test starts early
    enough for every range window and ``for`` to fill (so its alerts equal the backtest's) and keeps
    only evaluation times where Prometheus 2 and 3 range semantics agree. Returns a summary.
    """
    groups = load_rule_files(rule_files)
    start, end = _ts_ms(incident_row["start"]), _ts_ms(incident_row["end"])
    frame = evaluation.alerts
    span = frame[
        (frame["firing_at_ms"].notna())
        & (frame["active_at_ms"] <= end + 900_000)
        & (frame["resolved_at_ms"].isna() | (frame["resolved_at_ms"] >= start))
    ]
    pinned = list(alerts) if alerts else sorted(set(incident_row["expected_alerts"]) | set(span["alertname"]))
    by_name = {r.name: (g, r) for g in groups for r in g.rules if isinstance(r, AlertingRule)}
    unknown = [a for a in pinned if a not in by_name]
    if unknown:
        raise UserError(f"alert {unknown[0]!r} is not defined in {', '.join(map(str, rule_files))}")
    if not pinned:
        raise UserError(f"incident {incident_row['id']}: no alert to pin (none expected, none fired)")
    times = evaluation.eval_times(by_name[pinned[0]][0].name)
    if times.size < 2:
        raise UserError("the backtest has fewer than two evaluations: cannot infer its interval")
    interval = int(times[1] - times[0])
    needed, longest, longest_for = _needed_metrics(groups, [by_name[a][1] for a in pinned])
    lead = max(longest, 300_000) + longest_for + 2 * interval
    first_active = span["active_at_ms"].min() if len(span) else start
    t0 = min(start, int(first_active)) - lead
    t1 = max(end, int(span["resolved_at_ms"].max()) if span["resolved_at_ms"].notna().any() else end)
    t1 += max(longest, 300_000) + 2 * interval
    # The test's time 0 is a backtest evaluation, so test evaluations are backtest evaluations.
    origin = int(times[max(int(np.searchsorted(times, t0, side="right")) - 1, 0)])
    t1 = min(t1, int(times[-1]))
    input_series, step = _input_series(store, needed, origin, t1, interval, incident_row["id"])
    floor = max(longest, 300_000) + interval  # windows full of test data from here on
    cand_list = _candidate_times(
        span, pinned, (start - origin, end - origin), origin, interval, (floor, t1 - origin)
    )
    rel_files = [os.path.relpath(Path(rf).resolve(), Path(out_path).resolve().parent) for rf in rule_files]
    test: dict[str, Any] = {
        "name": f"incident {incident_row['id']} ({incident_row['kind']})",
        "interval": format_duration_ms(step),
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": format_duration_ms(t), "alertname": a, "exp_alerts": []}
            for t in cand_list
            for a in pinned
        ],
    }
    doc = {"rule_files": rel_files, "evaluation_interval": format_duration_ms(interval), "tests": [test]}
    cases, dropped, differs = _agreeing_cases(groups, test, interval, cand_list, pinned, evaluation, origin)
    test["alert_rule_test"] = cases
    text = _regression_header(incident_row, start, end, origin, Path(out_path).name)
    text += yaml.safe_dump(doc, sort_keys=False, width=1 << 30, allow_unicode=True)
    target = Path(out_path)
    atomic_write_text(target, text, inputs=rule_files)
    return {
        "path": str(target),
        "alerts": pinned,
        "cases": len(cases),
        "dropped_disagreeing_times": dropped,
        "differs_from_backtest": differs,
        "series": len(input_series),
        "interval_ms": step,
        "origin_ms": origin,
    }


def _needed_metrics(groups: Sequence[RuleGroup], pinned: Sequence[AlertingRule]) -> tuple[set[str], int, int]:
    """The metrics the pinned alerts read, following recording rules to their inputs; the longest
    range window among them and the longest ``for`` + ``keep_firing_for`` of the alerts."""
    recorded = {r.record: r for g in groups for r in g.rules if isinstance(r, RecordingRule)}
    needed: set[str] = set()
    longest = 0
    longest_for = max(r.for_ms + r.keep_firing_for_ms for r in pinned)
    todo = [r.expr for r in pinned]
    while todo:
        names, window = _selected_names(todo.pop())
        longest = max(longest, window)
        for name in names - needed:
            needed.add(name)
            if name in recorded:
                todo.append(recorded[name].expr)
    return needed, longest, longest_for


def _input_series(
    store: SeriesStore, needed: set[str], origin: int, t1: int, interval: int, incident: Any
) -> tuple[list[dict[str, str]], int]:
    """The test's ``input_series`` (the needed metrics over ``[origin, t1]``) and its step: the
    largest that puts every sample and evaluation on the grid."""
    chosen = []
    for s in store:
        if s.name not in needed:
            continue
        first = int(np.searchsorted(s.timestamps, origin, side="left"))
        stop = int(np.searchsorted(s.timestamps, t1, side="right"))
        if stop > first:
            chosen.append((s, first, stop))
    if not chosen:
        raise UserError(f"incident {incident}: the store has no samples for {sorted(needed)}")
    offsets = np.concatenate([s.timestamps[lo:hi] - origin for s, lo, hi in chosen])
    step = int(np.gcd.reduce(np.append(offsets, interval).astype(np.int64))) or interval
    input_series = []
    for s, lo, hi in sorted(chosen, key=lambda c: c[0].labels):
        labels = dict(s.labels)
        name = labels.pop(METRIC_NAME)
        text = name + "{" + ", ".join(f"{k}={_go_quote(v)}" for k, v in sorted(labels.items())) + "}"
        idx = (s.timestamps[lo:hi] - origin) // step
        input_series.append({"series": text, "values": encode_series(idx, s.values[lo:hi])})
    return input_series, step


def _candidate_times(
    span: pd.DataFrame,
    pinned: Sequence[str],
    extra: Sequence[int],
    origin: int,
    interval: int,
    within: tuple[int, int],
) -> list[int]:
    """Test-relative times around every firing of a pinned alert (and ``extra``) that lie
    ``within`` the given bounds, each moved down onto the evaluation grid, sorted."""
    cands = set(extra)
    for name, active, firing, resolved in zip(
        span["alertname"], span["active_at_ms"], span["firing_at_ms"], span["resolved_at_ms"], strict=True
    ):
        if name not in pinned:
            continue
        f = int(firing) - origin
        cands.update({f - interval, f, int(active) - origin})
        if not pd.isna(resolved):
            cands.add(int(resolved) - origin)
    lo, hi = within
    return sorted({(c // interval) * interval for c in cands if lo <= c <= hi})


def _agreeing_cases(
    groups: Sequence[RuleGroup],
    test: dict[str, Any],
    interval: int,
    times: Sequence[int],
    pinned: Sequence[str],
    evaluation: RuleEvaluation,
    origin: int,
) -> tuple[list[dict[str, Any]], int, int]:
    """The expected alerts the test data gives at each time under both range semantics (times
    where Prometheus 2 and 3 disagree are dropped); also how many were dropped and how many
    differ from the backtest's own alerts."""
    tg = _load_group(
        decode(load_yaml(yaml.safe_dump(test), "<test>", schema="go"), _TEST_GROUP), interval, False
    )
    ordered = _ordered(list(groups), [], interval)
    ev3, _ = _evaluate(ordered, tg, interval, False)
    ev2, _ = _evaluate(ordered, tg, interval, True)
    cases, dropped, differs = [], 0, 0
    for t in times:
        for a in pinned:
            got = _firing(ev3, t, a)
            if got != _firing(ev2, t, a):
                dropped += 1
                continue
            original = _firing(evaluation, origin + t, a)
            if [la[0] for la in got] != [la[0] for la in original]:
                differs += 1
            expected = [
                {"exp_labels": {k: v for k, v in lab.items() if k != "alertname"}, "exp_annotations": ann}
                for lab, ann in got
            ]
            cases.append({"eval_time": format_duration_ms(t), "alertname": a, "exp_alerts": expected})
    return cases, dropped, differs


def _regression_header(incident_row: Any, start: int, end: int, origin: int, file_name: str) -> str:
    def iso(ms: int) -> str:
        return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()

    return (
        f"# Regression test pinning incident {incident_row['id']} ({incident_row['kind']}, "
        f"{iso(start)} to {iso(end)}).\n"
        f"# Written by sloanalysis from a backtest; test time 0 is {iso(origin)}.\n"
        f"# Run: promtool test rules {file_name}  (or: sloanalysis test-rules ...)\n"
    )
