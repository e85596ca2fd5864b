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
from sloanalysis.durations import format_duration_ms, parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.files import atomic_write_text
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.promql.parse import parse
from sloanalysis.promql.walk import longest_window_ms, metric_names
from sloanalysis.rules.manager import RuleEvaluation, evaluate_rules
from sloanalysis.rules.model import AlertingRule, RecordingRule, RuleGroup, load_rule_files, load_rules
from sloanalysis.sources.notation import parse_series_line, split_metric
from sloanalysis.store import METRIC_NAME, SeriesStore, is_stale
from sloanalysis.yamlload import load_yaml

__all__ = ["run_test_file", "run_test_files", "write_regression_test"]

_FILE_KEYS = {"rule_files", "evaluation_interval", "group_eval_order", "tests"}
_GROUP_KEYS = {
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
    "name",
}
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


def _samples_text(samples: Sequence[tuple[dict[str, str], float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(f"{_go_labels(lab)} {format_float(v, 'E')}" for lab, v in samples)


# -- reading test files ---------------------------------------------------------------------------


class _Bad(Exception):
    """A test file promtool would refuse; the message is what it prints."""


def _duration(value: Any, what: str) -> int:
    if value is None:
        return 0
    try:
        return parse_prometheus_duration(str(value), what=what)
    except UserError as exc:
        raise _Bad(str(exc)) from None


def _check_keys(obj: Any, allowed: set[str], what: str) -> dict[str, Any]:
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise _Bad(f"{what}: expected a mapping")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise _Bad(f"{what}: field {unknown[0]} not found in type")
    return obj


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise _Bad(f"open {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _Bad(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    except UserError as exc:
        raise _Bad(str(exc)) from None
    return _check_keys(doc, _FILE_KEYS, str(path))


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


def _load_group(raw: Any, idx: int) -> _Group:
    tg = _check_keys(raw, _GROUP_KEYS, f"tests[{idx}]")
    interval = _duration(tg.get("interval"), f"tests[{idx}].interval") or _DEFAULT_INTERVAL_MS
    store = SeriesStore()
    for s in tg.get("input_series") or []:
        s = _check_keys(s, {"series", "values"}, f"tests[{idx}].input_series")
        try:
            line = parse_series_line(f"{s.get('series', '')} {s.get('values', '')}", interval)
        except UserError as exc:
            raise _Bad(f"tests[{idx}].input_series: {s.get('series')}: {exc}") from None
        store.add(line.labels, line.timestamps, line.values)
    group = _Group(str(tg.get("name") or ""), interval, store)
    group.external_labels = {str(k): str(v) for k, v in (tg.get("external_labels") or {}).items()}
    for case in tg.get("alert_rule_test") or []:
        case = _check_keys(case, {"eval_time", "alertname", "exp_alerts"}, f"tests[{idx}].alert_rule_test")
        if not case.get("alertname"):
            where = f" (in TestGroup {group.name})" if group.name else ""
            t = format_duration_ms(_duration(case.get("eval_time"), "eval_time"))
            raise _Bad(
                f"an item under alert_rule_test misses required attribute alertname at eval_time {t}{where}"
            )
        group.alert_cases.append({**case, "_t": _duration(case.get("eval_time"), "eval_time")})
    for case in tg.get("promql_expr_test") or []:
        case = _check_keys(case, {"expr", "eval_time", "exp_samples"}, f"tests[{idx}].promql_expr_test")
        group.expr_cases.append({**case, "_t": _duration(case.get("eval_time"), "eval_time")})
    return group


def _ordered(groups: list[RuleGroup], order: Sequence[str], interval_ms: int) -> list[RuleGroup]:
    rank = {name: i for i, name in enumerate(order)}
    ordered = sorted(groups, key=lambda g: rank.get(g.name, 0))
    # promtool evaluates every group at every evaluation_interval tick, whatever its own interval.
    return [replace(g, interval_ms=interval_ms) for g in ordered]


def _firing(evaluation: RuleEvaluation, t_ms: int, name: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    got = [
        (dict(a["labels"]), dict(a["annotations"]))
        for a in evaluation.active_at(t_ms)
        if a["state"] == "firing" and a["labels"].get("alertname") == name
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
        merged.add(s.labels, s.timestamps, s.values)
    return evaluation, merged


def _check_group(rule_groups: list[RuleGroup], group: _Group, eval_ms: int, prometheus2: bool) -> list[str]:
    errs: list[str] = []
    evaluation, merged = _evaluate(rule_groups, group, eval_ms, prometheus2)
    for case in sorted(group.alert_cases, key=lambda c: c["_t"]):
        at = (case["_t"] // eval_ms) * eval_ms  # the evaluation with ts <= eval_time < ts + interval
        got = _firing(evaluation, at, str(case["alertname"]))
        exp = []
        for a in case.get("exp_alerts") or []:
            a = _check_keys(a, {"exp_labels", "exp_annotations"}, "exp_alerts")
            labels = {str(k): str(v) for k, v in (a.get("exp_labels") or {}).items()}
            labels["alertname"] = str(case["alertname"])
            annotations = {str(k): str(v) for k, v in (a.get("exp_annotations") or {}).items()}
            exp.append((labels, annotations))
        exp.sort(key=lambda la: (sorted(la[0].items()), sorted(la[1].items())))
        if exp != got:
            name = f"    name: {group.name},\n" if group.name else ""
            pad = " " * 12
            errs.append(
                f"{name}    alertname: {case['alertname']}, time: {format_duration_ms(case['_t'])}, \n"
                f"        exp:{_indent(_alerts_text(exp), pad)}, \n"
                f"        got:{_indent(_alerts_text(got), pad)}"
            )
    engine = Engine(merged, prometheus2=prometheus2)
    for case in group.expr_cases:
        expr, t = str(case.get("expr", "")), case["_t"]
        head = f"    expr: {_go_quote(expr)}, time: {format_duration_ms(t)}"
        try:
            res = engine.instant(expr, t)
        except PromQLError as exc:
            errs.append(f"{head}, err: {exc}")
            continue
        got_s: list[tuple[dict[str, str], float]]
        if res.kind == "scalar":
            got_s = [({}, float(res.values[0, 0]))]
        elif res.kind == "vector":
            got_s = [(dict(lab), float(res.values[i, 0])) for i, lab in enumerate(res.labels)]
        else:
            errs.append(f"{head}, err: rule result is not a vector or scalar")
            continue
        exp_s = []
        try:
            for s in case.get("exp_samples") or []:
                s = _check_keys(s, {"labels", "value"}, "exp_samples")
                parsed, rest = split_metric(str(s.get("labels", "")))
                if rest:
                    raise UserError(f"unexpected {rest!r}")
                exp_s.append((dict(parsed), float(s.get("value", 0.0))))
        except (UserError, ValueError) as exc:
            errs.append(f"{head}, err: labels: {exc}")
            continue
        exp_s.sort(key=lambda x: sorted(x[0].items()))
        got_s.sort(key=lambda x: sorted(x[0].items()))
        same = len(exp_s) == len(got_s) and all(
            a[0] == b[0] and a[1] == b[1] for a, b in zip(exp_s, got_s, strict=True)
        )  # exact, as promtool's reflect.DeepEqual (NaN never equals NaN)
        if not same:
            errs.append(f"{head},\n        exp: {_samples_text(exp_s)}\n        got: {_samples_text(got_s)}")
    return errs


def run_test_file(path: str | Path, *, prometheus2: bool = False, warn: IO[str] | None = None) -> list[str]:
    """Error messages of one test file (empty when every case passes)."""
    p = Path(path)
    try:
        doc = _read(p)
        eval_ms = _duration(doc.get("evaluation_interval"), "evaluation_interval") or _DEFAULT_INTERVAL_MS
        order = [str(g) for g in doc.get("group_eval_order") or []]
        seen: set[str] = set()
        for g in order:
            if g in seen:
                return [f"group name repeated in evaluation order: {g}"]
            seen.add(g)
        rule_groups: list[RuleGroup] = []
        for rf in _rule_files(p, doc, warn):
            try:
                rule_groups.extend(load_rules(rf))
            except UserError as exc:
                return [str(exc)]
        errs: list[str] = []
        for i, raw in enumerate(doc.get("tests") or []):
            group = _load_group(raw, i)
            try:
                errs.extend(_check_group(_ordered(rule_groups, order, eval_ms), group, eval_ms, prometheus2))
            except UserError as exc:
                errs.append(f"    {exc}")
        return errs
    except _Bad as exc:
        return [str(exc)]


def run_test_files(
    paths: Iterable[str | Path], out: IO[str], err: IO[str], *, prometheus2: bool = False
) -> int:
    """Run test files printing as promtool does; 0 when all pass, 1 otherwise."""
    failed = False
    for path in paths:
        print("Unit Testing: ", path, file=out)
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
    tg = _load_group(test, 0)
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
