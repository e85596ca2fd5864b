"""What one replication measures: throughput, success rate, processing-time and queue-wait
percentiles and breaker time, from the per-payout records of one simulation."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from simulator.model import PayoutRecords
from simulator.service import PAYOUT_STATUS

__all__ = ["FORMAT_VERSION", "METRICS", "PROPORTION_COUNTS", "replication_metrics"]

FORMAT_VERSION = 2  # part of every point's key: bump when the per-replication metrics change
# Counts behind the proportions, so intervals can pool them (see :mod:`.stats`).
PROPORTION_COUNTS = {"success_rate": ("confirmed", "finished"), "p_wait": ("waited", "asked")}
METRICS = (
    "throughput",
    "success_rate",
    "processing_p50",
    "processing_p95",
    "processing_p99",
    "queue_wait_p50",
    "queue_wait_p95",
    "queue_wait_p99",
    "queue_wait_mean",
    "p_wait",
    "breaker_open_s",
    "payouts",
    "pending_at_end",
    "confirmed",
    "finished",
    "waited",
    "asked",
)


def replication_metrics(
    payouts: PayoutRecords, breaker_seconds: Mapping[str, float], duration: float, warmup: float
) -> dict[str, float]:
    """Per-replication figures over payouts submitted after ``warmup``.

    Success rate: confirmed among finished payouts (confirmed, failed, rejected). Processing-time
    percentiles: processed (confirmed, failed) and still pending payouts, pending ones at their
    age at the end (a lower bound, so an overloaded point cannot look fast by never finishing).
    Queue waits: payouts that asked for a worker. Throughput: confirmations per second completed
    after ``warmup``. Breaker time: seconds not closed over the whole run. Counts: confirmed and
    finished payouts (success rate = confirmed / finished), payouts that waited and that asked for
    a worker (``p_wait`` = waited / asked).
    """
    status = payouts.status
    inside = payouts.submitted >= warmup
    confirmed = status == PAYOUT_STATUS["confirmed"]
    finished = status != PAYOUT_STATUS["pending"]
    timed = inside & (status != PAYOUT_STATUS["rejected"])
    completed_at = payouts.submitted + payouts.processing
    waits = payouts.queue_wait[inside & ~np.isnan(payouts.queue_wait)]
    out: dict[str, float] = {
        "throughput": float(np.count_nonzero(confirmed & (completed_at >= warmup))) / (duration - warmup),
        "success_rate": _ratio(
            float(np.count_nonzero(inside & confirmed)), float(np.count_nonzero(inside & finished))
        ),
    }
    for name, values in (("processing", payouts.processing[timed]), ("queue_wait", waits)):
        pct = np.percentile(values, [50, 95, 99]) if values.size else [math.nan] * 3
        for q, v in zip((50, 95, 99), pct, strict=True):
            out[f"{name}_p{q}"] = float(v)
    out["queue_wait_mean"] = float(waits.mean()) if waits.size else math.nan
    out["p_wait"] = float(np.count_nonzero(waits > 0) / waits.size) if waits.size else math.nan
    out["breaker_open_s"] = float(breaker_seconds.get("open", 0.0) + breaker_seconds.get("half_open", 0.0))
    out["payouts"] = float(np.count_nonzero(inside))
    out["pending_at_end"] = float(np.count_nonzero(~finished))
    out["confirmed"] = float(np.count_nonzero(inside & confirmed))
    out["finished"] = float(np.count_nonzero(inside & finished))
    out["waited"] = float(np.count_nonzero(waits > 0))
    out["asked"] = float(waits.size)
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan
