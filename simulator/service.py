"""The payout service as SimPy processes: API requests, payouts, breaker, limits, crashes.

A payout: validation -> circuit breaker and limit check -> database insert (HTTP 202) -> a
payout worker -> balance check -> TRON broadcast with retries and backoff -> confirmation by
polling ``get_transaction_info`` against 3-second blocks -> ``confirmed``, ``failed`` or
``rejected``. Payout metrics are recorded once, at the final state (docs/reference-service.md).

``network.mode: mmc`` reduces the payout path to an M/M/c queue for checks against queueing
theory: a payout enters the FIFO worker queue at once (no auth, rate limit, validation, breaker,
limits or database) and holds its worker for one exponential time of mean ``service_mean``.

Choices where the seed is silent, each documented in the README's model section:
* 4xx answers (401/403/422/429) count as successful requests for ``slo_*``: the service did its
  job; 5xx (database errors, time-outs, 503 while the breaker is open for failures) do not.
* ``tron_payout_amount_usdt_total`` grows for every recorded payout whatever its status, exactly
  as the seed's ``record_payout_request`` does (so the "Daily Payout Volume" panel over-counts).
* ``slo_payout_duration_seconds`` observes processed payouts (confirmed or failed), not rejections.
* The breaker counts failures of the calls that move money (balance check, broadcast); status
  polls are reads and do not trip it. Queued payouts that meet an open breaker are rejected;
  retries cut short by it fail.
* Limits (the seed: 1,000 USDT an hour, 10,000 a day; "limit exceeded" opens the breaker until
  the window resets). A payout above the smaller limit can never be paid: it is invalid (422,
  ``amount_above_limit``) and touches neither usage nor breaker. One that does not fit the
  window's remaining budget is refused (422, ``<limit>_exceeded``); it opens the breaker for
  everyone only when that window has used ``LIMIT_EXHAUSTED_SHARE`` (90 %, where the seed's
  DailyLimitExceeded alert calls the limit exceeded) of its limit. So one large payout cannot stop
  all payouts while most of the budget is left, and an exhausted budget still opens the breaker.
* A crash loses in-flight requests; accepted payouts live in the database and are resumed by the
  restarted process, whose registry starts from zero. Limit usage is reloaded from the database;
  the breaker restarts closed.
"""

from __future__ import annotations

import math
from collections import Counter as Tally
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import simpy

from simulator.breaker import BreakerState, CircuitBreaker, Transition
from simulator.events import EventLog
from simulator.limits import PayoutLimits
from simulator.metrics import PayoutMetrics, make_metrics
from simulator.network import RETRYABLE, TronNetwork
from simulator.pool import Pool
from simulator.randomness import Draws, cumulative
from simulator.ratelimit import RateLimiter
from simulator.scenario import PRIORITIES, ROLES, ROUTER_TYPES, Scenario
from simulator.workload import NEUTRAL, Conditions

Process = Generator[simpy.Event, Any, None]
"""A SimPy process body."""

POLL_ENDPOINT = "/api/payment/payouts/{payout_id}"
PAYOUT_STATUS = {"confirmed": 0, "failed": 1, "rejected": 2, "pending": 3}
"""Status codes of the optional per-payout log (``pending``: not final when the run ended)."""
PAYOUT_ENDPOINT = "/api/payment/payouts"
LIMIT_EXHAUSTED_SHARE = 0.9
"""A limit opens the breaker once this share of it is used (the seed's DailyLimitExceeded: 90 %)."""


@dataclass
class Payout:
    id: int
    router: str
    priority: str
    amount: float
    submitted: float  # seconds from run start
    reserved_epoch: float
    client: str
    queued: float = -1.0  # when it asked for a payout worker (seconds from start), -1 if never
    started: float = -1.0  # when it got one


@dataclass(frozen=True)
class Admission:
    """The answer to a payout submission: HTTP status, the payout's error ("" when accepted with
    202) and the request's duration in scenario seconds."""

    status: int
    error: str
    duration: float


class PayoutService:
    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        draws: Draws,
        network: TronNetwork,
        log: EventLog | None = None,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.cfg = scenario.service
        self.load = scenario.load
        self.draws = draws
        self.network = network
        self.log = log
        self.t0 = scenario.start.timestamp()
        self.conditions: Conditions = NEUTRAL
        self.generation = 0
        self.down = False
        self.metrics: PayoutMetrics = make_metrics()
        self.breaker = self._new_breaker()
        self.limits = PayoutLimits(self.cfg.hourly_limit, self.cfg.daily_limit)
        self.max_payout = min(self.cfg.hourly_limit, self.cfg.daily_limit)  # larger: never payable
        self.rate_limit_refusals = 0
        self.rate_limiter = RateLimiter({r: (lim.rate, lim.burst) for r, lim in self.cfg.rate_limits.items()})
        self.db = Pool(env, self.cfg.db_pool)
        self.workers = Pool(env, self.cfg.payout_workers)
        self.pending: dict[int, Payout] = {}
        self.confirmed_total = 0
        self.failed_total = 0
        self.active_requests = 0
        self.requests_since_scrape = 0
        self.batch_in_flight = 0  # batched polls in the database at the current scrape (simulator.batch)
        self.stats: Tally[str | int] = Tally()  # event counts; HTTP status codes as ints
        self.breaker_seconds: dict[str, float] = {}
        self.transitions: list[Transition] = []
        # Per-payout (submitted, queue wait, processing time, status code), only when asked for.
        self.payout_log: list[tuple[float, float, float, int]] | None = None
        self._state_since = 0.0
        self._next_payout_id = 1
        self._routers = cumulative(self.load.router_mix, ROUTER_TYPES)
        self._priorities = cumulative(self.load.priority_mix, PRIORITIES)
        self._roles = cumulative(self.load.role_mix, ROLES)
        self._clients = self.load.clients_per_role
        self._p_unauthorized = self.load.unauthenticated_share
        self._p_forbidden = self.load.unauthenticated_share + self.load.forbidden_share
        self._handler = (self.cfg.handler_latency.median, self.cfg.handler_latency.sigma)
        self._db = (self.cfg.db_latency.median, self.cfg.db_latency.sigma)
        self._db_timeout = self.cfg.db_timeout
        self._request_timeout = self.cfg.request_timeout

    # -- helpers -----------------------------------------------------------------------------
    def _new_breaker(self) -> CircuitBreaker:
        b = self.cfg.breaker
        return CircuitBreaker(b.failure_threshold, b.cooldown, b.half_open_probes)

    def epoch(self) -> float:
        return self.t0 + self.env.now

    def new_payout_id(self) -> int:
        n = self._next_payout_id
        self._next_payout_id += 1
        return n

    def handler_time(self) -> float:
        return self.draws.lognormal(*self._handler) * self.conditions.handler_factor

    def db_time(self) -> tuple[float, bool]:
        """(duration, failed): an operation slower than the database time-out fails at the time-out."""
        median, sigma = self._db
        t = self.draws.lognormal(median, sigma) * self.conditions.db_factor
        return (self._db_timeout, True) if t > self._db_timeout else (t, False)

    def record_request(self, duration: float, status: int) -> None:
        """One API answer in the ``slo_*`` metrics: slower than the request time-out is the client's 504."""
        hot = self.metrics.hot
        if duration > self._request_timeout:
            duration, status = self._request_timeout, 504
        hot.requests_total(1.0)
        if status < 500:
            hot.requests_ok(1.0)
        hot.request_duration(duration)
        self.stats[status] += 1

    # -- arrivals (called by the workload's arrival processes) ----------------------------------
    def arrive(self, kind: str, *, bad_key: bool = False, flood_role: str = "") -> None:
        """One API request arriving now: ``kind`` is "poll" or "payout"."""
        stats = self.stats
        stats["requests_arrived"] += 1
        if self.down:
            stats["requests_lost_down"] += 1
            return
        self.requests_since_scrape += 1
        endpoint = PAYOUT_ENDPOINT if kind == "payout" else POLL_ENDPOINT
        u = self.draws.uniform()
        if bad_key or u < self._p_unauthorized:
            self._auth_failure("unauthorized", 401, endpoint)
            return
        if u < self._p_forbidden:
            self._auth_failure("forbidden", 403, endpoint)
            return
        if flood_role:
            role, client = flood_role, -1
        else:
            role = ROLES[self.draws.choice(self._roles)]
            v = self.draws.uniform()
            client = int(self._clients * v * v)  # a few clients send most requests
        if self.rate_limited(role, client, endpoint):
            self.record_request(self.handler_time() * 0.2, 429)
            if self.rate_limit_event_due():
                self.security_event(
                    "rate_limit_exceeded", f"{role}-{client}", {"endpoint": endpoint, "role": role}
                )
            return
        self.env.process(self._serve_payout(role, client) if kind == "payout" else self._serve_poll())

    def _auth_failure(self, failure_type: str, status: int, endpoint: str) -> None:
        self.record_request(self.handler_time() * 0.2, status)
        self.auth_failure(failure_type, endpoint, status)

    # -- decisions shared with live mode (simulator/live/serve.py calls these) -------------------
    def auth_failure(
        self, failure_type: str, endpoint: str, status: int, *, user_id: str = "anonymous", ip: str = ""
    ) -> None:
        """Count a 401 ("unauthorized") or 403 ("forbidden") and log the seed's security event."""
        self.metrics.hot.auth_failures[failure_type](1.0)
        if self.log is not None:
            self.security_event(
                f"authentication_{failure_type}", user_id, {"endpoint": endpoint, "status": status}, ip
            )

    def rate_limited(self, role: str, client: int, endpoint: str) -> bool:
        """Take a token from the caller's bucket; False (and counted) when it is empty (HTTP 429)."""
        if self.rate_limiter.allow(role, client, self.env.now):
            return False
        self.metrics.hot.rate_limited[endpoint, role](1.0)
        self.rate_limit_refusals += 1
        return True

    def rate_limit_event_due(self) -> bool:
        """One security event per hundred refusals (the first, the 101st, ...)."""
        return self.log is not None and self.rate_limit_refusals % 100 == 1

    def security_event(
        self, event_type: str, user_id: str, details: Mapping[str, object], ip: str = ""
    ) -> None:
        """The seed's ``security_event`` log; without a real peer address, one from RFC 5737's range."""
        assert self.log is not None
        ip = ip or f"198.51.100.{int(self.draws.uniform() * 254) + 1}"
        self.log.emit(
            self.epoch(), "warning", "security_event", event_type="security", security_event=event_type,
            user_id=user_id, ip_address=ip, details=details,
        )  # fmt: skip

    # -- status polls --------------------------------------------------------------------------
    def _serve_poll(self) -> Process:
        """GET a payout's status: one database read, then the handler's own time."""
        start = self.env.now
        read = yield from self.database("find")
        if read is not None:
            self.record_request(self.env.now - start + self.handler_time(), 500 if read[1] else 200)

    def database(self, operation: str) -> Generator[simpy.Event, Any, tuple[float, bool] | None]:
        """One database operation through the connection pool: (duration, failed), or None when the
        process crashed meanwhile (the operation never completed; its pool died with the process)."""
        gen = self.generation
        self.active_requests += 1
        wait = self.db.acquire()
        if wait is not None:
            yield wait
        db_time, failed = self.db_time()
        yield self.env.timeout(db_time)
        if self.generation != gen:
            return None
        self.db.release()
        self.active_requests -= 1
        if operation == "find":
            self.metrics.hot.db_find(db_time)
        else:
            self.metrics.database_operations_duration_seconds.labels(operation).observe(db_time)
        return db_time, failed

    # -- payout submission ---------------------------------------------------------------------
    def submit(self, router: str, priority: str, amount: float, client: str) -> Payout:
        """A new payout submitted now (not yet admitted)."""
        self.stats["payouts_submitted"] += 1
        return Payout(self.new_payout_id(), router, priority, amount, self.env.now, self.epoch(), client)

    def _serve_payout(self, role: str, client: int) -> Process:
        d, c = self.draws, self.conditions
        router = ROUTER_TYPES[d.choice(self._routers)]
        priority = PRIORITIES[d.choice(self._priorities)]
        a = self.load.amounts
        amount = round(min(a.maximum, max(a.minimum, d.lognormal(a.median, a.sigma) * c.amount_factor)), 2)
        handler = self.handler_time()
        payout = self.submit(router, priority, amount, f"{role}-{client}")
        valid = not d.uniform() < self.load.invalid_payout_share
        answer = yield from self.admit_payout(payout, handler, valid=valid)
        if answer is not None:
            self.record_request(answer.duration, answer.status)

    def admit_payout(
        self, payout: Payout, handler: float, *, valid: bool = True
    ) -> Generator[simpy.Event, Any, Admission | None]:
        """Validation -> per-payout maximum -> breaker -> limits -> database insert -> 202 or a refusal.

        ``handler`` is handler time still to add to the request's duration (the simulation draws
        it; live mode has already slept it and passes 0). Returns the answer, or None when a crash
        cut the database insert: the payout was never stored and the client saw a reset connection.
        """
        if not valid:
            return self._refuse(payout, "rejected", "validation_error", 422, handler)
        if payout.amount > self.max_payout:
            return self._refuse(payout, "rejected", "amount_above_limit", 422, handler)
        self.tick_breaker()
        if not self.breaker.accepting:
            status = 503 if self.breaker.reason == "failures" else 422
            return self._refuse(payout, "rejected", "circuit_breaker_open", status, handler)
        check = self.limits.reserve(payout.reserved_epoch, payout.amount)
        if not check.ok:
            if self.limit_exhausted(check.limit, payout.reserved_epoch):
                self.on_transition(
                    self.breaker.trip_limit(self.env.now, check.limit, check.reset_at - self.t0)
                )
                self.schedule_tick(check.reset_at - self.t0)
            return self._refuse(payout, "rejected", f"{check.limit}_exceeded", 422, handler)
        inserted = yield from self.database("insert")
        if inserted is None:
            return None
        duration = self.env.now - payout.submitted + handler
        if inserted[1]:
            self.limits.release(payout.reserved_epoch, self.epoch(), payout.amount)
            return self._refuse(payout, "failed", "database_error", 500, handler)
        self.pending[payout.id] = payout
        if self.log is not None:
            self.log.emit(
                self.epoch(), "info", "payout_request_created", payout_id=f"po_{payout.id:08d}",
                user_id=payout.client, amount_usdt=payout.amount, router_type=payout.router,
                request_id=f"req_{payout.id:08d}", event_type="payout_request",
            )  # fmt: skip
        self.env.process(self.process_payout(payout))
        return Admission(202, "", duration)

    def _refuse(self, payout: Payout, status: str, error: str, http: int, handler: float) -> Admission:
        duration = self.env.now - payout.submitted + handler
        self.finalize(payout, status, error, duration)
        return Admission(http, error, duration)

    def limit_exhausted(self, limit: str, epoch: float) -> bool:
        """Whether ``limit`` counts as exhausted, which opens the breaker until its window resets.

        A payout that does not fit the remaining budget is refused either way; it opens the breaker
        for everyone only once the window has used ``LIMIT_EXHAUSTED_SHARE`` of the limit, so that
        one large payout cannot stop all payouts while most of the budget is left.
        """
        daily, hourly = self.limits.usage(epoch)
        used, cap = (
            (daily, self.cfg.daily_limit) if limit == "daily_limit" else (hourly, self.cfg.hourly_limit)
        )
        return used >= LIMIT_EXHAUSTED_SHARE * cap

    # -- M/M/c mode (network.mode: mmc) -------------------------------------------------------
    def arrive_mmc(self) -> None:
        """A payout straight into the FIFO worker queue: no auth, limits, breaker or database."""
        self.stats["requests_arrived"] += 1
        d = self.draws
        router = ROUTER_TYPES[d.choice(self._routers)]
        priority = PRIORITIES[d.choice(self._priorities)]
        payout = Payout(self.new_payout_id(), router, priority, 0.0, self.env.now, self.epoch(), "mmc")
        self.stats["payouts_submitted"] += 1
        self.pending[payout.id] = payout
        self.record_request(0.0, 202)
        self.env.process(self._serve_mmc(payout))

    def _serve_mmc(self, payout: Payout) -> Process:
        env = self.env
        payout.queued = env.now
        wait = self.workers.acquire()
        if wait is not None:
            yield wait
        payout.started = env.now
        yield env.timeout(self.draws.exponential(self.scenario.network.service_mean))
        self.workers.release()
        del self.pending[payout.id]
        self.finalize(payout, "confirmed", "", env.now - payout.submitted)

    # -- payout processing ---------------------------------------------------------------------
    def process_payout(self, payout: Payout) -> Process:
        gen, env, net = self.generation, self.env, self.network
        payout.queued = env.now
        wait = self.workers.acquire(
            0 if payout.priority == "high" and self.cfg.queue_discipline == "priority" else 1
        )
        if wait is not None:
            yield wait
        if self.generation != gen:
            return
        payout.started = env.now
        self.tick_breaker()
        if not self.breaker.allow(env.now):
            self.workers.release()
            yield from self._complete(payout, "rejected", "circuit_breaker_open")
            return
        error = ""
        attempts = self.scenario.network.retries.max_attempts
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                yield env.timeout(net.backoff(attempt - 1))
                if self.generation != gen:
                    return
                self.tick_breaker()
                if not self.breaker.allow(env.now):
                    error = "circuit_breaker_open"
                    break
            if attempt == 1 and self.draws.uniform() < self.scenario.network.balance_check_probability:
                result = net.call("get_balance", self.conditions)
                yield env.timeout(result.latency)
                if self.generation != gen:
                    return
                self._network_call("get_balance", result.latency, result.error, breaker=True)
                if result.error:
                    error = result.error
                    continue
            result = net.call("broadcast", self.conditions)
            yield env.timeout(result.latency)
            if self.generation != gen:
                return
            self._network_call("broadcast", result.latency, result.error, breaker=True)
            if result.error:
                error = result.error
                if error not in RETRYABLE:
                    break
                continue
            # On the wire: poll get_transaction_info until final or expired.
            sent = env.now
            included = net.inclusion(sent)
            final_at = net.finality(included) if included is not None else None
            poll = self.scenario.network.poll_interval
            while True:
                result = net.call("get_transaction_info", self.conditions)
                yield env.timeout(poll + result.latency)
                if self.generation != gen:
                    return
                self._network_call("get_transaction_info", result.latency, result.error, breaker=False)
                if result.error:
                    continue
                if final_at is not None and env.now >= final_at:
                    outcome = net.execution_error()
                    self.workers.release()
                    if outcome:
                        self.metrics.tron_network_errors_total.labels(outcome, "get_transaction_info").inc()
                        yield from self._complete(payout, "failed", outcome)
                    else:
                        yield from self._complete(payout, "confirmed", "")
                    return
                if final_at is None and env.now >= sent + self.scenario.network.expiration:
                    # Head block passed the expiration: rebuild and re-sign (a new attempt).
                    self.metrics.tron_network_errors_total.labels("expired", "broadcast").inc()
                    self.on_transition(self.breaker.record_failure(env.now))
                    error = "expired"
                    break
        self.workers.release()
        yield from self._complete(payout, "failed", error or "retries_exhausted")

    def _network_call(self, operation: str, latency: float, error: str, *, breaker: bool) -> None:
        m = self.metrics
        m.tron_network_latency_seconds.labels(operation).observe(latency)
        if error:
            m.tron_network_errors_total.labels(error, operation).inc()
            if breaker:
                self.on_transition(self.breaker.record_failure(self.env.now))
        elif breaker:
            self.on_transition(self.breaker.record_success(self.env.now))

    def _complete(self, payout: Payout, status: str, error: str) -> Process:
        """Write the final state to the database, then record it."""
        if (yield from self.database("update")) is None:
            return
        if status != "confirmed":
            self.limits.release(payout.reserved_epoch, self.epoch(), payout.amount)
        self.pending.pop(payout.id, None)
        self.finalize(payout, status, error, self.env.now - payout.submitted)

    def finalize(self, payout: Payout, status: str, error: str, duration: float) -> None:
        hot = self.metrics.hot
        hot.payout_requests[payout.router, payout.priority, status](1.0)
        hot.payout_amount[payout.router](payout.amount)
        hot.payout_processing[payout.router, status](duration)
        if status != "rejected":
            hot.payout_duration(duration)
        self.stats[f"payouts_{status}"] += 1
        if self.payout_log is not None:
            wait = payout.started - payout.queued if payout.started >= 0 else math.nan
            self.payout_log.append((payout.submitted, wait, duration, PAYOUT_STATUS[status]))
        if status == "confirmed":
            self.confirmed_total += 1
        elif status == "failed":
            self.failed_total += 1
        if self.log is not None:
            pid, rid = f"po_{payout.id:08d}", f"req_{payout.id:08d}"
            if status == "confirmed":
                txid = "".join(f"{int(self.draws.uniform() * 2**32):08x}" for _ in range(8))
                self.log.emit(
                    self.epoch(), "info", "payout_successful", payout_id=pid, txid=txid,
                    duration=round(duration, 3), request_id=rid, event_type="payout_success",
                )  # fmt: skip
            else:
                self.log.emit(
                    self.epoch(), "error", "payout_failed", payout_id=pid, error=error, status=status,
                    duration=round(duration, 3), request_id=rid, event_type="payout_failure",
                )  # fmt: skip

    # -- breaker bookkeeping -------------------------------------------------------------------
    def tick_breaker(self) -> None:
        self.on_transition(self.breaker.tick(self.env.now))

    def on_transition(self, tr: Transition | None) -> None:
        if tr is None:
            return
        self.breaker_seconds[tr.old.label] = (
            self.breaker_seconds.get(tr.old.label, 0.0) + tr.at - self._state_since
        )
        self._state_since = tr.at
        self.transitions.append(Transition(self.epoch(), tr.old, tr.new, tr.reason))
        self.metrics.circuit_breaker_status.set(int(tr.new))
        if tr.new is BreakerState.OPEN and tr.reason == "failures":
            self.schedule_tick(self.breaker.until)
        if self.log is not None:
            daily, hourly = self.limits.usage(self.epoch())
            self.log.emit(
                self.epoch(), "warning", "circuit_breaker_event",
                transition=f"{tr.old.label}->{tr.new.label}", reason=tr.reason,
                daily_usage=round(daily, 2), hourly_usage=round(hourly, 2), event_type="circuit_breaker",
            )  # fmt: skip

    def schedule_tick(self, at: float) -> None:
        """Wake at ``at`` (seconds from start) so time-driven transitions happen without traffic."""

        def wake(env: simpy.Environment, delay: float) -> Process:
            yield env.timeout(delay)
            if not self.down:
                self.tick_breaker()

        self.env.process(wake(self.env, max(0.0, at - self.env.now)))

    def close_accounting(self) -> None:
        """Add the time since the last transition to the breaker-state (or downtime) totals."""
        label = "service_down" if self.down else self.breaker.state.label
        self.breaker_seconds[label] = self.breaker_seconds.get(label, 0.0) + self.env.now - self._state_since
        self._state_since = self.env.now

    # -- incidents -----------------------------------------------------------------------------
    def set_conditions(self, c: Conditions) -> None:
        if c.down and not self.down:
            self._crash()
        elif self.down and not c.down:
            self._restart()
        self.conditions = c

    def _crash(self) -> None:
        self.close_accounting()
        self.down = True
        self.generation += 1
        self.stats["crashes"] += 1
        self.stats["requests_lost_in_flight"] += self.active_requests
        self.active_requests = 0

    def _restart(self) -> None:
        self.close_accounting()
        self.down = False
        self.metrics = make_metrics()  # a new process: counters start from zero
        self.breaker = self._new_breaker()
        self.db = Pool(self.env, self.cfg.db_pool)
        self.workers = Pool(self.env, self.cfg.payout_workers)
        self.stats["payouts_recovered"] += len(self.pending)
        for payout in sorted(self.pending.values(), key=lambda p: p.id):
            self.env.process(self.process_payout(payout))
