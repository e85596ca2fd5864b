"""Simulator throughput against bare SimPy with the same arrival and process structure.

Baseline (measured in the same run): the scenario's arrival streams with the same rates, one
SimPy process per request yielding the same number of timeouts as the model's typical path
(one for a status poll; worker wait, balance check, broadcast, two polls and the database
writes for a payout), and a scrape process waking every scrape interval: timeouts only, no
service logic, no metrics. Reported: wall seconds, simulated requests per wall second, and the
ratio of the full model to the baseline (goal >= 0.5).

    python benchmarks/bench_simulator.py [SCENARIO ...]   (default: scenarios/reference.yaml)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import simpy

from simulator.model import simulate
from simulator.scenario import Scenario, load_scenario
from simulator.workload import RATE_STEP, burst_windows, rate_multipliers

ROOT = Path(__file__).resolve().parents[1]


def bare_simpy(scenario: Scenario) -> tuple[float, int]:
    """(wall seconds, requests) of the structural baseline."""
    rng = np.random.default_rng(scenario.seed)
    mult = rate_multipliers(scenario, burst_windows(scenario.load, scenario.duration, rng))
    env = simpy.Environment()
    load = scenario.load
    count = [0]
    gaps = rng.standard_exponential(1 << 20).tolist()
    service = rng.lognormal(np.log(0.004), 0.6, 1 << 20).tolist()

    def draw(pool: list[float]) -> float:
        return pool.pop() if pool else 1.0

    def poll(env: simpy.Environment):  # type: ignore[no-untyped-def]
        yield env.timeout(draw(service))

    def payout(env: simpy.Environment):  # type: ignore[no-untyped-def]
        for delay in (0.004, 0.12, 0.25, 3.1, 3.1, 0.004):
            yield env.timeout(delay)

    def arrivals(env: simpy.Environment, rate: float, body):  # type: ignore[no-untyped-def]
        while env.now < scenario.duration:
            r = rate * float(mult[min(int(env.now // RATE_STEP), len(mult) - 1)])
            yield env.timeout(draw(gaps) / r)
            count[0] += 1
            env.process(body(env))

    def scrapes(env: simpy.Environment):  # type: ignore[no-untyped-def]
        while True:
            yield env.timeout(scenario.scrape_interval)

    env.process(arrivals(env, load.api_rate - load.payout_rate, poll))
    env.process(arrivals(env, load.payout_rate, payout))
    env.process(scrapes(env))
    t = time.perf_counter()
    env.run(until=scenario.duration)
    return time.perf_counter() - t, count[0]


def main(paths: list[str], repeats: int = 2) -> int:
    scenarios = [load_scenario(p) for p in (paths or [str(ROOT / "scenarios" / "reference.yaml")])]
    print(
        f"{'scenario':<16} {'model s':>8} {'model req/s':>12} {'bare s':>8} {'bare req/s':>11} {'ratio':>6}"
    )
    for sc in scenarios:
        # Interleave and keep the best of each, so load from other processes hits both alike.
        base_wall, wall = float("inf"), float("inf")
        for _ in range(repeats):
            b, base_requests = bare_simpy(sc)
            base_wall = min(base_wall, b)
            t = time.perf_counter()
            result = simulate(sc)
            wall = min(wall, time.perf_counter() - t)
        requests = result.stats["requests_arrived"]
        ratio = (requests / wall) / (base_requests / base_wall)
        print(
            f"{sc.name:<16} {wall:8.2f} {requests / wall:12,.0f} {base_wall:8.2f} "
            f"{base_requests / base_wall:11,.0f} {ratio:6.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
