"""Traffic shape and incident timeline: what the world does to the service, as pure data.

Rates are piecewise constant over one-minute steps (diurnal curve, weekend factor, bursts), so
arrivals are an exact non-homogeneous Poisson process per step. Incidents become
:class:`Conditions`: the combined effect of every incident active at an instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from simulator.scenario import Incident, Load, Scenario, incident_window

RATE_STEP = 60.0


@dataclass(frozen=True)
class Conditions:
    """The service's environment at an instant; the neutral value means no incident."""

    latency_factor: float = 1.0
    outage_error: str = ""
    blocks_halted: bool = False
    extra_failure_operation: str = ""
    extra_failure_type: str = ""
    extra_failure_probability: float = 0.0
    rate_limited_probability: float = 0.0
    db_factor: float = 1.0
    handler_factor: float = 1.0
    cpu_floor: float = 0.0
    stuffing_rate: float = 0.0
    flood_rate: float = 0.0
    flood_role: str = "user"
    payout_rate_factor: float = 1.0
    amount_factor: float = 1.0
    leak_mb_per_hour: float = 0.0
    down: bool = False


NEUTRAL = Conditions()


def apply_incident(c: Conditions, incident: Incident) -> Conditions:
    """Conditions with one more active incident (effects combine: factors multiply, rates add)."""
    p = incident.params
    match incident.kind:
        case "tron_outage":
            return replace(
                c,
                outage_error=str(p.get("error_type", "node_unavailable")),
                blocks_halted=c.blocks_halted or bool(p.get("blocks_halted", True)),
            )
        case "partial_failure":
            return replace(
                c,
                extra_failure_operation=str(p.get("operation", "broadcast")),
                extra_failure_type=str(p.get("error_type", "server_busy")),
                extra_failure_probability=max(
                    c.extra_failure_probability, float(p.get("failure_probability", 0.2))
                ),
            )
        case "latency_degradation":
            return replace(c, latency_factor=c.latency_factor * float(p.get("factor", 20.0)))
        case "node_rate_limiting":
            return replace(
                c, rate_limited_probability=max(c.rate_limited_probability, float(p.get("probability", 0.5)))
            )
        case "database_slowdown":
            return replace(c, db_factor=c.db_factor * float(p.get("factor", 50.0)))
        case "credential_stuffing":
            return replace(c, stuffing_rate=c.stuffing_rate + float(p.get("rate", 40.0)))
        case "client_flood":
            return replace(
                c, flood_rate=c.flood_rate + float(p.get("rate", 30.0)), flood_role=str(p.get("role", "user"))
            )
        case "payout_surge":
            return replace(
                c,
                payout_rate_factor=c.payout_rate_factor * float(p.get("rate_factor", 8.0)),
                amount_factor=c.amount_factor * float(p.get("amount_factor", 3.0)),
            )
        case "service_crash":
            return replace(c, down=True)
        case "memory_leak":
            return replace(c, leak_mb_per_hour=c.leak_mb_per_hour + float(p.get("mb_per_hour", 250.0)))
        case "cpu_saturation":
            return replace(
                c,
                cpu_floor=max(c.cpu_floor, float(p.get("cpu_percent", 96.0))),
                handler_factor=c.handler_factor * float(p.get("latency_factor", 6.0)),
            )
    raise AssertionError(incident.kind)


@dataclass(frozen=True)
class TimelineEntry:
    at: float  # seconds from run start
    conditions: Conditions


def incident_timeline(scenario: Scenario) -> list[TimelineEntry]:
    """Conditions after each incident boundary, in time order (first entry at 0)."""
    windows = [(*incident_window(scenario, inc), inc) for inc in scenario.incidents]
    edges = sorted({0.0} | {w[0] for w in windows} | {w[1] for w in windows})
    out: list[TimelineEntry] = []
    for t in edges:
        if t >= scenario.duration:
            continue
        c = NEUTRAL
        for begin, end, inc in windows:
            if begin <= t < end:
                c = apply_incident(c, inc)
        if not out or out[-1].conditions != c:
            out.append(TimelineEntry(t, c))
    return out


def halt_windows(scenario: Scenario) -> list[tuple[float, float]]:
    """(start, end) of block-production halts, seconds from run start."""
    out = []
    for inc in scenario.incidents:
        if inc.kind == "tron_outage" and bool(inc.params.get("blocks_halted", True)):
            out.append(incident_window(scenario, inc))
    return sorted(out)


def burst_windows(load: Load, duration: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """Random burst windows (Poisson count, uniform start times) over the run."""
    n = int(rng.poisson(load.bursts.per_day * duration / 86400.0))
    starts = np.sort(rng.uniform(0.0, duration, n))
    return [(float(s), float(s) + load.bursts.duration) for s in starts]


def rate_multipliers(scenario: Scenario, bursts: list[tuple[float, float]]) -> np.ndarray:
    """Traffic multiplier per one-minute step: diurnal curve x weekend factor (mean 1) x bursts."""
    steps = math.ceil(scenario.duration / RATE_STEP)
    mid = (np.arange(steps) + 0.5) * RATE_STEP
    epoch = scenario.start.timestamp() + mid
    hour = (epoch % 86400.0) / 3600.0
    d = scenario.load.diurnal
    mult = 1.0 + d.amplitude * np.cos(2.0 * np.pi * (hour - d.peak_hour) / 24.0)
    weekday = ((epoch // 86400.0).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    mult = np.where(weekday >= 5, mult * d.weekend_factor, mult)
    mult = mult / mult.mean()  # the scenario's rates are means over the run, before bursts
    for begin, end in bursts:
        inside = (mid >= begin) & (mid < end)
        mult = np.where(inside, mult * scenario.load.bursts.multiplier, mult)
    return mult
