"""Assembles one simulation: the environment, arrivals, incidents, the service and its scrapes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
import simpy

from simulator.batch import MODES, RequestBatcher
from simulator.events import EventLog
from simulator.metrics import collect_samples
from simulator.network import TronNetwork
from simulator.randomness import Draws
from simulator.scenario import Scenario, incident_window
from simulator.scrape import Scraper
from simulator.service import PAYOUT_STATUS, PayoutService, Process
from simulator.workload import RATE_STEP, burst_windows, halt_windows, incident_timeline, rate_multipliers
from sloanalysis.store import SeriesStore


@dataclass
class SimulationResult:
    scenario: Scenario
    store: SeriesStore
    incidents: list[dict[str, Any]]
    stats: dict[str, int]
    breaker_seconds: dict[str, float]
    transitions: list[dict[str, Any]]
    simpy_events: int
    wall_seconds: float
    final_samples: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    payouts: PayoutRecords | None = None


@dataclass(frozen=True)
class PayoutRecords:
    """One entry per payout, in order of reaching its final state (pending ones last).

    ``submitted``: seconds from the run start; ``queue_wait``: seconds waiting for a payout worker
    (NaN if it never asked for one, e.g. rejected at submission; for a payout still queued at the
    end, the wait so far); ``processing``: seconds from submission to the final state (for a
    pending payout, its age at the end: a lower bound); ``status``: codes of ``PAYOUT_STATUS``.
    """

    submitted: np.ndarray
    queue_wait: np.ndarray
    processing: np.ndarray
    status: np.ndarray


def _payout_records(service: PayoutService, end: float) -> PayoutRecords:
    rows = list(service.payout_log or [])
    pending = PAYOUT_STATUS["pending"]
    for p in sorted(service.pending.values(), key=lambda p: p.id):
        if p.started >= 0:
            wait = p.started - p.queued
        else:
            wait = end - p.queued if p.queued >= 0 else math.nan
        rows.append((p.submitted, wait, end - p.submitted, pending))
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return PayoutRecords(
        table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), table[:, 3].astype(np.int8)
    )


def arrivals(
    env: simpy.Environment,
    rate_at: Callable[[float], float],
    change_points: list[float],
    draws: Draws,
    on_arrival: Callable[[], None],
) -> Process:
    """Non-homogeneous Poisson arrivals with a piecewise-constant rate.

    The rate is constant between consecutive change points (minute steps and incident edges);
    an exponential gap that crosses a change point is discarded and drawn again from the point
    with the new rate, which is exact because the process is memoryless.
    """
    exponential = draws.exponential
    for boundary in change_points:
        rate = rate_at(env.now)
        if rate <= 0:
            yield env.timeout(boundary - env.now)
            continue
        mean = 1.0 / rate
        while True:
            gap = exponential(mean)
            if env.now + gap >= boundary:
                yield env.timeout(boundary - env.now)
                break
            yield env.timeout(gap)
            on_arrival()


def simulate(
    scenario: Scenario,
    *,
    log_stream: IO[str] | None = None,
    progress: Callable[[float], None] | None = None,
    collect_payouts: bool = False,
    mode: str = "batch",
) -> SimulationResult:
    """Run ``scenario`` to its end; ``progress`` receives simulated seconds every simulated hour.

    ``collect_payouts`` also returns per-payout records (:class:`PayoutRecords`); it draws no
    random numbers, so the metrics are the same with or without it. ``mode``: "batch" draws the
    uncontended request stream in batches (:mod:`simulator.batch`), "events" makes every request
    a SimPy process; the two are equal in distribution, not draw for draw.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    wall = time.perf_counter()
    rng = np.random.default_rng(scenario.seed)
    draws = Draws(rng)
    env = simpy.Environment()
    log = EventLog(log_stream) if log_stream is not None else None
    network = TronNetwork(scenario.network, draws, scenario.start.timestamp(), halt_windows(scenario))
    service = PayoutService(env, scenario, draws, network, log)
    scraper = Scraper(env, service, draws)
    if collect_payouts:
        service.payout_log = []

    batch = mode == "batch" and scenario.network.mode != "mmc"
    scraping, batcher = _start_processes(env, scenario, service, scraper, draws, rng, progress, batch=batch)
    # Stop right after the last scrape, so the last samples are the registry's final values.
    env.run(until=scraping)
    if batcher is not None:
        batcher.finish(scraper)
    service.close_accounting()
    if progress is not None:
        progress(scenario.duration)

    store = scraper.to_store(scenario.job, scenario.instance)
    incidents = _incident_rows(scenario)
    return SimulationResult(
        scenario=scenario,
        store=store,
        incidents=incidents,
        stats=dict(sorted((f"http_{k}" if isinstance(k, int) else k, v) for k, v in service.stats.items())),
        breaker_seconds={k: float(v) for k, v in sorted(service.breaker_seconds.items())},
        transitions=[
            {"epoch": t.at, "from": t.old.label, "to": t.new.label, "reason": t.reason}
            for t in service.transitions
        ],
        simpy_events=next(env._eid),  # events scheduled so far (private counter)
        wall_seconds=time.perf_counter() - wall,
        final_samples=collect_samples(service.metrics.registry) if not service.down else {},
        payouts=_payout_records(service, env.now) if collect_payouts else None,
    )


def _start_processes(
    env: simpy.Environment,
    scenario: Scenario,
    service: PayoutService,
    scraper: Scraper,
    draws: Draws,
    rng: np.random.Generator,
    progress: Callable[[float], None] | None,
    *,
    batch: bool = False,
) -> tuple[simpy.Process, RequestBatcher | None]:
    """Start the incident driver, the four arrival streams (or the batcher that draws them), the
    scraper and the progress clock, in this order (creation order fixes SimPy's tie-breaking, so it
    is part of the determinism); return the scraper's process, whose end ends the run, and the
    batcher (None when every request is a SimPy process)."""
    bursts = burst_windows(scenario.load, scenario.duration, rng)
    multipliers = rate_multipliers(scenario, bursts)
    timeline = incident_timeline(scenario)
    edges = [e.at for e in timeline]
    steps = [k * RATE_STEP for k in range(1, len(multipliers))]
    change_points = sorted(set(steps) | {e for e in edges if e > 0} | {scenario.duration})
    load = scenario.load

    def multiplier(t: float) -> float:
        return float(multipliers[min(int(t // RATE_STEP), len(multipliers) - 1)])

    def poll_rate(t: float) -> float:
        return (load.api_rate - load.payout_rate) * multiplier(t)

    def payout_rate(t: float) -> float:
        return load.payout_rate * multiplier(t) * service.conditions.payout_rate_factor

    def incident_driver(env: simpy.Environment) -> Process:
        for entry in timeline:
            yield env.timeout(entry.at - env.now)
            service.set_conditions(entry.conditions)

    def clock(env: simpy.Environment) -> Process:
        while env.now + 3600.0 < scenario.duration:
            yield env.timeout(3600.0)
            if progress is not None:
                progress(env.now)

    env.process(incident_driver(env))
    if batch:
        first = scenario.scrape_offset
        scrape_times = first + np.arange(scraper.n) * scenario.scrape_interval
        batcher = RequestBatcher(env, scenario, service, rng, multipliers, timeline, scrape_times)
        scraper.before_scrape.append(batcher.before_scrape)
        env.process(batcher.run())
        return _start_scraper(env, scraper, clock if progress is not None else None), batcher
    env.process(arrivals(env, poll_rate, change_points, draws, lambda: service.arrive("poll")))
    payout_arrival = (
        service.arrive_mmc if scenario.network.mode == "mmc" else lambda: service.arrive("payout")
    )
    env.process(arrivals(env, payout_rate, change_points, draws, payout_arrival))
    env.process(
        arrivals(
            env,
            lambda t: service.conditions.stuffing_rate,
            change_points,
            draws,
            lambda: service.arrive("payout", bad_key=True),
        )
    )
    env.process(
        arrivals(
            env,
            lambda t: service.conditions.flood_rate,
            change_points,
            draws,
            lambda: service.arrive("poll", flood_role=service.conditions.flood_role),
        )
    )
    return _start_scraper(env, scraper, clock if progress is not None else None), None


def _start_scraper(
    env: simpy.Environment,
    scraper: Scraper,
    clock: Callable[[simpy.Environment], Process] | None,
) -> simpy.Process:
    scraping = env.process(scraper.run())
    if clock is not None:
        env.process(clock(env))
    return scraping


def _incident_rows(scenario: Scenario) -> list[dict[str, Any]]:
    """The ground truth of the run: each incident's id, kind, window (epoch ms) and expected alerts."""
    rows = []
    for i, inc in enumerate(scenario.incidents):
        begin, end = incident_window(scenario, inc)
        rows.append(
            {
                "id": inc.id or f"{inc.kind}-{i + 1}",
                "kind": inc.kind,
                "start_ms": scenario.start_ms + round(begin * 1000),
                "end_ms": scenario.start_ms + round(end * 1000),
                "expected_alerts": list(inc.expected_alerts),
                "params": dict(inc.params),
            }
        )
    return rows
