"""The seed's ``/health``, ``/ready`` and ``/live`` bodies, built from the service's state.

Shapes follow the seed's ``health.py``. Two deliberate differences: ``/ready`` answers 503 when
not ready (the seed answers 200 either way, which a Kubernetes readiness probe reads as ready),
and ``dependencies`` is empty (the reference service has no Tor proxy to check).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from simulator.breaker import CircuitBreaker
from simulator.limits import PayoutLimits
from simulator.network import CallResult

SERVICE = "tron-payment-service"
VERSION = "1.0.0"
HEALTH_ADDRESS = "TLyqzVGLV1srkB7dToTAEqgDSfPtXRJZYH"  # the seed's balance-check address


def timestamp() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()


def tron_check(result: CallResult) -> dict[str, Any]:
    if result.error:
        return {"status": "unhealthy", "network": "mainnet", "error": result.error, "response_time": None}
    return {
        "status": "healthy",
        "network": "mainnet",
        "response_time": round(result.latency, 6),
        "balance_check": "success",
    }


def database_check(duration: float, failed: bool) -> dict[str, Any]:
    if failed:
        return {"status": "unhealthy", "connection": "failed", "error": "timeout", "response_time": None}
    return {"status": "healthy", "connection": "active", "response_time": round(duration, 6)}


def breaker_check(breaker: CircuitBreaker, limits: PayoutLimits, epoch: float) -> dict[str, Any]:
    daily, hourly = limits.usage(epoch)
    return {
        "status": breaker.state.label,
        "daily_limit_remaining": round(limits.daily_limit - daily, 2),
        "hourly_limit_remaining": round(limits.hourly_limit - hourly, 2),
        "failure_count": breaker.failure_count,
    }


def health_body(tron: dict[str, Any], mongo: dict[str, Any], breaker: dict[str, Any]) -> dict[str, Any]:
    unhealthy = tron["status"] == "unhealthy" or mongo["status"] == "unhealthy" or breaker["status"] == "open"
    return {
        "status": "unhealthy" if unhealthy else "healthy",
        "service": SERVICE,
        "version": VERSION,
        "timestamp": timestamp(),
        "checks": {"tron": tron, "mongo": mongo, "circuit_breaker": breaker, "dependencies": {}},
    }


def ready_body(mongo: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if mongo["status"] == "healthy":
        return 200, {"status": "ready", "timestamp": timestamp()}
    return 503, {"status": "not_ready", "error": mongo.get("error", "database"), "timestamp": timestamp()}


def live_body() -> dict[str, Any]:
    return {"status": "alive", "timestamp": timestamp()}
