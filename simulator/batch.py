"""Batch simulation of the API request stream, and where it stops being exact.

Every API request used to be a SimPy process. Most of them are coupled to nothing but the
per-client rate limiter and the service's conditions (incidents, crash), which change far more
slowly than requests arrive. ``simulate(..., mode="batch")`` (the default; ``mode="events"``
and ``tronsim run --simulation events`` keep the old event-by-event run) therefore draws the
request stream chunk by chunk (at most :data:`CHUNK_SECONDS`, never across a change of the
incident conditions, so conditions are constant inside a chunk) with numpy, and hands to SimPy
only what contends for a queue.

Where the line is:

* Arrivals (status polls, payout submissions, credential stuffing, client flood): the four
  streams as one Poisson process with their summed rate (piecewise constant over the one-minute
  rate steps), each arrival in a stream with probability proportional to its rate: the same
  non-homogeneous Poisson processes the event-by-event arrival processes produce (superposition
  and thinning; exact in distribution, the random numbers differ). Arrivals while the service is
  down are counted as lost, as before.
* Authentication (401/403) and role/client choice: independent per request, vectorised (exact).
* Rate limiting (429): one token bucket per client, computed exactly in closed form. With
  ``y_i = r t_i - i`` the tokens a client's i-th request finds, when no earlier one was refused,
  are ``min(T0 - (i-1) + r (t_i - t_1), b + y_i - max_{j<i} y_j)`` (``T0``: the bucket at the first
  request, ``b`` the burst, ``r`` the rate): a segmented running maximum. From a client's first
  refusal on, its requests in the chunk go through the bucket one by one (a client at its limit
  is simulated request by request). The decisions equal :class:`simulator.ratelimit.RateLimiter`'s
  up to floating-point rounding of the token count (below 1e-6 tokens); the batch sees every
  stream, payouts included, in time order, so the buckets are shared exactly as before.
* Status polls: one database read (pool wait, database time, time-out), then the handler time.
  When no queue forms they are batched: database and handler times are drawn vectorised, the
  answer is recorded at the read's completion (handler factor of that instant), and a poll whose
  read is still running when the service crashes is lost in flight. The database pool is the one
  queue polls share with payouts; a chunk is batched only if the probability that a request finds
  all ``db_pool`` connections busy is below :data:`CONTENTION_TOLERANCE` (M/G/infinity occupancy
  is Poisson with mean ``rate x mean database time``, and Poisson arrivals see time averages);
  otherwise (a database slowdown, for instance), and whenever the pool still has a queue when
  the chunk starts (the backlog of a slowdown outlives it), its polls run event by event through
  ``PayoutService._serve_poll``. So batched polls differ from the event model only by a queue wait
  whose probability is below 1e-6 per request.
* Payouts that pass authentication and rate limiting run event by event as before (payout
  workers, database pool, breaker and its probes, limits, TRON calls): they are the requests that
  contend, and there are few of them.
* Metrics: the batch's counter and histogram updates are binned by the scrape that first sees them
  (:class:`ScrapeBook`) and, when the run ends, added to the scraped values as running totals per
  process and to the last process's registry (:meth:`RequestBatcher.finish`), so every scrape and
  the final registry hold exactly what per-request updates would have left (histogram buckets by
  the same ``bisect_left`` rule as ``observe``; sums rounded in a different order). Nothing reads
  these counters during a run. Updates whose scrape comes after a crash are dropped with the
  crashed process's registry. The polls in flight at a scrape count in the memory and
  database-connection gauges (``PayoutService.batch_in_flight``), and arrivals in the CPU gauge,
  as before.
* With an event log (``--logs``), the security events of batched requests are emitted at their
  times. ``network.mode: mmc`` always runs event by event.

``tests/test_batch_equivalence.py`` runs a scenario both ways with a fixed seed and compares
per-scrape increments (paired by scrape: mean difference within four standard errors and 3 %)
and histogram bucket shares (chi-square p > 0.001, shares within 0.01), and checks the token
buckets against :class:`~simulator.ratelimit.RateLimiter` decision by decision.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from simulator.metrics import (
    AUTH_FAILURES,
    DATABASE_BUCKETS,
    ENDPOINTS,
    SLO_REQUEST_BUCKETS,
    USER_TYPES,
    PayoutMetrics,
)
from simulator.scenario import ROLES, Scenario
from simulator.scrape import Scraper
from simulator.service import PayoutService, Process
from simulator.workload import RATE_STEP, Conditions, TimelineEntry

MODES = ("batch", "events")
"""``simulate``'s ``mode`` values: batch (default) or every request a SimPy process."""
CHUNK_SECONDS = 3600.0
"""Longest stretch drawn at once (bounds memory; conditions never change inside a chunk)."""
CONTENTION_TOLERANCE = 1e-6
"""Largest probability that a request finds the database pool full for polls to be batched."""

POLL, PAYOUT, STUFFING, FLOOD = 0, 1, 2, 3  # request streams
_PAYOUT_ENDPOINT, _POLL_ENDPOINT = 0, 1  # indexes into metrics.ENDPOINTS
assert ENDPOINTS[_PAYOUT_ENDPOINT] == "/api/payment/payouts" and USER_TYPES == ROLES

# Columns of a scrape's row: metric increments first (in :func:`metric_cells` order), then
# arrivals (the CPU gauge) and polls in flight at the scrape (memory and connection gauges).
_REQ_BUCKETS = len(SLO_REQUEST_BUCKETS) + 1
_DB_BUCKETS = len(DATABASE_BUCKETS) + 1
C_TOTAL, C_OK, C_REQ = 0, 1, 2
C_REQ_SUM = C_REQ + _REQ_BUCKETS
C_DB = C_REQ_SUM + 1
C_DB_SUM = C_DB + _DB_BUCKETS
C_AUTH = C_DB_SUM + 1
C_RATE_LIMITED = C_AUTH + len(AUTH_FAILURES)
N_METRIC = C_RATE_LIMITED + len(ENDPOINTS) * len(USER_TYPES)
C_ARRIVALS = N_METRIC
C_IN_FLIGHT = N_METRIC + 1
N_COLUMNS = N_METRIC + 2


def metric_cells(m: PayoutMetrics) -> list[Any]:
    """prometheus_client value cells (``_value`` holds the number) in column order."""
    req = m.slo_request_duration_seconds
    find = m.database_operations_duration_seconds.labels("find")
    cells: list[Any] = [m.slo_total_requests._value, m.slo_successful_requests._value]
    cells += [*req._buckets, req._sum, *find._buckets, find._sum]
    cells += [m.authentication_failures_total.labels(f)._value for f in AUTH_FAILURES]
    cells += [m.rate_limit_violations_total.labels(e, u)._value for e in ENDPOINTS for u in USER_TYPES]
    assert len(cells) == N_METRIC
    return cells


class ScrapeBook:
    """Per-scrape rows: what each scrape sees of the batch (columns ``C_*``)."""

    def __init__(self, scrapes: int) -> None:
        self.rows = np.zeros((scrapes, N_COLUMNS))

    def add(
        self,
        k: np.ndarray,
        col: int,
        *,
        weight: np.ndarray | None = None,
        index: np.ndarray | None = None,
        width: int = 1,
    ) -> None:
        """Add one (or ``weight``) per element to scrape ``k``'s column ``col``, or to column
        ``col + index`` of ``width`` columns."""
        if not k.size:
            return
        lo, hi = int(k.min()), int(k.max())
        flat = k - lo if index is None else (k - lo) * width + index
        sums = np.bincount(flat, weights=weight, minlength=(hi - lo + 1) * width)
        self.rows[lo : hi + 1, col : col + width] += sums.reshape(-1, width)


@dataclass(frozen=True)
class Chunk:
    start: float
    end: float
    conditions: Conditions


def chunks(timeline: list[TimelineEntry], until: float) -> Iterator[Chunk]:
    """Stretches of constant conditions, at most ``CHUNK_SECONDS`` long, covering ``[0, until)``."""
    ends = [e.at for e in timeline[1:]] + [until]
    for entry, end in zip(timeline, ends, strict=True):
        end = min(end, until)
        if end <= entry.at:
            continue
        n = max(1, math.ceil((end - entry.at) / CHUNK_SECONDS))
        edges = np.linspace(entry.at, end, n + 1)
        for a, b in itertools.pairwise(edges.tolist()):
            yield Chunk(a, b, entry.conditions)


def bucket_index(bounds: np.ndarray, x: np.ndarray, *, inclusive: bool = True) -> np.ndarray:
    """Per element, how many ``bounds`` lie below it: the histogram bucket ``observe`` picks (the
    first bound >= x, ``bisect_left``); with ``inclusive=False`` the first bound > x. A few
    comparisons beat a binary search for a handful of bounds."""
    out = np.zeros(x.size, dtype=np.int64)
    for bound in bounds.tolist():
        out += x > bound if inclusive else x >= bound
    return out


def allowed_mask(n: int, authed: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Over all ``n`` requests: authenticated (indexes ``authed``) and let through (``allowed``)."""
    out = np.zeros(n, dtype=bool)
    out[authed[allowed]] = True
    return out


def poisson_tail(mean: float, k: int) -> float:
    """P(N >= k) for N ~ Poisson(mean)."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    term = math.exp(-mean)
    below = 0.0
    for i in range(k):
        below += term
        term *= mean / (i + 1)
    return max(0.0, 1.0 - below)


def token_buckets(
    t: np.ndarray,
    key: np.ndarray,
    rate: np.ndarray,
    burst: np.ndarray,
    tokens: np.ndarray,
    last: np.ndarray,
) -> np.ndarray:
    """Which requests (times ``t``, ascending) their client's token bucket lets through.

    ``key`` names each request's bucket, ``rate``/``burst`` its parameters (per request);
    ``tokens``/``last`` (indexed by key) hold each bucket's state and are updated in place. Same
    decisions as :class:`simulator.ratelimit.RateLimiter` called once per request in time order.
    """
    n = t.size
    allowed = np.zeros(n, dtype=bool)
    if not n:
        return allowed
    order = np.argsort(key, kind="stable")  # grouped by bucket, in time order inside a group
    ks, ts, r, b = key[order], t[order], rate[order], burst[order]
    starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
    ends = np.r_[starts[1:], n]
    gid = np.repeat(np.arange(starts.size), ends - starts)
    rank = np.arange(n) - starts[gid]
    gk = ks[starts]
    t0 = np.minimum(b[starts], tokens[gk] + r[starts] * (ts[starts] - last[gk]))
    rel = ts - ts[starts][gid]
    y = r * rel - rank
    span = float(y.max() - y.min()) + 1.0  # offsets make a running maximum restart per group
    running = np.maximum.accumulate(y + gid * span) - gid * span
    previous = np.empty(n)
    previous[1:] = running[:-1]
    previous[starts] = -np.inf
    found = np.minimum(t0[gid] - rank + r * rel, b + y - previous)
    ok = found >= 1.0
    # Buckets that never ran dry: the closed form of the tokens left after the last request.
    last_i = ends - 1
    left = np.minimum(
        t0 - (ends - starts) + r[last_i] * rel[last_i], b[last_i] - 1.0 + y[last_i] - running[last_i]
    )
    tokens[gk], last[gk] = left, ts[last_i]
    dry = np.flatnonzero(np.logical_and.reduceat(ok, starts) == 0)
    for g in dry.tolist():  # a client at its limit: request by request from its first refusal
        lo, hi = int(starts[g]), int(ends[g])
        first = lo + int(np.argmin(ok[lo:hi]))
        level, at = float(found[first]), float(ts[first])
        rate_g, burst_g = float(r[lo]), float(b[lo])
        ok[first:hi] = False
        for i in range(first + 1, hi):
            now = float(ts[i])
            level = min(burst_g, level + (now - at) * rate_g)
            at = now
            if level >= 1.0:
                level -= 1.0
                ok[i] = True
        tokens[gk[g]], last[gk[g]] = level, at
    allowed[order] = ok
    return allowed


class RequestBatcher:
    """Draws the request stream chunk by chunk, books what scrapes see, and hands to SimPy what
    contends (payouts; polls of chunks whose database pool could queue)."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        service: PayoutService,
        rng: np.random.Generator,
        multipliers: np.ndarray,
        timeline: list[TimelineEntry],
        scrape_times: np.ndarray,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.service = service
        self.rng = rng
        self.multipliers = multipliers
        self.timeline = timeline
        self.scrape_times = scrape_times
        self.book = ScrapeBook(scrape_times.size)
        self._edges = np.array([e.at for e in timeline])
        self._handler_factor = np.array([e.conditions.handler_factor for e in timeline])
        self._crashes = np.array(
            [
                e.at
                for i, e in enumerate(timeline)
                if e.conditions.down and (i == 0 or not timeline[i - 1].conditions.down)
            ]
        )
        load, cfg = scenario.load, scenario.service
        self._roles_cum = np.cumsum([load.role_mix.get(r, 0.0) for r in ROLES]) / sum(
            load.role_mix.get(r, 0.0) for r in ROLES
        )
        self._rate = np.array([cfg.rate_limits[r].rate for r in ROLES])
        self._burst = np.array([cfg.rate_limits[r].burst for r in ROLES])
        width = load.clients_per_role + 1  # client -1 is the flood's
        self._width = width
        self._tokens = np.repeat(self._burst, width)
        self._last = np.zeros(len(ROLES) * width)
        self._first_scrape = scenario.scrape_offset
        self._interval = scenario.scrape_interval
        self._req_bounds = np.array(SLO_REQUEST_BUCKETS)
        self._db_bounds = np.array(DATABASE_BUCKETS)

    # -- the scraper's hook ----------------------------------------------------------------------
    def before_scrape(self, k: int) -> None:
        """Give the scrape-time gauges the batch's arrivals and polls in flight (the registry's
        counters get the batch's updates at the end, :meth:`finish`)."""
        svc, row = self.service, self.book.rows[k]
        svc.requests_since_scrape += int(row[C_ARRIVALS])
        svc.batch_in_flight = int(row[C_IN_FLIGHT])

    def finish(self, scraper: Scraper) -> None:
        """Add the batch's counter and histogram updates to the scraped values, as running totals
        per process, and the last process's totals to its registry (unless it ended down)."""
        svc = self.service
        cells = metric_cells(svc.metrics)
        columns = [svc.metrics.snapshot.column(cell) for cell in cells]
        totals = scraper.add_running_totals(columns, self.book.rows[:, :N_METRIC])
        if not svc.down:
            for cell, total in zip(cells, totals.tolist(), strict=True):
                cell._value += total

    # -- the SimPy process -----------------------------------------------------------------------
    def run(self) -> Process:
        env = self.env
        # The run ends at its last scrape: nothing after it is ever seen.
        until = float(self.scrape_times[-1]) if self.scrape_times.size else self.scenario.duration
        for chunk in chunks(self.timeline, until):
            if chunk.start > env.now:
                yield env.timeout(chunk.start - env.now)
            for at, action in self._chunk(chunk):
                if at > env.now:
                    yield env.timeout(at - env.now)
                action()

    def _chunk(self, chunk: Chunk) -> list[tuple[float, Any]]:
        """Draw one chunk; return the (time, action) pairs SimPy must run, in time order."""
        t, kind = self._arrivals(chunk)
        svc, rng, c = self.service, self.rng, chunk.conditions
        svc.stats["requests_arrived"] += t.size
        if c.down:
            svc.stats["requests_lost_down"] += t.size
            return []
        load = self.scenario.load
        k = self._scrape_index(t)
        self.book.add(k[k < self.scrape_times.size], C_ARRIVALS)
        seen = self._seen(t, k)
        endpoint = (kind != PAYOUT) & (kind != STUFFING)  # 0: payout endpoint, 1: poll endpoint
        u = rng.random(t.size)
        unauthorized = (kind == STUFFING) | (u < load.unauthenticated_share)
        forbidden = ~unauthorized & (u < load.unauthenticated_share + load.forbidden_share)
        authed = np.flatnonzero(~unauthorized & ~forbidden)
        role, client = self._callers(kind[authed] == FLOOD, c.flood_role)
        key = (role * self._width + client + 1).astype(np.int16 if self._tokens.size < 32768 else np.int64)
        allowed = token_buckets(t[authed], key, self._rate[role], self._burst[role], self._tokens, self._last)
        # 401/403 and 429 answer at arrival: a fifth of a handler time.
        refused, refused_role = authed[~allowed], role[~allowed]
        for mask, col in ((unauthorized, C_AUTH), (forbidden, C_AUTH + 1)):
            self.book.add(k[mask & seen], col)
        self.book.add(
            k[refused][seen[refused]],
            C_RATE_LIMITED,
            index=(endpoint[refused] * len(ROLES) + refused_role)[seen[refused]],
            width=len(ENDPOINTS) * len(ROLES),
        )
        quick = np.flatnonzero(~allowed_mask(t.size, authed, allowed))
        status = np.where(unauthorized[quick], 401, np.where(forbidden[quick], 403, 429))
        self._record(k[quick], seen[quick], 0.2 * self._handler(quick.size) * c.handler_factor, status)
        passed = authed[allowed]
        polls = kind[passed] != PAYOUT
        payouts = ~polls
        actions: list[tuple[float, Any]] = [
            (at, _payout_action(svc, ROLES[r], cl))
            for at, r, cl in zip(
                t[passed[payouts]].tolist(),
                role[allowed][payouts].tolist(),
                client[allowed][payouts].tolist(),
                strict=True,
            )
        ]
        if self._contended(chunk):
            actions += [(at, _poll_action(svc)) for at in t[passed[polls]].tolist()]
        else:
            self._serve_polls(chunk, t[passed[polls]], k[passed[polls]])
        if svc.log is not None:
            actions += self._log_actions(
                t, unauthorized, forbidden, endpoint, refused, refused_role, client[~allowed]
            )
        svc.rate_limit_refusals += refused.size
        actions.sort(key=lambda a: a[0])
        return actions

    def _callers(self, flood: np.ndarray, flood_role: str) -> tuple[np.ndarray, np.ndarray]:
        """Role index and client of each authenticated request (the flood's client is -1)."""
        n = flood.size
        role = bucket_index(self._roles_cum[:-1], self.rng.random(n), inclusive=False)
        v = self.rng.random(n)
        client = (self.scenario.load.clients_per_role * v * v).astype(np.int64)
        if flood.any():
            role[flood] = ROLES.index(flood_role)
            client[flood] = -1
        return role, client

    def _arrivals(self, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
        """Arrival times (ascending) and streams of the chunk's four Poisson streams.

        The superposition is one Poisson process with the summed rate, each arrival belonging to
        a stream with probability proportional to its rate (exact). Its times come out sorted
        without sorting: the first N of N+1 cumulated exponentials, scaled to the integrated
        rate, are the order statistics of N uniforms, mapped back through the piecewise-linear
        integrated rate.
        """
        load, c, mult, rng = self.scenario.load, chunk.conditions, self.multipliers, self.rng
        first, last = math.floor(chunk.start / RATE_STEP) + 1, math.ceil(chunk.end / RATE_STEP)
        edges = np.array([chunk.start, *(k * RATE_STEP for k in range(first, last)), chunk.end])
        edges = edges[np.r_[True, np.diff(edges) > 0]]
        m = mult[np.minimum((edges[:-1] // RATE_STEP).astype(np.int64), len(mult) - 1)]
        rates = np.column_stack(
            [
                (load.api_rate - load.payout_rate) * m,
                load.payout_rate * m * c.payout_rate_factor,
                np.full(m.size, c.stuffing_rate),
                np.full(m.size, c.flood_rate),
            ]
        )
        total = rates.sum(axis=1)
        area = np.r_[0.0, np.cumsum(total * np.diff(edges))]
        n = int(rng.poisson(area[-1]))
        if not n:
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        gaps = np.cumsum(rng.standard_exponential(n + 1))
        level = gaps[:-1] * (area[-1] / gaps[-1])
        step = np.minimum(np.searchsorted(area, level, side="right") - 1, total.size - 1)
        t = edges[step] + (level - area[step]) / total[step]
        share = np.cumsum(rates, axis=1)[:, :3] / total[:, None]
        u = rng.random(n)
        kind = (u >= share[step, 0]).astype(np.int64)  # a poll or a payout ...
        if c.stuffing_rate or c.flood_rate:  # ... or, during those incidents, stuffing or flood
            kind += u >= share[step, 1]
            kind += u >= share[step, 2]
        return np.minimum(t, chunk.end), kind

    def _contended(self, chunk: Chunk) -> bool:
        """Whether a request could find the database pool full (see the module docstring)."""
        load, cfg, c = self.scenario.load, self.scenario.service, chunk.conditions
        lo = min(int(chunk.start // RATE_STEP), len(self.multipliers) - 1)
        hi = min(math.ceil(chunk.end / RATE_STEP), len(self.multipliers))
        peak = float(self.multipliers[lo : max(hi, lo + 1)].max())
        # Polls read once, payouts insert and update once (retries do not touch the database).
        rate = (load.api_rate - load.payout_rate) * peak + c.flood_rate
        rate += 2.0 * load.payout_rate * peak * c.payout_rate_factor
        db = cfg.db_latency
        mean = min(cfg.db_timeout, db.median * math.exp(db.sigma**2 / 2.0) * c.db_factor)
        # A backlog left by an earlier slowdown keeps the pool busy past the change of conditions.
        pool = self.service.db
        if pool.queued:
            return True
        return poisson_tail(rate * mean, cfg.db_pool - pool.in_use) > CONTENTION_TOLERANCE

    def _handler(self, n: int) -> np.ndarray:
        h = self.scenario.service.handler_latency
        return h.median * np.exp(h.sigma * self.rng.standard_normal(n))

    def _serve_polls(self, chunk: Chunk, t: np.ndarray, k: np.ndarray) -> None:
        """Batched status polls arriving at ``t`` (first scrapes ``k``): database read, then the
        handler's time, answered when the read completes."""
        cfg, svc = self.scenario.service, self.service
        n = t.size
        if not n:
            return
        db = cfg.db_latency
        read = (db.median * chunk.conditions.db_factor) * np.exp(db.sigma * self.rng.standard_normal(n))
        failed = read > cfg.db_timeout
        read[failed] = cfg.db_timeout
        done = t + read
        kd = self._scrape_index(done)
        # In flight at scrapes k <= s_k < done, crashed ones too (a scrape before the crash sees them).
        span = kd - k
        straddle = np.flatnonzero(span > 0)
        if straddle.size:
            counts = span[straddle]
            offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
            ks = np.repeat(k[straddle], counts) + offsets
            self.book.add(ks[ks < self.scrape_times.size], C_IN_FLIGHT)
        if self._crashes.size:
            lost = self._crash_between(t, done)
            svc.stats["requests_lost_in_flight"] += int(lost.sum())
            keep = ~lost
            done, read, failed, kd = done[keep], read[keep], failed[keep], kd[keep]
        hf = np.full(done.size, chunk.conditions.handler_factor)
        later = np.flatnonzero(done >= chunk.end)
        hf[later] = self._handler_factor[np.searchsorted(self._edges, done[later], side="right") - 1]
        seen = self._seen(done, kd)
        self._record(kd, seen, read + self._handler(done.size) * hf, np.where(failed, 500, 200))
        self.book.add(
            kd[seen],
            C_DB,
            index=bucket_index(self._db_bounds, read[seen]),
            width=_DB_BUCKETS,
        )
        self.book.add(kd[seen], C_DB_SUM, weight=read[seen])

    def _record(self, k: np.ndarray, seen: np.ndarray, duration: np.ndarray, status: np.ndarray) -> None:
        """``record_request`` for answers first scraped by ``k`` (``seen``: kept by that scrape):
        slower than the request time-out is the client's 504."""
        timeout = self.scenario.service.request_timeout
        late = duration > timeout
        if late.any():
            duration = np.where(late, timeout, duration)
            status = np.where(late, 504, status)
        answered = status[k < self.scrape_times.size]  # the run ends at its last scrape
        for code, count in enumerate(np.bincount(answered).tolist()):
            if count:
                self.service.stats[code] += count
        kk, d = k[seen], duration[seen]
        self.book.add(kk, C_REQ, index=bucket_index(self._req_bounds, d), width=_REQ_BUCKETS)
        self.book.add(kk, C_TOTAL)
        self.book.add(kk[status[seen] < 500], C_OK)
        self.book.add(kk, C_REQ_SUM, weight=d)

    def _crash_between(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Whether a crash falls in ``(start, end]``, element-wise."""
        j = np.searchsorted(self._crashes, start, side="right")
        inside = j < self._crashes.size
        out = np.zeros(start.size, dtype=bool)
        out[inside] = self._crashes[j[inside]] <= end[inside]
        return out

    def _scrape_index(self, at: np.ndarray) -> np.ndarray:
        """The first scrape at or after each of ``at`` (``len(scrape_times)`` when none is)."""
        k = np.ceil((at - self._first_scrape) / self._interval).astype(np.int64)
        return np.clip(k, 0, self.scrape_times.size)

    def _seen(self, at: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Whether scrape ``k`` sees an update made at ``at``: not when the run has no later
        scrape, nor when the update was lost with a crashed process's registry."""
        seen = k < self.scrape_times.size
        if self._crashes.size:
            seen[seen] = ~self._crash_between(at[seen], self.scrape_times[k[seen]])
        return seen

    def _log_actions(
        self,
        t: np.ndarray,
        unauthorized: np.ndarray,
        forbidden: np.ndarray,
        endpoint: np.ndarray,
        refused: np.ndarray,
        refused_role: np.ndarray,
        refused_client: np.ndarray,
    ) -> list[tuple[float, Any]]:
        """The security events of the chunk's 401/403 answers and of every hundredth 429."""
        svc = self.service
        out: list[tuple[float, Any]] = []
        for failure, mask, status in (("unauthorized", unauthorized, 401), ("forbidden", forbidden, 403)):
            for i in np.flatnonzero(mask).tolist():
                details = {"endpoint": ENDPOINTS[int(endpoint[i])], "status": status}
                out.append(
                    (float(t[i]), _event_action(svc, f"authentication_{failure}", "anonymous", details))
                )
        ordinal = svc.rate_limit_refusals + 1 + np.arange(refused.size)  # refused is in time order
        for j in np.flatnonzero(ordinal % 100 == 1).tolist():
            role = ROLES[int(refused_role[j])]
            details = {"endpoint": ENDPOINTS[int(endpoint[refused[j]])], "role": role}
            user = f"{role}-{int(refused_client[j])}"
            out.append((float(t[refused[j]]), _event_action(svc, "rate_limit_exceeded", user, details)))
        return out


def _payout_action(svc: PayoutService, role: str, client: int) -> Any:
    return lambda: svc.env.process(svc._serve_payout(role, client))


def _poll_action(svc: PayoutService) -> Any:
    return lambda: svc.env.process(svc._serve_poll())


def _event_action(svc: PayoutService, event: str, user: str, details: dict[str, object]) -> Any:
    return lambda: svc.security_event(event, user, details)
