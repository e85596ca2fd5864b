"""``tronsim serve``: the reference payout service in real time, over HTTP (aiohttp).

The service is the simulation's :class:`~simulator.service.PayoutService` itself, running on a
:class:`~simulator.live.realtime.RealtimeEnv`: a submission runs the service's own admission
generator (``admit_payout``: per-payout maximum, breaker, limits, database insert, 202 or refusal),
a poll its ``database("find")``; authentication failures and rate limiting are its
``auth_failure`` and ``rate_limited``; payout workers, final-state recording, crash and restart and
the scrape-time gauges (:class:`~simulator.scrape.ProcessGauges`) are the simulation's code. Only
the edges are new here: HTTP requests with real API keys and bodies replace the model's random
arrivals, and request latency is measured, not drawn. Simulated durations (handler, database,
network, blocks) are slept, divided by ``--speed``.

Hardening (see :mod:`simulator.live.guard` and :mod:`simulator.live.logsafe`): a connection cap
answered with 503, a deadline for request heads (408) and bodies (408), header size limits, a
redacting log filter, and a middleware that counts every API answer, a 500 included.

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
registry, breaker closed, accepted payouts resumed from the database). A submission whose
database insert the crash cut was never stored: its client saw a reset, and no record remains.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import simpy
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from simulator.events import EventLog
from simulator.live import health, logsafe
from simulator.live.api import (
    MAX_BODY_BYTES,
    BodyError,
    KeyRing,
    PayoutBody,
    Principal,
    parse_payout,
    parse_payout_id,
)
from simulator.live.guard import GuardedSite, ServerLimits, request_started
from simulator.live.realtime import RealtimeEnv
from simulator.network import TronNetwork
from simulator.randomness import Draws
from simulator.scenario import Scenario
from simulator.scrape import ProcessGauges
from simulator.service import PAYOUT_ENDPOINT, POLL_ENDPOINT, Admission, Payout, PayoutService
from simulator.workload import halt_windows, incident_timeline
from sloanalysis.errors import UserError

FINAL = frozenset({"confirmed", "failed", "rejected"})
JSON = "application/json"
LOG = logging.getLogger("tronsim.live")


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
        limits: ServerLimits | None = None,
    ) -> None:
        self.scenario = scenario
        self.keyring = KeyRing(keys)
        self.speed = speed
        self._epoch = epoch
        self.log_stream = log_stream
        self.limits = limits or ServerLimits()
        self.env: RealtimeEnv
        self.svc: LivePayoutService
        self.gauges: ProcessGauges
        self.site: GuardedSite | None = None
        self.timeline = incident_timeline(scenario)

    # -- setup ---------------------------------------------------------------------------------
    def start_service(self) -> None:
        """Build the service on the running loop (the environment needs it)."""
        self.env = RealtimeEnv(self.speed, self._epoch)
        draws = Draws(np.random.default_rng(self.scenario.seed))
        network = TronNetwork(self.scenario.network, draws, self.env.origin, halt_windows(self.scenario))
        log = EventLog(self.log_stream) if self.log_stream is not None else None
        env = cast(simpy.Environment, self.env)
        svc = LivePayoutService(env, self.scenario, draws, network, log)
        svc.t0 = self.env.origin
        svc.records = {}
        self.svc = svc
        self.gauges = ProcessGauges(env, svc, draws)

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
        """Every answer to an API request counts in ``slo_*``, whatever the handler did; requests
        a crash cut are not counted (the process that took them is gone)."""
        request_started(request)
        svc = self.svc
        if svc.down:
            return self._reset(request)
        generation, started, status = svc.generation, time.perf_counter(), 500
        try:
            response = cast(web.StreamResponse, await handler(request))
            status = response.status
            return response
        except web.HTTPRequestEntityTooLarge:
            status = 413
            return _json(413, {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"})
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 0
            raise
        except Exception:
            LOG.exception("%s %s failed", request.method, request.path)
            return _json(500, {"detail": "internal error"})
        finally:
            if status and svc.generation == generation and request.path.startswith("/api/"):
                svc.record_request(time.perf_counter() - started, status)
                svc.requests_since_scrape += 1

    def _refused(self, path: str) -> None:
        """A connection beyond the cap was answered 503 (see :mod:`simulator.live.guard`)."""
        if not self.svc.down and path.startswith("/api/"):
            self.svc.record_request(0.0, 503)
            self.svc.requests_since_scrape += 1

    @staticmethod
    def _reset(request: web.Request) -> web.Response:
        """A crashed process: drop the connection without an answer."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=503)

    def _authorize(self, request: web.Request, endpoint: str) -> Principal | web.Response:
        """401 for a missing or unknown key, 429 beyond the caller's rate limit (the service decides)."""
        svc, ip = self.svc, request.remote or ""
        principal = self.keyring.authenticate(request.headers.get("X-API-Key"))
        if principal is None:
            svc.auth_failure("unauthorized", endpoint, 401, ip=ip)
            return _json(401, {"detail": "missing or invalid API key"})
        if svc.rate_limited(principal.role, principal.client, endpoint):
            if svc.rate_limit_event_due():
                details = {"endpoint": endpoint, "role": principal.role}
                svc.security_event("rate_limit_exceeded", principal.user_id, details, ip)
            return _json(429, {"detail": "rate limit exceeded"}, {"Retry-After": "1"})
        return principal

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The body, or None when it did not arrive within the body time-out (413 beyond the cap)."""
        try:
            return await asyncio.wait_for(request.read(), self.limits.body_timeout)
        except TimeoutError:
            return None

    # -- the payout API ------------------------------------------------------------------------
    async def create_payout(self, request: web.Request) -> web.StreamResponse:
        """Authorize and parse (the HTTP edge), then the service's own admission decides."""
        svc, env = self.svc, self.env
        who = self._authorize(request, PAYOUT_ENDPOINT)
        if isinstance(who, web.Response):
            return who
        raw = await self._read_body(request)
        if raw is None:
            response = _json(
                408, {"detail": f"request body not received within {self.limits.body_timeout:g} s"}
            )
            response.force_close()
            return response
        body: PayoutBody | None = None
        try:
            body = parse_payout(raw)
            labels, detail = (body.router, body.priority), None
        except BodyError as exc:
            if exc.labels is None:  # not even a payout's router and priority: nothing to count
                return _json(422, {"detail": exc.detail})
            labels, detail = exc.labels, exc.detail
        generation = svc.generation
        await asyncio.sleep(env.real_delay(svc.handler_time()))
        if svc.generation != generation:
            return self._reset(request)
        amount, recipient = (body.amount, body.recipient) if body is not None else (0.0, "")
        payout = svc.submit(labels[0], labels[1], amount, who.user_id)
        record = PayoutRecord(payout.id, who, *labels, amount, recipient, payout.reserved_epoch)
        svc.records[payout.id] = record
        answer = await env.run(svc.admit_payout(payout, 0.0, valid=body is not None))
        if answer is None:  # a crash cut the insert: never stored, so no record either
            del svc.records[payout.id]
            return self._reset(request)
        if answer.status == 202:
            if record.finals == 0:
                record.status = "pending"
            return _json(202, record.to_json())
        return _json(answer.status, self._refusal(answer, payout_id(payout.id), detail))

    def _refusal(self, answer: Admission, pid: str, detail: list[dict[str, Any]] | None) -> dict[str, Any]:
        if detail is not None:
            return {"detail": detail}
        if answer.error == "amount_above_limit":
            msg = f"must be at most {self.svc.max_payout:,.2f} (the service's hourly limit)"
            detail = [{"loc": ["body", "amount_usdt"], "msg": msg, "type": "value_error"}]
            return {"detail": detail, "payout_id": pid, "status": "rejected"}
        if answer.error == "database_error":
            return {"detail": "database error", "payout_id": pid, "status": "failed"}
        text = answer.error.replace("_", " ").replace(" exceeded", " exhausted")
        return {"detail": text, "payout_id": pid, "status": "rejected"}

    async def get_payout(self, request: web.Request) -> web.StreamResponse:
        svc = self.svc
        who = self._authorize(request, POLL_ENDPOINT)
        if isinstance(who, web.Response):
            return who
        generation = svc.generation
        read = await self.env.run(svc.database("find"))
        if read is None:
            return self._reset(request)
        await asyncio.sleep(self.env.real_delay(svc.handler_time()))
        if svc.generation != generation:
            return self._reset(request)
        if read[1]:
            return _json(500, {"detail": "database error"})
        number = parse_payout_id(request.match_info["payout_id"])
        record = svc.records.get(number) if number is not None else None
        if record is None:
            return _json(404, {"detail": "payout not found"})
        if record.owner != who and who.role != "admin":
            svc.auth_failure("forbidden", POLL_ENDPOINT, 403, user_id=who.user_id, ip=request.remote or "")
            return _json(403, {"detail": "not your payout"})
        return _json(200, record.to_json())

    # -- operations endpoints ------------------------------------------------------------------
    async def metrics(self, request: web.Request) -> web.StreamResponse:
        self.gauges.refresh()
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
                "lost_in_flight": svc.stats["requests_lost_in_flight"],
                "connections": self.site.gate.open if self.site is not None else 0,
                "refused_connections": self.site.gate.refused if self.site is not None else 0,
                "head_timeouts": self.site.gate.head_timeouts if self.site is not None else 0,
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
    runner = web.AppRunner(
        server.app(), access_log=None, handle_signals=False, **server.limits.handler_kwargs()
    )
    await runner.setup()
    site = server.site = GuardedSite(runner, host, port, server.limits, server._refused)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    driver = loop.create_task(server.drive_incidents())
    if announce is not None:
        base = site.name
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
    limits: ServerLimits | None = None,
) -> int:
    stream: IO[str]
    if log_path is None:
        stream = sys.stdout
        with contextlib.suppress(AttributeError, ValueError):
            sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    else:
        try:
            stream = open(log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise UserError(f"--log-file {log_path}: cannot append to it: {exc.strerror or exc}") from None
    logsafe.install()
    try:
        server = LiveServer(scenario, keys, speed=speed, epoch=epoch, log_stream=stream, limits=limits)
        asyncio.run(run_server(server, host, port))
    finally:
        if log_path is not None:
            stream.close()
    return 0


__all__ = ["LivePayoutService", "LiveServer", "run_server", "serve"]
