"""``tronsim serve``: the reference payout service in real time, over HTTP (aiohttp).

The service is the simulation's :class:`~simulator.service.PayoutService` itself, running on a
:class:`~simulator.live.realtime.RealtimeEnv`: the breaker, limits, rate limiter, TRON network model,
payout worker processes (broadcast, retries, confirmation polling), final-state recording, crash
and restart are the simulation's code. Only the edges are new here: HTTP requests with real API
keys and bodies replace the model's random arrivals, and request latency is measured, not drawn.
Simulated durations (handler, database, network, blocks) are slept, divided by ``--speed``.

Incidents: the service plays the scenario's incident timeline itself, from its epoch (scenario
time 0 is when it starts, or ``--epoch``), at ``--speed``. Knowing the timeline in advance is
what lets the network model place halted blocks exactly as in the simulation. The load
generator reads the epoch and speed from ``GET /admin/timeline`` (loopback peers only) and
drives the traffic side of the same incidents (credential stuffing, floods, surges).

Clocks: scenario time is ``(wall - epoch) * speed``; the service's epoch clock (limit windows,
block slots, log timestamps) is ``epoch + scenario time``, so it runs ahead of the wall clock
when ``--speed`` is above 1. Latencies in the metrics are measured in wall seconds.

While a ``service_crash`` incident is active the service is down: every connection is reset
(scrapes fail, so ``up`` is 0); at its end the process "restarts" as in the simulation (fresh
registry, breaker closed, accepted payouts resumed from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any, cast

import numpy as np
import simpy
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from simulator.events import EventLog
from simulator.live import health
from simulator.live.api import MAX_BODY_BYTES, BodyError, KeyRing, Principal, parse_payout
from simulator.network import TronNetwork
from simulator.randomness import Draws
from simulator.scenario import Scenario
from simulator.scrape import Scraper
from simulator.service import PAYOUT_ENDPOINT, POLL_ENDPOINT, Payout, PayoutService
from simulator.workload import halt_windows, incident_timeline

FINAL = frozenset({"confirmed", "failed", "rejected"})
JSON = "application/json"


@dataclass
class PayoutRecord:
    id: int
    owner: Principal
    router: str
    priority: str
    amount: float
    recipient: str
    created: float  # epoch seconds (scenario clock)
    status: str = "received"
    error: str = ""
    updated: float = 0.0
    finals: int = 0  # how many final states were recorded (the invariant: exactly one)

    def to_json(self) -> dict[str, Any]:
        return {
            "payout_id": payout_id(self.id),
            "status": self.status,
            "amount_usdt": self.amount,
            "router_type": self.router,
            "priority": self.priority,
            "recipient": self.recipient,
            "error": self.error or None,
            "created_at": _iso(self.created),
            "updated_at": _iso(self.updated or self.created),
        }


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="milliseconds")


def payout_id(n: int) -> str:
    return f"po_{n:08d}"


class LivePayoutService(PayoutService):
    """The simulation's service, also keeping every payout's record for GET and the invariant."""

    records: dict[int, PayoutRecord]

    def finalize(self, payout: Payout, status: str, error: str, duration: float) -> None:
        record = self.records.get(payout.id)
        if record is not None:
            record.finals += 1
            record.status, record.error, record.updated = status, error, self.epoch()
        super().finalize(payout, status, error, duration)


class LiveServer:
    """Owns the service, the HTTP application and the incident driver (all on one event loop)."""

    def __init__(
        self,
        scenario: Scenario,
        keys: dict[str, list[str]],
        *,
        speed: float = 1.0,
        epoch: float | None = None,
        log_stream: IO[str] | None = None,
    ) -> None:
        self.scenario = scenario
        self.keyring = KeyRing(keys)
        self.speed = speed
        self._epoch = epoch
        self.log_stream = log_stream
        self.env: Any = None
        self.svc: LivePayoutService
        self.timeline = incident_timeline(scenario)

    # -- setup ---------------------------------------------------------------------------------
    def start_service(self) -> None:
        """Build the service on the running loop (the environment needs it)."""
        from simulator.live.realtime import RealtimeEnv

        self.env = RealtimeEnv(self.speed, self._epoch)
        draws = Draws(np.random.default_rng(self.scenario.seed))
        network = TronNetwork(self.scenario.network, draws, self.env.origin, halt_windows(self.scenario))
        log = EventLog(self.log_stream) if self.log_stream is not None else None
        svc = LivePayoutService(cast(simpy.Environment, self.env), self.scenario, draws, network, log)
        svc.t0 = self.env.origin
        svc.records = {}
        self.svc = svc
        self._gauges = SimpleNamespace(
            service=svc, draws=draws, env=self.env, leak_mb=0.0, memory_noise_mb=0.0, _last_at=self.env.now
        )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[self._middleware])
        app.router.add_post(PAYOUT_ENDPOINT, self.create_payout)
        app.router.add_get("/api/payment/payouts/{payout_id}", self.get_payout)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        app.router.add_get("/ready", self.ready)
        app.router.add_get("/live", self.live)
        app.router.add_get("/admin/timeline", self.admin_timeline)
        app.router.add_get("/admin/stats", self.admin_stats)
        return app

    async def drive_incidents(self) -> None:
        """Apply the scenario's incident conditions at their (scaled) times."""
        for i, entry in enumerate(self.timeline):
            nxt = self.timeline[i + 1].at if i + 1 < len(self.timeline) else None
            if nxt is not None and nxt <= self.env.now:
                continue  # already past (started with an epoch in the past)
            await asyncio.sleep(self.env.real_delay(entry.at - self.env.now))
            self.svc.set_conditions(entry.conditions)

    # -- plumbing ------------------------------------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.svc.down:
            return self._reset(request)
        started = time.perf_counter()
        try:
            return cast(web.StreamResponse, await handler(request))
        except web.HTTPRequestEntityTooLarge:
            return self._answer(started, 413, {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"})

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        """A crashed process: drop the connection without an answer."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)

    def _record_request(self, started: float, status: int) -> None:
        m, svc = self.svc.metrics, self.svc
        m.slo_total_requests.inc()
        if status < 500:
            m.slo_successful_requests.inc()
        m.slo_request_duration_seconds.observe(time.perf_counter() - started)
        svc.stats[status] += 1
        svc.requests_since_scrape += 1

    def _answer(self, started: float, status: int, body: dict[str, Any], **headers: str) -> web.Response:
        self._record_request(started, status)
        return _json(status, body, headers)

    def _security(self, event: str, user_id: str, request: web.Request, details: dict[str, Any]) -> None:
        if self.svc.log is None:
            return
        self.svc.log.emit(
            self.svc.epoch(), "warning", "security_event", event_type="security", security_event=event,
            user_id=user_id, ip_address=request.remote or "", details=details,
        )  # fmt: skip

    def _authorize(self, request: web.Request, endpoint: str, started: float) -> Principal | web.Response:
        """401 for a missing or unknown key, 429 beyond the caller's rate limit."""
        svc = self.svc
        principal = self.keyring.authenticate(request.headers.get("X-API-Key"))
        if principal is None:
            svc.metrics.authentication_failures_total.labels("unauthorized").inc()
            self._security("authentication_unauthorized", "anonymous", request, {"endpoint": endpoint})
            return self._answer(started, 401, {"detail": "missing or invalid API key"})
        if not svc.rate_limiter.allow(principal.role, principal.client, self.env.now):
            svc.metrics.rate_limit_violations_total.labels(endpoint, principal.role).inc()
            if svc.stats[429] % 100 == 0:  # one event per hundred refusals, as the simulation logs
                self._security(
                    "rate_limit_exceeded",
                    principal.user_id,
                    request,
                    {"endpoint": endpoint, "role": principal.role},
                )
            return self._answer(started, 429, {"detail": "rate limit exceeded"}, **{"Retry-After": "1"})
        return principal

    async def _database(self, operation: str) -> tuple[float, bool] | None:
        """One simulated database operation through the pool; None if the process crashed meanwhile."""
        svc = self.svc
        gen, pool = svc.generation, svc.db
        svc.active_requests += 1
        wait = pool.acquire()
        if wait is not None:
            await cast(Any, wait).future
        duration, failed = svc.db_time()
        await asyncio.sleep(self.env.real_delay(duration))
        if svc.generation != gen:
            return None
        pool.release()
        svc.active_requests -= 1
        svc.metrics.database_operations_duration_seconds.labels(operation).observe(duration)
        return duration, failed

    # -- the payout API ------------------------------------------------------------------------
    async def create_payout(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        svc, env = self.svc, self.env
        gen = svc.generation
        who = self._authorize(request, PAYOUT_ENDPOINT, started)
        if isinstance(who, web.Response):
            return who
        raw = await request.read()  # 413 beyond MAX_BODY_BYTES (middleware)
        try:
            body = parse_payout(raw)
        except BodyError as exc:
            if exc.labels is not None:  # a payout with a bad amount or address: counted as rejected
                payout = self._new_payout(who, exc.labels[0], exc.labels[1], 0.0, "")
                svc.finalize(payout, "rejected", "validation_error", time.perf_counter() - started)
            return self._answer(started, 422, {"detail": exc.detail})
        await asyncio.sleep(env.real_delay(svc.handler_time()))
        if svc.generation != gen:
            return self._reset(request)
        payout = self._new_payout(who, body.router, body.priority, body.amount, body.recipient)
        pid = payout_id(payout.id)
        svc.tick_breaker()
        if not svc.breaker.accepting:
            svc.finalize(payout, "rejected", "circuit_breaker_open", time.perf_counter() - started)
            status = 503 if svc.breaker.reason == "failures" else 422
            return self._answer(
                started, status, {"detail": "circuit breaker open", "payout_id": pid, "status": "rejected"}
            )
        check = svc.limits.reserve(payout.reserved_epoch, payout.amount)
        if not check.ok:
            svc.on_transition(svc.breaker.trip_limit(env.now, check.limit, check.reset_at - svc.t0))
            svc.schedule_tick(check.reset_at - svc.t0)
            svc.finalize(payout, "rejected", f"{check.limit}_exceeded", time.perf_counter() - started)
            return self._answer(
                started, 422, {"detail": f"{check.limit} exceeded", "payout_id": pid, "status": "rejected"}
            )
        db = await self._database("insert")
        if db is None:
            return self._reset(request)
        if db[1]:
            svc.limits.release(payout.reserved_epoch, svc.epoch(), payout.amount)
            svc.finalize(payout, "failed", "database_error", time.perf_counter() - started)
            return self._answer(started, 500, {"detail": "database error", "payout_id": pid})
        svc.pending[payout.id] = payout
        record = svc.records[payout.id]
        record.status = "pending"
        if svc.log is not None:
            svc.log.emit(
                svc.epoch(), "info", "payout_request_created", payout_id=pid, user_id=payout.client,
                amount_usdt=payout.amount, router_type=payout.router, request_id=f"req_{payout.id:08d}",
                event_type="payout_request",
            )  # fmt: skip
        env.process(svc.process_payout(payout))
        return self._answer(started, 202, record.to_json())

    def _new_payout(
        self, who: Principal, router: str, priority: str, amount: float, recipient: str
    ) -> Payout:
        svc = self.svc
        n = svc.new_payout_id()
        svc.stats["payouts_submitted"] += 1
        epoch = svc.epoch()
        payout = Payout(n, router, priority, amount, self.env.now, epoch, who.user_id)
        svc.records[n] = PayoutRecord(n, who, router, priority, amount, recipient, epoch)
        return payout

    async def get_payout(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        svc = self.svc
        who = self._authorize(request, POLL_ENDPOINT, started)
        if isinstance(who, web.Response):
            return who
        db = await self._database("find")
        if db is None:
            return self._reset(request)
        await asyncio.sleep(self.env.real_delay(svc.handler_time()))
        if db[1]:
            return self._answer(started, 500, {"detail": "database error"})
        text = request.match_info["payout_id"]
        number = int(text[3:]) if text.startswith("po_") and text[3:].isdigit() else -1
        record = svc.records.get(number)
        if record is None:
            return self._answer(started, 404, {"detail": "payout not found"})
        if record.owner != who and who.role != "admin":
            svc.metrics.authentication_failures_total.labels("forbidden").inc()
            self._security("authentication_forbidden", who.user_id, request, {"endpoint": POLL_ENDPOINT})
            return self._answer(started, 403, {"detail": "not your payout"})
        return self._answer(started, 200, record.to_json())

    # -- operations endpoints ------------------------------------------------------------------
    async def metrics(self, request: web.Request) -> web.StreamResponse:
        Scraper.refresh_process_gauges(cast(Scraper, self._gauges))
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.svc.metrics.registry), headers={"Content-Type": content_type})

    async def _mongo_check(self) -> dict[str, Any]:
        duration, failed = self.svc.db_time()
        await asyncio.sleep(self.env.real_delay(duration))
        return health.database_check(duration, failed)

    async def _tron_check(self) -> dict[str, Any]:
        result = self.svc.network.call("get_balance", self.svc.conditions)
        await asyncio.sleep(self.env.real_delay(result.latency))
        return health.tron_check(result)

    async def health(self, request: web.Request) -> web.StreamResponse:
        tron, mongo = await asyncio.gather(self._tron_check(), self._mongo_check())
        svc = self.svc
        svc.tick_breaker()
        breaker = health.breaker_check(svc.breaker, svc.limits, svc.epoch())
        return _json(200, health.health_body(tron, mongo, breaker))

    async def ready(self, request: web.Request) -> web.StreamResponse:
        status, body = health.ready_body(await self._mongo_check())
        return _json(status, body)

    async def live(self, request: web.Request) -> web.StreamResponse:
        return _json(200, health.live_body())

    def _loopback_peer(self, request: web.Request) -> bool:
        try:
            return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
        except ValueError:
            return False

    async def admin_timeline(self, request: web.Request) -> web.StreamResponse:
        if not self._loopback_peer(request):
            return _json(404, {"detail": "not found"})
        sc = self.scenario
        return _json(
            200,
            {
                "scenario": sc.name,
                "seed": sc.seed,
                "epoch": self.env.origin,
                "speed": self.speed,
                "now": self.env.now,
                "duration": sc.duration,
                "incidents": [{"at": e.at, "down": e.conditions.down} for e in self.timeline],
            },
        )

    async def admin_stats(self, request: web.Request) -> web.StreamResponse:
        """Payout-state accounting for tests and operators: nothing lost, nothing counted twice."""
        if not self._loopback_peer(request):
            return _json(404, {"detail": "not found"})
        svc = self.svc
        by_status: dict[str, int] = {}
        finals: dict[str, int] = {}
        for record in svc.records.values():
            by_status[record.status] = by_status.get(record.status, 0) + 1
            key = str(min(record.finals, 2))
            finals[key] = finals.get(key, 0) + 1
        return _json(
            200,
            {
                "payouts": len(svc.records),
                "by_status": by_status,
                "final_states_recorded": finals,  # "0": not final yet, "1": once, "2": more than once
                "pending": len(svc.pending),
                "breaker": svc.breaker.state.label,
                "down": svc.down,
                "process_failures": self.env.failures,
                "http": {str(k): v for k, v in sorted(svc.stats.items(), key=str) if isinstance(k, int)},
            },
        )


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, separators=(",", ":")).encode(),
        content_type=JSON,
        headers=headers,
    )


async def run_server(
    server: LiveServer,
    host: str,
    port: int,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    announce: IO[str] | None = sys.stderr,
) -> None:
    """Serve until ``stop`` is set (or SIGINT/SIGTERM); then stop the workers and close."""
    server.start_service()
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    driver = loop.create_task(server.drive_incidents())
    if announce is not None:
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        base = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
        rows = [
            ("service", f"{base}{PAYOUT_ENDPOINT}"),
            ("metrics", f"{base}/metrics"),
            ("health", f"{base}/health  {base}/ready  {base}/live"),
            ("scenario", f"{server.scenario.name} at speed {server.speed:g} (epoch {server.env.origin:.3f})"),
        ]
        width = max(len(k) for k, _ in rows)
        print("\n".join(f"{k:<{width}}  {v}" for k, v in rows), file=announce, flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        driver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await driver
        await server.env.cancel_all()
        await runner.cleanup()


def serve(
    scenario: Scenario,
    keys: dict[str, list[str]],
    *,
    host: str,
    port: int,
    speed: float,
    epoch: float | None,
    log_path: Path | None,
) -> int:
    stream: IO[str]
    if log_path is None:
        stream = sys.stdout
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    else:
        stream = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed below)
    try:
        server = LiveServer(scenario, keys, speed=speed, epoch=epoch, log_stream=stream)
        asyncio.run(run_server(server, host, port))
    finally:
        if log_path is not None:
            stream.close()
    return 0


__all__ = ["LivePayoutService", "LiveServer", "run_server", "serve"]
