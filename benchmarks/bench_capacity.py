"""Capacity sweeps: points per minute on one core, local speed-up, Dask overhead per point.

One sweep (the smoke scenario without incidents, 8 points x 2 replications of 6 simulated hours)
runs three ways, each into a fresh directory: in this process (one core), on two local worker
processes, and on a Dask LocalCluster of two single-threaded worker processes on 127.0.0.1.
Reported: points per minute on one core; the speed-up of two local workers over one (goal >= 1.8),
with and without the pool's start-up; the Dask executor's extra wall time per point over two
warm local workers (cluster start-up excluded: the cluster exists before a sweep is sent to it). The machine
may be shared: the best of ``repeats`` interleaved runs is kept for each way, and the load average
is printed (a speed-up needs two idle cores; with other work running it measures the contention).

    python benchmarks/bench_capacity.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from simulator.capacity import DaskExecutor, LocalExecutor, load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]
SWEEP = f"""
name: bench
scenario: {ROOT / "scenarios" / "smoke.yaml"}
duration: 6h
seed: 1
replications: 2
set:
  incidents: []
  service.hourly_limit: 1.0e9
  service.daily_limit: 1.0e9
grid:
  load.payout_rate: [0.2, 0.5, 0.8, 1.1]
  service.payout_workers: [4, 8]
"""


def timed(sweep, executor_factory, *, warm: bool = False) -> float:  # type: ignore[no-untyped-def]
    """Wall seconds of the sweep; ``warm``: workers are started before the clock runs."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        executor = executor_factory()
        try:
            if warm:
                list(executor.map_unordered(abs, [1, 2]))
                start = time.perf_counter()
            run_sweep(sweep, Path(tmp) / "out", executor, plot=False)
            return time.perf_counter() - start
        finally:
            executor.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(SWEEP, encoding="utf-8")
        sweep = load_sweep(path)
    n = len(sweep.points)
    from distributed import LocalCluster

    def local2() -> LocalExecutor:
        return LocalExecutor(2, preload=["simulator.capacity.run"])

    ways = {
        "1 core (in process)": lambda: timed(sweep, lambda: LocalExecutor(1)),
        "2 local, cold pool": lambda: timed(sweep, local2),
        "2 local, warm pool": lambda: timed(sweep, local2, warm=True),
        "Dask, 2 workers": lambda: timed(sweep, lambda: DaskExecutor(cluster.scheduler_address), warm=True),
    }
    best = dict.fromkeys(ways, float("inf"))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        for _ in range(args.repeats):  # interleaved, so load from other processes hits all alike
            for name, run in ways.items():
                best[name] = min(best[name], run())
    print(f"{'executor':<22} {'wall s':>7} {'points/min':>10}")
    for name, wall in best.items():
        print(f"{name:<22} {wall:7.2f} {n / wall * 60:10.1f}")
    one, cold, warm, dask = best.values()
    print(f"points: {n} x {sweep.spec.replications} replications; load average {os.getloadavg()[0]:.1f}")
    print(f"speed-up, 2 local workers vs 1: {one / cold:.2f}x with pool start-up, {one / warm:.2f}x without")
    print(f"Dask overhead per point vs 2 warm local workers: {(dask - warm) / n * 1000:+.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
