"""Backtest of the seed's rules plus the generated SLO rules over the 30-day reference run at 15 s.

Embedded: load the run, evaluate every rule (``evaluate_rules``). Baseline, in the same run: a real
Prometheus 2.42 holding the backfilled run, and ``promtool tsdb create-blocks-from rules`` doing
the same evaluation (15 s, same span) — server start excluded, the backfill excluded. promtool
only evaluates rules over raw data (recorded inputs are not on the server), which is the cheaper
job for the baseline. Prints both wall times and the ratio. Not part of ``make test``.

    python benchmarks/bench_backtest.py [RUN_DIR [CAP_SECONDS]]   # default /tmp/ref30, cap 3600 s

promtool is slow here (it ran > 19 minutes on 2 cores); past the cap the ratio is a lower bound.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from promserver import PROMTOOL, backfill, running_prometheus  # noqa: E402

from sloanalysis.alerting import evaluate_rules  # noqa: E402
from sloanalysis.rules import load_rules  # noqa: E402
from sloanalysis.sources.rundir import load_run  # noqa: E402


def main() -> None:
    run_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ref30")
    if not (run_dir / "metrics.om").exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator.cli",
                "run",
                str(REPO / "scenarios/reference-30d.yaml"),
                "--out",
                str(run_dir),
                "--openmetrics",
            ],
            check=True,
            cwd=REPO,
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed = REPO / "monitoring/seed/alerting-rules.yml"
        gen = work / "slo-rules.yml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sloanalysis.cli",
                "generate-rules",
                str(REPO / "slos/tron-payment.yaml"),
                "--out",
                str(gen),
            ],
            check=True,
            cwd=REPO,
        )
        t = time.perf_counter()
        run = load_run(run_dir)
        groups = load_rules(seed) + load_rules(gen)
        lo, hi = run.store.time_range()  # type: ignore[misc]
        start_s, end_s = lo // 1000 + 60, hi // 1000
        ev = evaluate_rules(
            groups, run.store, start_s * 1000, end_s * 1000, default_interval_ms=15_000, prometheus2=True
        )
        embedded = time.perf_counter() - t
        n_rules = sum(len(g.rules) for g in groups)
        print(
            f"embedded: {embedded:.1f} s for {n_rules} rules, {len(ev.alerts)} alert activations", flush=True
        )
        blocks = backfill(run_dir / "metrics.om", work / "blocks")
        cap = float(sys.argv[2]) if len(sys.argv) > 2 else 3600.0
        with running_prometheus(blocks) as url:
            t = time.perf_counter()
            cmd = [
                PROMTOOL,
                "tsdb",
                "create-blocks-from",
                "rules",
                f"--url={url}",
                f"--start={start_s}",
                f"--end={end_s}",
                "--eval-interval=15s",
                f"--output-dir={work / 'out'}",
                "--quiet",
                str(seed),
                str(gen),
            ]
            try:
                subprocess.run(cmd, check=True, capture_output=True, timeout=cap)
                finished = True
            except subprocess.TimeoutExpired:
                finished = False
            baseline = time.perf_counter() - t
        bound = "" if finished else ">= "
        print(
            f"promtool create-blocks-from rules (real Prometheus 2.42): {bound}{baseline:.1f} s"
            + ("" if finished else f" (stopped at the {cap:.0f} s cap)")
        )
        print(f"ratio: {bound}{baseline / embedded:.1f}x (goal >= 10x)", flush=True)


if __name__ == "__main__":
    main()
