"""Backtest of the seed's rules plus the generated SLO rules over the 30-day reference run at 15 s.

Embedded: load the run, evaluate every rule (``load_rules`` + ``evaluate_rules``), timed end to end,
once before and once after the baseline (the machine is shared; both are printed, and the ratio
against each).

Baseline, in the same run: a real Prometheus 2.42 holding the backfilled run (backfill and server
start excluded) does the same evaluation. Every rule's expression is sent as a range query at its
group's evaluation grid over the whole span (chunked at 11,000 points per series, the server's
limit), into numpy arrays over plain HTTP; alerting rules then go through the same ``for`` /
``keep_firing_for`` state machine and label templating as the embedded side
(``sloanalysis.rules.manager._alerts``), so only the expression evaluation differs. Rules are taken in
the embedded side's dependency order. The server stores no recorded series, so a selector of a
recorded metric is replaced by the recording rule's own (already inlined) expression, with the
rule's labels attached by ``label_replace`` and:

- an instant selector read at the recording group's interval: ``(expr)``;
- an instant selector read from a group with another interval: ``last_over_time((expr)[i:i])``
  (the latest evaluation of the recording group at or before ``t``);
- a range selector ``[r]``: the subquery ``(expr)[r:i]``, ``i`` the recording group's interval
  (aligned to the epoch, as the groups' evaluations are).

Inside subqueries the expression is cut to ``t >= start`` (``and on() (vector(time()) >= start)``):
a backtest has no recorded samples before its first evaluation. Both sides' firing intervals are
compared (every difference printed), and each recording rule's values against the embedded
side's recorded series (points present on one side only, largest relative difference). The
server's data differs from the run in one way: OpenMetrics cannot carry stale markers, so after
a crash the server's instant selectors see the last sample for 5 minutes where the run's series
has ended. An untimed second embedded evaluation on the run without its stale markers (exactly
the server's input) tells such data differences from evaluation differences.

``--promtool`` adds the older baseline, ``promtool tsdb create-blocks-from rules`` on the same
server (it only evaluates rules over raw data; > 20 minutes on 30 days, stopped at ``--cap``).
Not part of ``make test``::

    python benchmarks/bench_backtest.py [RUN_DIR] [--blocks DIR] [--days N] [--promtool [--cap SECONDS]]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from promserver import PROMTOOL, backfill, running_prometheus  # noqa: E402

from sloanalysis._go import match_op  # noqa: E402
from sloanalysis.durations import format_duration_ms  # noqa: E402
from sloanalysis.formatting import render  # noqa: E402
from sloanalysis.promql.parse import parse  # noqa: E402
from sloanalysis.rules.manager import (  # noqa: E402
    RuleEvaluation,
    _Activation,
    _alerts,
    _order,
    eval_times,
    evaluate_rules,
)
from sloanalysis.rules.model import AlertingRule, RecordingRule, Rule, RuleGroup, load_rules  # noqa: E402
from sloanalysis.sources.rundir import load_run  # noqa: E402
from sloanalysis.store import METRIC_NAME, Labels, Matcher, SeriesStore, is_stale, make_labels  # noqa: E402

MAX_POINTS = 11_000  # Prometheus refuses range queries of more points per series


# -- inlining recorded series ----------------------------------------------------------------


class NotInlinable(Exception):
    """A selector of a recorded metric that textual inlining cannot reproduce."""


@dataclass
class Recorded:
    rule: RecordingRule
    interval_ms: int
    text: str  # the inlined expression with the rule's labels attached


def _with_labels(expr: str, rule: RecordingRule) -> str:
    """The recorded series: the expression's result named ``record``, rule labels overriding."""
    out = f"({expr})"
    for k, v in {METRIC_NAME: rule.record, **rule.labels}.items():
        out = f'label_replace({out}, "{k}", "{v}", "", "")'
    return out


def _guard(text: str, start_s: int) -> str:
    return f"({text} and on() (vector(time()) >= {start_s}))"


def _selector_pattern(names: list[str]) -> re.Pattern[str]:
    alt = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_:])({alt})(?![A-Za-z0-9_:(])\s*(\{{[^{{}}]*\}})?\s*(\[[^\]]*\])?")


def inline(expr: str, interval_ms: int, recorded: dict[str, list[Recorded]], start_s: int) -> str:
    """``expr`` with every selector of a recorded metric replaced by what records it."""
    if not recorded:
        return expr
    pattern = _selector_pattern(list(recorded))

    def substitute(m: re.Match[str]) -> str:
        name, braces, window = m.group(1), m.group(2) or "", m.group(3)
        node = parse(f"{name}{braces}")
        matchers = [
            Matcher.of(x.name, match_op(x.op), x.value)
            for x in node.matchers.matchers
            if x.name != METRIC_NAME
        ]
        hits = []
        for rec in recorded[name]:
            if any(x.name not in rec.rule.labels for x in matchers):
                raise NotInlinable(f"{name}{braces}: matcher on a label the rule does not set")
            if all(x.matches(rec.rule.labels[x.name]) for x in matchers):
                hits.append(rec)
        if not hits:
            raise NotInlinable(f"{name}{braces}: no recording rule writes it")
        intervals = {h.interval_ms for h in hits}
        if len(intervals) > 1:
            raise NotInlinable(f"{name}{braces}: recorded by groups of different intervals")
        step = intervals.pop()
        union = " or ".join(h.text for h in hits)
        if window:
            return f"({_guard(union, start_s)}){window[:-1]}:{format_duration_ms(step)}]"
        if step == interval_ms:
            return f"({union})"
        every = format_duration_ms(step)
        return f"last_over_time(({_guard(union, start_s)})[{every}:{every}])"

    return pattern.sub(substitute, expr)


# -- the server side -------------------------------------------------------------------------


@dataclass
class Fetched:
    labels: list[Labels]
    values: np.ndarray  # (n, T)
    present: np.ndarray  # (n, T)
    chunks: int
    query_s: float  # HTTP round trips (server compute, JSON, transfer)
    parse_s: float  # JSON into arrays


def query_range(session: requests.Session, url: str, expr: str, ts: np.ndarray, step_ms: int) -> Fetched:
    """``expr`` at every ``ts`` (ms, step ``step_ms``) into (series, time) arrays, chunked."""
    T = ts.size
    rows: dict[Labels, int] = {}
    vals: list[np.ndarray] = []
    pres: list[np.ndarray] = []
    q_s = p_s = 0.0
    chunks = 0
    for k in range(0, T, MAX_POINTS):
        lo, hi = int(ts[k]), int(ts[min(k + MAX_POINTS, T) - 1])
        t0 = time.perf_counter()
        resp = session.post(
            f"{url}/api/v1/query_range",
            data={"query": expr, "start": lo / 1000, "end": hi / 1000, "step": step_ms / 1000},
            headers={"Accept-Encoding": "identity"},
            timeout=3600,
        )
        if resp.status_code != 200:
            raise RuntimeError(f"query_range failed ({resp.status_code}): {resp.text[:500]}")
        body = resp.json()
        t1 = time.perf_counter()
        for item in body["data"]["result"]:
            key = make_labels(item["metric"])
            if key not in rows:
                rows[key] = len(vals)
                vals.append(np.zeros(T))
                pres.append(np.zeros(T, dtype=bool))
            i = rows[key]
            points = item["values"]
            at = np.rint(np.array([p[0] for p in points], dtype=float) * 1000).astype(np.int64)
            idx = (at - int(ts[0])) // step_ms
            vals[i][idx] = np.array([p[1] for p in points], dtype=float)
            pres[i][idx] = True
        q_s += t1 - t0
        p_s += time.perf_counter() - t1
        chunks += 1
    values = np.array(vals) if vals else np.zeros((0, T))
    present = np.array(pres) if pres else np.zeros((0, T), dtype=bool)
    return Fetched(list(rows), values, present, chunks, q_s, p_s)


def compare_recording(rule: RecordingRule, f: Fetched, ts: np.ndarray, recorded: SeriesStore) -> str:
    """Points present on one side only, and the largest value difference against the embedded side.

    The difference is absolute, divided by the larger magnitude where that is at least 1e-6 (a
    relative difference of two values near 0, e.g. 1e-16 against 0, says nothing).
    """
    mismatched = 0
    worst = 0.0
    scale = 1e-6
    seen: set[Labels] = set()
    for lab, v, p in zip(f.labels, f.values, f.present, strict=True):
        key = make_labels({**dict(lab), METRIC_NAME: rule.record, **rule.labels})
        seen.add(key)
        s = recorded.get(key)
        e_pres = np.zeros(ts.size, dtype=bool)
        e_vals = np.zeros(ts.size)
        if s is not None:
            pos = np.searchsorted(ts, s.timestamps)
            ok = (pos < ts.size) & (ts[np.minimum(pos, ts.size - 1)] == s.timestamps) & ~is_stale(s.values)
            e_pres[pos[ok]] = True
            e_vals[pos[ok]] = s.values[ok]
        mismatched += int((p != e_pres).sum())
        both = p & e_pres
        a, b = v[both], e_vals[both]
        finite = np.isfinite(a) & np.isfinite(b)
        mismatched += int((np.isnan(a) != np.isnan(b)).sum())
        if finite.any():
            mag = np.maximum(np.maximum(np.abs(a[finite]), np.abs(b[finite])), scale)
            rel = np.abs(a[finite] - b[finite]) / mag
            worst = max(worst, float(rel.max()))
    for s in recorded.select([Matcher.of(METRIC_NAME, "=", rule.record)]):
        d = dict(s.labels)
        if all(d.get(k) == v for k, v in rule.labels.items()) and s.labels not in seen:
            mismatched += int((~is_stale(s.values)).sum())
    return f"{mismatched} pts, diff {worst:.1e}"


@dataclass
class Row:
    rule: str
    kind: str
    step: str
    chunks: int
    series: int
    seconds: float
    checks: list[str]


def baseline(
    url: str, groups: list[RuleGroup], start_ms: int, end_ms: int, references: list[SeriesStore]
) -> tuple[list[Row], list[_Activation], list[str], float]:
    """Every rule evaluated by the server; returns rows, activations, skipped rules, wall seconds.

    Recording results are checked against each of ``references`` (embedded recorded series); the
    seconds exclude those checks.
    """
    flat = [(gi, ri, r) for gi, g in enumerate(groups) for ri, r in enumerate(g.rules)]
    order, _ = _order(flat)
    recorded: dict[str, list[Recorded]] = {}
    rows: list[Row] = []
    acts: list[_Activation] = []
    skipped: list[str] = []
    start_s = start_ms // 1000
    session = requests.Session()
    checking = 0.0
    t_all = time.perf_counter()
    for i in order:
        gi, _ri, rule = flat[i]
        g = groups[gi]
        interval = g.interval_ms or 15_000
        ts = eval_times(start_ms, end_ms, interval)
        try:
            expr = inline(rule.expr, interval, recorded, start_s)
        except NotInlinable as exc:
            skipped.append(f"{rule.name} ({g.name}): {exc}")
            continue
        t0 = time.perf_counter()
        f = query_range(session, url, expr, ts, interval)
        if isinstance(rule, RecordingRule):
            recorded.setdefault(rule.record, []).append(Recorded(rule, interval, _with_labels(expr, rule)))
            t_check = time.perf_counter()
            checks = [compare_recording(rule, f, ts, ref) for ref in references]
            checking += time.perf_counter() - t_check
            t0 += time.perf_counter() - t_check  # the check is not part of the evaluation
            kind = "record"
        else:
            new, fail = _alerts(rule, g.name, f.labels, f.values, f.present, ts, {}, g.limit)
            acts.extend(new)
            n_fire = sum(1 for a in new if a.firing_at is not None)
            failed = f", {int(fail.sum())} failed evals" if fail.any() else ""
            checks = [f"baseline: {n_fire} firing{failed}", ""]
            kind = "alert"
        label = rule.name if isinstance(rule, AlertingRule) else f"{rule.record}{_slo(rule)}"
        every = format_duration_ms(interval)
        rows.append(Row(label, kind, every, f.chunks, len(f.labels), time.perf_counter() - t0, checks))
        print(f"  {rows[-1].seconds:7.1f} s  {label}  [{'; '.join(c for c in checks if c)}]", flush=True)
    return rows, acts, skipped, time.perf_counter() - t_all - checking


def _slo(rule: Rule) -> str:
    slo = rule.labels.get("slo_id", "")
    return f" ({slo.removeprefix('tron-payment-api-')})" if slo else ""


# -- comparison ------------------------------------------------------------------------------


def firing(acts: list[_Activation]) -> set[tuple[str, Labels, int, int | None]]:
    return {
        (a.rule.name, make_labels(a.labels), a.firing_at, a.ended_at) for a in acts if a.firing_at is not None
    }


def _fmt(iv: tuple[str, Labels, int, int | None]) -> str:
    name, labels, s, e = iv
    sev = dict(labels).get("severity", "")
    slo = dict(labels).get("slo_id", "")
    end = "still firing" if e is None else time.strftime("%m-%d %H:%M:%S", time.gmtime(e / 1000))
    return f"{name} {sev} {slo} {time.strftime('%m-%d %H:%M:%S', time.gmtime(s / 1000))} .. {end}"


# -- main ------------------------------------------------------------------------------------


def ensure_run(run_dir: Path) -> None:
    if (run_dir / "metrics.om").exists():
        return
    cmd = [sys.executable, "-m", "simulator.cli", "run", str(REPO / "scenarios/reference-30d.yaml")]
    subprocess.run([*cmd, "--out", str(run_dir), "--openmetrics"], check=True, cwd=REPO)


def generate_rules(out: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "sloanalysis.cli",
        "generate-rules",
        str(REPO / "slos/tron-payment.yaml"),
    ]
    subprocess.run([*cmd, "--out", str(out)], check=True, cwd=REPO)


def promtool_rules(url: str, start_s: int, end_s: int, files: list[Path], out: Path, cap: float) -> str:
    cmd = [PROMTOOL, "tsdb", "create-blocks-from", "rules", f"--url={url}", f"--start={start_s}"]
    cmd += [f"--end={end_s}", "--eval-interval=15s", f"--output-dir={out}", "--quiet", *map(str, files)]
    t = time.perf_counter()
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return f">= {time.perf_counter() - t:.1f} s (stopped at the {cap:.0f} s cap)"
    return f"{time.perf_counter() - t:.1f} s"


@dataclass
class Embedded:
    seconds: float  # load + evaluate
    load_s: float
    ev: RuleEvaluation
    store: SeriesStore
    groups: list[RuleGroup]
    start_ms: int
    end_ms: int


def embedded_run(run_dir: Path, rule_files: list[Path], days: float | None) -> Embedded:
    """The timed embedded backtest."""
    t = time.perf_counter()
    run = load_run(run_dir)
    t_load = time.perf_counter() - t
    groups = [g for f in rule_files for g in load_rules(f)]
    lo, hi = run.store.time_range()  # type: ignore[misc]
    # start on a minute so the 15 s and 1 m groups begin together
    start_ms, end_ms = (lo // 60_000 + 2) * 60_000, hi // 1000 * 1000
    if days:
        end_ms = min(end_ms, start_ms + int(days * 86_400_000))
    ev = evaluate_rules(groups, run.store, start_ms, end_ms, default_interval_ms=15_000, prometheus2=True)
    return Embedded(time.perf_counter() - t, t_load, ev, run.store, groups, start_ms, end_ms)


def without_stale_markers(store: SeriesStore) -> SeriesStore:
    """What the server holds: OpenMetrics (the backfill's input) cannot carry stale markers."""
    out = SeriesStore()
    for s in store:
        keep = ~is_stale(s.values)
        out.add(s.labels, s.timestamps[keep], s.values[keep])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "run_dir",
        nargs="?",
        default=Path(__file__).resolve().parents[1] / "runs" / "reference-30d",
        type=Path,
        help="the 30-day run (default runs/reference-30d, made by make bench)",
    )
    ap.add_argument("--blocks", type=Path, help="backfilled TSDB blocks of the run (made here if absent)")
    ap.add_argument("--promtool", action="store_true", help="also time promtool create-blocks-from rules")
    ap.add_argument("--cap", type=float, default=1800.0, help="seconds allowed to --promtool")
    ap.add_argument("--days", type=float, help="evaluate only the first DAYS of the run (a quick check)")
    ap.add_argument("--format", choices=("table", "json"), default="table")
    args = ap.parse_args()
    ensure_run(args.run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed = REPO / "monitoring/seed/alerting-rules.yml"
        gen = work / "slo-rules.yml"
        generate_rules(gen)

        first = embedded_run(args.run_dir, [seed, gen], args.days)
        emb1, load1, ev, groups = first.seconds, first.load_s, first.ev, first.groups
        start_ms, end_ms = first.start_ms, first.end_ms
        n_rules = sum(len(g.rules) for g in groups)
        print(
            f"embedded: {emb1:.1f} s (load {load1:.1f} s + evaluate {emb1 - load1:.1f} s) "
            f"for {n_rules} rules, {len(ev.activations)} alert activations",
            flush=True,
        )
        # untimed: the same evaluation on exactly the server's input, to tell data from evaluation
        same = evaluate_rules(
            groups,
            without_stale_markers(first.store),
            start_ms,
            end_ms,
            default_interval_ms=15_000,
            prometheus2=True,
        )
        first.store = SeriesStore()  # free it before the server runs

        blocks = args.blocks or work / "blocks"
        if not (blocks.exists() and any(blocks.iterdir())):
            t = time.perf_counter()
            backfill(args.run_dir / "metrics.om", blocks, timeout=3600)
            print(f"backfill (excluded): {time.perf_counter() - t:.1f} s", flush=True)
        server_args = ("--query.timeout=1h", "--query.max-samples=500000000")
        with running_prometheus(blocks, extra_args=server_args) as url:
            print("baseline: Prometheus 2.42 range queries, rule by rule:", flush=True)
            rows, acts, skipped, base_s = baseline(url, groups, start_ms, end_ms, [ev.series, same.series])
            promtool = (
                promtool_rules(url, start_ms // 1000, end_ms // 1000, [seed, gen], work / "out", args.cap)
                if args.promtool
                else None
            )
        second = embedded_run(args.run_dir, [seed, gen], args.days)
        emb2, load2 = second.seconds, second.load_s
        print(
            f"embedded again: {emb2:.1f} s (load {load2:.1f} s + evaluate {emb2 - load2:.1f} s)", flush=True
        )

    table = [
        {"rule": r.rule, "kind": r.kind, "step": r.step, "chunks": r.chunks, "series": r.series}
        | {"baseline_s": round(r.seconds, 2), "vs embedded (run)": r.checks[0]}
        | {"vs embedded (server's input)": r.checks[1]}
        for r in rows
    ]
    print(render(table, args.format))
    base_f = firing(acts)
    slow, fast = max(emb1, emb2), min(emb1, emb2)
    summary = [
        {"measure": "span", "value": f"{(end_ms - start_ms) / 86_400_000:.2f} days, 15 s (1 m group: 1 m)"},
        {"measure": "rules", "value": f"{n_rules} ({len(rows)} evaluated by the server)"},
        {"measure": "embedded (load + evaluate), two runs", "value": f"{emb1:.1f} s, {emb2:.1f} s"},
        {"measure": "baseline (range queries + state machine)", "value": f"{base_s:.1f} s"},
        {
            "measure": "ratio (vs slower / faster embedded run)",
            "value": f"{base_s / slow:.1f}x / {base_s / fast:.1f}x (goal >= 10x)",
        },
    ]
    diffs: list[str] = []
    for name, emb_acts in (("run", ev.activations), ("server's input", same.activations)):
        emb_f = firing(emb_acts)
        summary.append(
            {
                "measure": f"firing intervals: embedded ({name}) / baseline / identical",
                "value": f"{len(emb_f)} / {len(base_f)} / {len(emb_f & base_f)}",
            }
        )
        diffs += [f"only embedded ({name}): {_fmt(iv)}" for iv in sorted(emb_f - base_f, key=str)]
        diffs += [f"only baseline (vs {name}): {_fmt(iv)}" for iv in sorted(base_f - emb_f, key=str)]
    if promtool is not None:
        summary.append({"measure": "promtool create-blocks-from rules", "value": promtool})
    print(render(summary, args.format))
    for line in skipped:
        print(f"not evaluated by the baseline: {line}")
    for line in diffs:
        print(line)


if __name__ == "__main__":
    main()
