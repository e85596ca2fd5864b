"""Virtual Prometheus scrapes of the simulated service into a series store.

Every ``scrape_interval`` (at ``scrape_offset`` past each interval boundary of the run) the scraper
refreshes the gauges the service computes at scrape time, reads every sample of the service's
current registry, and writes ``up``. While the service is down the scrape fails: ``up`` is 0, and
as in Prometheus every series of the last successful scrape gets a stale marker at the first
failed scrape and no samples after it. Target labels ``job`` and ``instance`` are attached.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
import simpy

from simulator.metrics import Snapshot
from simulator.randomness import Draws
from simulator.service import PayoutService, Process
from sloanalysis.store import STALE_NAN, SeriesStore

MB = 1024.0 * 1024.0


class Scraper:
    def __init__(self, env: simpy.Environment, service: PayoutService, draws: Draws) -> None:
        self.env = env
        self.service = service
        self.draws = draws
        sc = service.scenario
        self.interval = sc.scrape_interval
        first = sc.scrape_offset
        self.n = max(0, math.floor((sc.duration - first) / self.interval) + 1)
        self.times_ms = sc.start_ms + np.round((first + np.arange(self.n) * self.interval) * 1000).astype(
            np.int64
        )
        self.labels = list(service.metrics.snapshot.labels)
        self._raw = np.zeros((self.n, len(self.labels)), dtype=np.float64)
        self._present = np.zeros(self.n, dtype=bool)
        self._stale = np.zeros(self.n, dtype=bool)
        self._up = np.zeros(self.n, dtype=np.float64)
        self._finishers: list[tuple[int, Snapshot]] = []  # (first row, snapshot of that process)
        self.gauges = ProcessGauges(env, service, draws)
        self._was_up = False
        self.before_scrape: list[Callable[[int], None]] = []  # called with the scrape's index

    def run(self) -> Process:
        sc = self.service.scenario
        yield self.env.timeout(sc.scrape_offset)
        for k in range(self.n):
            if k:
                yield self.env.timeout(self.interval)
            self._scrape(k)

    def _scrape(self, k: int) -> None:
        svc = self.service
        for hook in self.before_scrape:
            hook(k)
        self.refresh_process_gauges()
        if svc.down:
            self._up[k] = 0.0
            self._stale[k] = self._was_up
            self._was_up = False
            return
        snapshot = svc.metrics.snapshot
        if not self._finishers or self._finishers[-1][1] is not snapshot:
            if snapshot.labels != self.labels:
                raise AssertionError("the restarted process exposes a different set of series")
            self._finishers.append((k, snapshot))
        self._raw[k] = snapshot.read()
        self._present[k] = True
        self._up[k] = 1.0
        self._was_up = True

    def refresh_process_gauges(self) -> None:
        self.gauges.refresh()

    def add_running_totals(self, columns: list[int], increments: np.ndarray) -> np.ndarray:
        """Add updates made outside the registry (``increments``: scrapes x ``columns``, raw cell
        values) to the scraped values as running totals per process (a restart starts from zero);
        return the last process's totals."""
        bounds = [row for row, _ in self._finishers] + [self.n]
        totals = np.zeros(len(columns))
        for first, last in itertools.pairwise(bounds):
            running = np.cumsum(increments[first:last], axis=0)
            self._raw[first:last, columns] += running * self._present[first:last, None]
            totals = running[-1]
        return totals

    def to_store(self, job: str, instance: str) -> SeriesStore:
        """All scraped series, with target labels, as a series store."""
        values = np.zeros_like(self._raw)
        bounds = [row for row, _ in self._finishers] + [self.n]
        for (first, snapshot), last in zip(self._finishers, bounds[1:], strict=True):
            values[first:last] = snapshot.finish(self._raw[first:last])
        rows = self._present | self._stale
        values[self._stale] = STALE_NAN
        ts = self.times_ms[rows]
        store = SeriesStore()
        target = (("instance", instance), ("job", job))
        for col, labels in enumerate(self.labels):
            store.add(tuple(sorted(labels + target)), ts, values[rows, col])
        store.add((("__name__", "up"), *target), self.times_ms, self._up)
        return store


class ProcessGauges:
    """The gauges the service sets at scrape time (the seed updates system metrics per scrape):
    memory (a random walk plus in-flight work and any leak), CPU, disk, limit usage, payout counts,
    database connections; and a breaker tick. The simulation's :class:`Scraper` and live mode's
    ``/metrics`` handler both call :meth:`refresh` before reading the registry."""

    def __init__(self, env: simpy.Environment, service: PayoutService, draws: Draws) -> None:
        self.env = env
        self.service = service
        self.draws = draws
        self.memory_noise_mb = 0.0
        self.leak_mb = 0.0
        self._last_at = env.now

    def refresh(self) -> None:
        svc, m, c = self.service, self.service.metrics, self.service.conditions
        p = svc.cfg.process
        now = self.env.now
        dt = max(1e-9, now - self._last_at)
        self._last_at = now
        if c.leak_mb_per_hour > 0:
            self.leak_mb += c.leak_mb_per_hour * dt / 3600.0
        else:
            self.leak_mb = 0.0  # the leak ends with the fix and its restart
        if svc.down:
            self.leak_mb = 0.0
            svc.requests_since_scrape = 0
            return
        # Memory: a slow random walk around the base, plus in-flight work and any leak.
        self.memory_noise_mb = 0.98 * self.memory_noise_mb + self.draws.normal() * 2.0
        inflight = svc.active_requests + svc.batch_in_flight + len(svc.pending)
        memory_mb = (
            p.memory_base_mb + p.memory_per_inflight_mb * inflight + self.leak_mb + self.memory_noise_mb
        )
        m.memory_usage_bytes.set(round(max(1.0, memory_mb) * MB))
        rps = svc.requests_since_scrape / dt
        svc.requests_since_scrape = 0
        cpu = p.cpu_base_percent + p.cpu_percent_per_rps * rps + self.draws.normal() * 0.8
        cpu = max(cpu, c.cpu_floor + self.draws.normal() * 1.5) if c.cpu_floor else cpu
        m.cpu_usage_percent.set(round(min(100.0, max(0.0, cpu)), 2))
        epoch = svc.epoch()
        seconds_today = epoch % 86400.0  # logs rotate (and compress) daily
        avg_rps = svc.scenario.load.api_rate
        m.disk_usage_bytes.set(round(p.disk_base_bytes + p.disk_bytes_per_request * avg_rps * seconds_today))
        daily, hourly = svc.limits.usage(epoch)
        m.daily_limit_usage_usdt.set(round(daily, 2))
        m.hourly_limit_usage_usdt.set(round(hourly, 2))
        m.pending_payouts_count.set(len(svc.pending))
        m.confirmed_payouts_count.set(svc.confirmed_total)
        m.failed_payouts_count.set(svc.failed_total)
        m.database_connections_active.set(svc.db.in_use + svc.batch_in_flight)
        svc.tick_breaker()
