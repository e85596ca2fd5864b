"""Rule-count scaling: ``sloanalysis test-rules`` against ``promtool test rules``, and backtests.

Generated rule files of N rules (default 1,000 / 5,000 / 10,000), a realistic mix in units of
three: two recording rules ``sum by (job) (rate(http_requests_total{...}[5m]))`` (all requests,
errors) and an alerting rule on their ratio with ``for: 5m``, a label and a templated
annotation. Each N is laid out two ways: every rule in one group, and one group per unit (N/3
groups). The small store: 48 counters (3 jobs x 8 shards x 2 codes) at 1 m over 3 hours.

1. ``test-rules``: a promtool unit-test file over those input series (an alert case and an
   expression case at 3 h, so 181 evaluations of every group; then the same at 5 m, 6
   evaluations, where loading the rules dominates) run by ``sloanalysis test-rules
   --prometheus2`` and by the installed ``promtool test rules`` (Prometheus 2.42, the baseline)
   in the same run, both as subprocesses (start-up included on both sides); the ratio ours /
   promtool is printed. Both must print SUCCESS.
2. backtest: ``evaluate_rules`` of the same groups over the same store in this process (rule
   loading excluded), 1 group against N/3 groups: the two times should be of the same order
   (linear in groups).

A side stopped after ``--cap`` seconds is printed as ``> cap``. Not part of ``make test``::

    python benchmarks/bench_rules.py [--sizes 1000,5000,10000] [--cap SECONDS]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.model import load_rules
from sloanalysis.sources.notation import parse_series_line
from sloanalysis.store import SeriesStore

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SLOANALYSIS = str(Path(sys.executable).with_name("sloanalysis"))
JOBS = ("api", "web", "worker")
SHARDS = 8
HOURS = 3


def _unit(u: int) -> list[str]:
    """Three rules: requests and errors recorded per job, an alert on their ratio."""
    shard = f"s{u % SHARDS}"
    return [
        f"  - record: job:http_requests:rate5m_{u}",
        f'    expr: sum by (job) (rate(http_requests_total{{shard="{shard}"}}[5m]))',
        f"  - record: job:http_errors:rate5m_{u}",
        f'    expr: sum by (job) (rate(http_requests_total{{shard="{shard}", code=~"5.."}}[5m]))',
        f"  - alert: HighErrorRatio{u}",
        f"    expr: job:http_errors:rate5m_{u} / job:http_requests:rate5m_{u} > 0.{1 + u % 4}",
        "    for: 5m",
        "    labels:",
        "      severity: page",
        "    annotations:",
        f'      summary: "{{{{ $labels.job }}}} error ratio above 0.{1 + u % 4} (unit {u})"',
    ]


def rule_file(n: int, *, grouped: bool) -> str:
    """N rules (rounded down to whole units) in one group, or one group of three per unit."""
    lines = ["groups:"]
    for u in range(n // 3):
        if u == 0 or grouped:
            lines += [f"- name: g{u if grouped else 'all'}", "  rules:"]
        lines += _unit(u)
    return "\n".join(lines) + "\n"


def _series() -> list[tuple[str, str]]:
    """(series, values) of the input: a counter per (job, shard, code) at 1 m for 3 hours."""
    out = []
    for j, job in enumerate(JOBS):
        for s in range(SHARDS):
            for code, rate in (("200", 60 + 10 * j + s), ("500", 5 * (j + 1) + s % 3)):
                labels = f'http_requests_total{{job="{job}", shard="s{s}", code="{code}"}}'
                out.append((labels, f"0+{rate}x{HOURS * 60}"))
    return out


def test_file(rules_name: str, eval_minutes: int = HOURS * 60) -> str:
    """A unit test at ``eval_minutes``. At 3 h unit 0's alert (ratio above 0.1 in shard 0)
    fires for web (10 errors of 80 requests a minute) and worker (15 of 95), not api (5 of 65);
    at 5 m it is still pending (active from 1 m, ``for: 5m``). Unit 0 records 3 jobs."""
    lines = [f"rule_files: [{rules_name}]", "evaluation_interval: 1m", "tests:", "- interval: 1m"]
    lines.append("  input_series:")
    for series, values in _series():
        lines += [f"  - series: '{series}'", f"    values: '{values}'"]
    t = f"{eval_minutes}m"
    firing = ("web", "worker") if eval_minutes >= 6 else ()
    lines += [
        "  alert_rule_test:",
        f"  - eval_time: {t}",
        "    alertname: HighErrorRatio0",
        "    exp_alerts:" + ("" if firing else " []"),
    ]
    for job in firing:
        lines += [
            f"    - exp_labels: {{job: {job}, severity: page}}",
            f'      exp_annotations: {{summary: "{job} error ratio above 0.1 (unit 0)"}}',
        ]
    lines += [
        "  promql_expr_test:",
        "  - expr: count(job:http_requests:rate5m_0)",
        f"    eval_time: {t}",
        "    exp_samples:",
        "    - labels: '{}'",
        "      value: 3",
    ]
    return "\n".join(lines) + "\n"


def _run(cmd: list[str], cap: float) -> tuple[float | None, str]:
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return None, "timeout"
    elapsed = time.perf_counter() - start
    verdict = "SUCCESS" if p.returncode == 0 and "SUCCESS" in p.stdout else f"exit {p.returncode}"
    if p.returncode != 0:
        verdict += ": " + (p.stderr.strip().splitlines() or [""])[0][:200]
    return elapsed, verdict


def _store() -> SeriesStore:
    store = SeriesStore()
    for series, values in _series():
        line = parse_series_line(f"{series} {values}", 60_000)
        store.add(line.labels, line.timestamps, line.values)
    return store


def time_backtest(path: Path) -> float:
    """Seconds of ``evaluate_rules`` over the store (rule loading excluded)."""
    groups = load_rules(path)
    start = time.perf_counter()
    evaluate_rules(groups, _store(), 0, HOURS * 3_600_000, default_interval_ms=60_000)
    return time.perf_counter() - start


def _backtest(path: Path, cap: float) -> float | None:
    """:func:`time_backtest` in a subprocess, stopped after ``cap`` seconds."""
    try:
        p = subprocess.run(
            [sys.executable, __file__, "--time-backtest", str(path)],
            capture_output=True,
            text=True,
            timeout=cap,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return None
    return float(p.stdout.strip().splitlines()[-1])


def _fmt(t: float | None, cap: float) -> str:
    return f"> {cap:.0f} s" if t is None else f"{t:.2f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.1f}x"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000", help="rule counts, comma separated")
    parser.add_argument("--cap", type=float, default=300.0, help="seconds before a side is stopped")
    parser.add_argument("--no-backtest", action="store_true")
    parser.add_argument("--time-backtest", metavar="RULES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_backtest:
        print(time_backtest(Path(args.time_backtest)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"load average {os.getloadavg()[0]:.2f}; promtool: {PROMTOOL}", flush=True)
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            for grouped in (False, True):
                layout = f"{n // 3} groups" if grouped else "1 group"
                rules = Path(tmp) / f"rules-{n}-{int(grouped)}.yml"
                rules.write_text(rule_file(n, grouped=grouped), encoding="utf-8")
                for minutes in (HOURS * 60, 5):
                    test = Path(tmp) / f"test-{n}-{int(grouped)}-{minutes}.yml"
                    test.write_text(test_file(rules.name, minutes), encoding="utf-8")
                    ours, ours_v = _run([SLOANALYSIS, "test-rules", "--prometheus2", str(test)], args.cap)
                    theirs, theirs_v = _run([PROMTOOL, "test", "rules", str(test)], args.cap)
                    print(
                        f"test-rules {n:>6,} rules, {layout:>12}, {minutes + 1:>3} evaluations: "
                        f"ours {_fmt(ours, args.cap)} ({ours_v}), promtool {_fmt(theirs, args.cap)} "
                        f"({theirs_v}), ratio {_ratio(ours, theirs)}",
                        flush=True,
                    )
                    if theirs_v != "SUCCESS" or (ours is not None and ours_v != "SUCCESS"):
                        status = 1
            if not args.no_backtest:
                one = _backtest(Path(tmp) / f"rules-{n}-0.yml", args.cap)
                many = _backtest(Path(tmp) / f"rules-{n}-1.yml", args.cap)
                print(
                    f"backtest   {n:>6,} rules: 1 group {_fmt(one, args.cap)}, {n // 3:,} groups "
                    f"{_fmt(many, args.cap)}, ratio {_ratio(many, one)}",
                    flush=True,
                )
    return status


if __name__ == "__main__":
    sys.exit(main())
