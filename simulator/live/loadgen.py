"""``tronsim load``: drive a running service with a scenario's traffic and incidents, in real time.

Arrivals are the simulation's own arrival processes (:func:`simulator.model.arrivals`: a
non-homogeneous Poisson process per stream, minute-step diurnal rates, bursts, incident rates)
run on a :class:`~simulator.live.realtime.RealtimeEnv` aligned with the service's epoch and speed,
which it reads from ``GET /admin/timeline``. So the load generator and the service agree on
when each incident happens: the service applies the network, database and crash effects, the
load generator the traffic effects (credential stuffing, client floods, payout surges).

Request mix after the scenario's ``load``: status polls and payout submissions, a share without
a valid key (401), a share polling other clients' payouts (403), a share of invalid bodies (422).
Bounded: it stops at ``--duration`` or ``--max-requests``, whichever comes first, keeps at most
``--concurrency`` requests in flight (arrivals beyond that wait for a slot, and the wait counts
in their latency), and talks to loopback addresses only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import aiohttp
import numpy as np
import simpy

from simulator.live.api import encode_address
from simulator.live.realtime import RealtimeEnv
from simulator.model import arrivals
from simulator.randomness import Draws, cumulative
from simulator.scenario import PRIORITIES, ROLES, ROUTER_TYPES, Scenario
from simulator.service import PAYOUT_ENDPOINT
from simulator.workload import (
    NEUTRAL,
    RATE_STEP,
    Conditions,
    burst_windows,
    incident_timeline,
    rate_multipliers,
)
from sloanalysis.errors import UserError


def check_loopback(url: str, what: str = "--target") -> str:
    """``url`` without a trailing slash, if it is http(s) to a loopback address; else UserError."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UserError(f"{what} {url!r}: expected http://127.0.0.1:PORT")
    host = parsed.hostname
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, parsed.port or 80, proto=socket.IPPROTO_TCP)
        except OSError:
            raise UserError(f"{what} {url!r}: cannot resolve {host!r}") from None
        addresses = {ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}
    if not addresses or not all(a.is_loopback for a in addresses):
        raise UserError(f"{what} {url!r}: not a loopback address (live mode stays on this host)")
    return url.rstrip("/")


@dataclass
class LoadResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)  # requests without an HTTP answer, by error
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests
    wall: float = 0.0
    accepted: dict[str, tuple[str, int]] = field(default_factory=dict)  # payout id -> (role, client)
    dropped: int = 0  # arrivals beyond --max-requests (not sent)

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.latencies, q)) if self.latencies else math.nan

    def rows(self) -> list[dict[str, Any]]:
        answered = sum(self.statuses.values())
        rows: list[dict[str, Any]] = [
            {"measure": "requests sent", "value": self.sent},
            {"measure": "answered", "value": answered},
            {"measure": "lost (no answer)", "value": sum(self.lost.values())},
            {"measure": "wall seconds", "value": round(self.wall, 3)},
            {"measure": "requests per second", "value": round(answered / self.wall, 1) if self.wall else 0.0},
            {"measure": "latency p50 s", "value": round(self.quantile(0.5), 4)},
            {"measure": "latency p95 s", "value": round(self.quantile(0.95), 4)},
            {"measure": "latency p99 s", "value": round(self.quantile(0.99), 4)},
            {"measure": "payouts accepted (202)", "value": len(self.accepted)},
        ]
        rows += [{"measure": f"HTTP {k}", "value": v} for k, v in sorted(self.statuses.items())]
        rows += [{"measure": f"lost: {k}", "value": v} for k, v in sorted(self.lost.items())]
        return rows


class LoadGenerator:
    def __init__(
        self,
        scenario: Scenario,
        target: str,
        keys: dict[str, list[str]],
        *,
        duration: float,
        max_requests: int,
        concurrency: int,
        seed: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.target = check_loopback(target)
        self.keys = keys
        self.duration = duration
        self.max_requests = max_requests
        self.concurrency = concurrency
        self.rng = np.random.default_rng(scenario.seed + 1 if seed is None else seed)
        self.draws = Draws(self.rng)
        load = scenario.load
        self._routers = cumulative(load.router_mix, ROUTER_TYPES)
        self._priorities = cumulative(load.priority_mix, PRIORITIES)
        self._roles = cumulative(load.role_mix, ROLES)
        self.result = LoadResult()
        self._owned: list[str] = []  # accepted payout ids, in order

    # -- what a request is ----------------------------------------------------------------------
    def _client(self, role: str | None = None) -> tuple[str, int, str]:
        role = role or ROLES[self.draws.choice(self._roles)]
        keys = self.keys[role]
        v = self.draws.uniform()
        client = min(len(keys) - 1, int(len(keys) * v * v))  # a few clients send most, as in the model
        return role, client, keys[client]

    def _bad_key(self) -> str:
        return f"tk_user_{int(self.draws.uniform() * 1000)}_{int(self.draws.uniform() * 2**60):x}"

    def _request(self, kind: str, c: Conditions) -> tuple[str, str, dict[str, str], bytes | None]:
        """(method, path, headers, body) for one arrival of ``kind``."""
        load, d = self.scenario.load, self.draws
        if kind == "stuffing":
            return "POST", PAYOUT_ENDPOINT, {"X-API-Key": self._bad_key()}, self._payout_body(c, False)
        if kind == "flood":
            keys = self.keys[c.flood_role]
            pid = self._owned[-1] if self._owned else "po_00000000"
            return "GET", f"{PAYOUT_ENDPOINT}/{pid}", {"X-API-Key": keys[-1]}, None
        u = d.uniform()
        unauthorized = u < load.unauthenticated_share
        forbidden = not unauthorized and u < load.unauthenticated_share + load.forbidden_share
        if kind == "payout":
            key = self._bad_key() if unauthorized else self._client()[2]
            invalid = d.uniform() < load.invalid_payout_share
            return "POST", PAYOUT_ENDPOINT, {"X-API-Key": key}, self._payout_body(c, invalid)
        if not self._owned:
            key = self._bad_key() if unauthorized else self._client()[2]
            return "GET", f"{PAYOUT_ENDPOINT}/po_99999999", {"X-API-Key": key}, None
        pid = self._owned[int(d.uniform() * len(self._owned))]
        role, client = self.result.accepted[pid]
        if unauthorized:
            key = self._bad_key()
        elif forbidden:  # another non-admin client asks for this payout
            other = self.keys["user"]
            key = other[(client + 1) % len(other)] if role == "user" else other[0]
        else:
            key = self.keys[role][client]
        return "GET", f"{PAYOUT_ENDPOINT}/{pid}", {"X-API-Key": key}, None

    def _payout_body(self, c: Conditions, invalid: bool) -> bytes:
        d, a = self.draws, self.scenario.load.amounts
        amount = round(min(a.maximum, max(a.minimum, d.lognormal(a.median, a.sigma) * c.amount_factor)), 2)
        account = bytes(int(d.uniform() * 256) for _ in range(20))
        body = {
            "amount_usdt": -amount if invalid else amount,
            "router_type": ROUTER_TYPES[d.choice(self._routers)],
            "priority": PRIORITIES[d.choice(self._priorities)],
            "recipient": encode_address(account),
        }
        return json.dumps(body).encode()

    # -- sending ---------------------------------------------------------------------------------
    async def _send(
        self, session: aiohttp.ClientSession, slots: asyncio.Semaphore, req: tuple[Any, ...], owner: Any
    ) -> None:
        method, path, headers, body = req
        arrived = time.perf_counter()
        async with slots:
            try:
                async with session.request(
                    method,
                    self.target + path,
                    headers={**headers, "Content-Type": "application/json"} if body else headers,
                    data=body,
                ) as resp:
                    payload = await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.result.lost[type(exc).__name__] += 1
                return
        self.result.latencies.append(time.perf_counter() - arrived)
        self.result.statuses[status] += 1
        if status == 202 and owner is not None:
            try:
                pid = json.loads(payload)["payout_id"]
            except (ValueError, KeyError, TypeError):
                self.result.lost["bad_202_body"] += 1
                return
            self.result.accepted[pid] = owner
            self._owned.append(pid)

    async def run(self) -> LoadResult:
        timeout = aiohttp.ClientTimeout(total=60.0)
        connector = aiohttp.TCPConnector(limit=self.concurrency, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            info = await self._timeline(session)
            env = RealtimeEnv(float(info["speed"]), float(info["epoch"]))
            sc, load = self.scenario, self.scenario.load
            multipliers = rate_multipliers(sc, burst_windows(load, sc.duration, self.rng))
            timeline = incident_timeline(sc)
            steps = [k * RATE_STEP for k in range(1, len(multipliers))]
            change_points = sorted(set(steps) | {e.at for e in timeline if e.at > 0} | {sc.duration})
            slots = asyncio.Semaphore(self.concurrency)
            tasks: set[asyncio.Task[None]] = set()
            started = time.perf_counter()
            deadline = started + self.duration

            def conditions() -> Conditions:
                c = NEUTRAL
                for entry in timeline:
                    if entry.at <= env.now:
                        c = entry.conditions
                return c

            def multiplier(t: float) -> float:
                return float(multipliers[min(max(0, int(t // RATE_STEP)), len(multipliers) - 1)])

            def arrive(kind: str) -> None:
                if self.result.sent >= self.max_requests or time.perf_counter() >= deadline:
                    self.result.dropped += 1
                    return
                c = conditions()
                req = self._request(kind, c)
                owner = None
                if req[0] == "POST" and kind == "payout":
                    key = req[2]["X-API-Key"]
                    parts = key.split("_")
                    owner = (parts[1], int(parts[2])) if key in self.keys.get(parts[1], ()) else None
                self.result.sent += 1
                task = asyncio.get_running_loop().create_task(self._send(session, slots, req, owner))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

            draws, senv = self.draws, cast(simpy.Environment, env)  # the arrival processes' env
            streams: dict[str, Any] = {
                "poll": lambda t: (load.api_rate - load.payout_rate) * multiplier(t),
                "payout": lambda t: load.payout_rate * multiplier(t) * conditions().payout_rate_factor,
                "stuffing": lambda t: conditions().stuffing_rate,
                "flood": lambda t: conditions().flood_rate,
            }
            for kind, rate_at in streams.items():
                env.process(arrivals(senv, rate_at, change_points, draws, partial(arrive, kind)))
            end_of_scenario = started + env.real_delay(sc.duration - env.now)
            while (
                time.perf_counter() < min(deadline, end_of_scenario) and self.result.sent < self.max_requests
            ):
                await asyncio.sleep(0.05)
            await env.cancel_all()
            if tasks:
                await asyncio.wait(set(tasks), timeout=65.0)
            self.result.wall = time.perf_counter() - started
        return self.result

    async def _timeline(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        try:
            async with session.get(self.target + "/admin/timeline") as resp:
                if resp.status != 200:
                    raise UserError(f"{self.target}/admin/timeline answered HTTP {resp.status}")
                info: dict[str, Any] = await resp.json()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise UserError(f"cannot reach the service at {self.target}: {exc}") from None
        if info.get("scenario") != self.scenario.name:
            print(
                f"tronsim load: warning: the service plays scenario {info.get('scenario')!r}, "
                f"this load {self.scenario.name!r}",
                file=sys.stderr,
            )
        return info


def run_load(
    scenario: Scenario,
    target: str,
    keys_path: Path,
    *,
    duration: float,
    max_requests: int,
    concurrency: int,
    seed: int | None = None,
) -> LoadResult:
    try:
        keys = json.loads(keys_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{keys_path}: cannot read API keys (start `tronsim serve` first): {exc}") from None
    if not isinstance(keys, dict) or not all(isinstance(keys.get(r), list) and keys[r] for r in ROLES):
        raise UserError(f"{keys_path}: expected a JSON object with key lists for {', '.join(ROLES)}")
    gen = LoadGenerator(
        scenario,
        target,
        keys,
        duration=duration,
        max_requests=max_requests,
        concurrency=concurrency,
        seed=seed,
    )
    return asyncio.run(gen.run())
