"""Monte Carlo alert validation: replications per minute on 2 local workers and on a Dask cluster.

200 replications of one simulated day with one credential-stuffing incident each
(scenarios/families/credential-stuffing.yaml stretched to one day), the smoke scenario's service
at 1 request/s scraped every 30 s, two rule files (monitoring/rules/tron-payment.yml and
slo-generated.yml) evaluated every minute. Three ways, each into a fresh directory: the baseline,
a few replications in this process (one core); 2 local worker processes; a Dask LocalCluster of
two single-threaded worker processes on 127.0.0.1. Reported: wall time, replications per minute,
and the speed-up of each over the one-core baseline (measured just before it, under the same
load). The machine may be shared: the load average is printed (a speed-up of 2 needs two idle
cores).

    python benchmarks/bench_alert_validation.py [-n 200] [--baseline 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from simulator.capacity.executors import DaskExecutor, Executor, LocalExecutor
from simulator.scenario import load_scenario, with_overrides
from simulator.validation.family import load_family
from simulator.validation.run import Validation, run_validation
from sloanalysis.rules.backtest import EvalSettings
from sloanalysis.rules.model import load_rule_files

ROOT = Path(__file__).resolve().parents[1]
RULES = [
    ROOT / "monitoring" / "rules" / "tron-payment.yml",
    ROOT / "monitoring" / "rules" / "slo-generated.yml",
]


def validation(n: int) -> Validation:
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    load = scenario.load.model_copy(update={"api_rate": 1.0, "payout_rate": 0.02})
    scenario = with_overrides(scenario, load=load.model_dump(), scrape_interval=30.0, incidents=[])
    family = load_family(ROOT / "scenarios" / "families" / "credential-stuffing.yaml")
    family = family.model_copy(update={"length": 86_400.0, "quiet": 8 * 3600.0})
    return Validation(tuple(load_rule_files(RULES)), scenario, family, n, 1, EvalSettings(60_000))


def timed(v: Validation, make_executor: Callable[[], Executor]) -> float:
    """Wall seconds of the validation into a fresh directory (workers warm before the clock runs)."""
    with tempfile.TemporaryDirectory() as tmp:
        executor = make_executor()
        try:
            list(executor.map_unordered(abs, [1, 2]))
            start = time.perf_counter()
            run_validation(v, Path(tmp) / "out", executor)
            return time.perf_counter() - start
        finally:
            executor.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="replications (200)")
    parser.add_argument("--baseline", type=int, default=4, help="replications of the one-core baseline (4)")
    args = parser.parse_args()
    from distributed import LocalCluster

    v = validation(args.n)
    small = validation(args.baseline)
    load_before = os.getloadavg()[0]
    rows = []
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        ways: dict[str, Callable[[], Executor]] = {
            "2 local workers": lambda: LocalExecutor(2, preload=["simulator.validation.replication"]),
            "Dask, 2 workers": lambda: DaskExecutor(cluster.scheduler_address, timeout=30),
        }
        for name, make in ways.items():
            # The baseline is measured right before each way, so both see the same machine load.
            base = timed(small, lambda: LocalExecutor(1))
            wall = timed(v, make)
            rows.append((name, base, wall))
    print(
        f"{'executor':<18} {'reps':>5} {'wall s':>8} {'reps/min':>9} {'1-core reps/min':>16} {'speed-up':>9}"
    )
    for name, base, wall in rows:
        serial = args.baseline / base * 60
        rate = args.n / wall * 60
        print(f"{name:<18} {args.n:5d} {wall:8.2f} {rate:9.1f} {serial:16.1f} {rate / serial:8.2f}x")
    print(
        f"one simulated day per replication, 2 rule files; baseline: {args.baseline} replications in this "
        f"process before each way; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
