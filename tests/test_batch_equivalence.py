"""Batch request simulation keeps the event-by-event model's meaning (simulator/batch.py).

The same scenario is simulated both ways with fixed seeds. Per-scrape counter increments are
compared pairwise (same scrape, same rate): the mean difference must lie within four standard
errors and within 3 % of the mean. Histogram bucket counts must pass a chi-square test of
homogeneity (p > 0.001) and bucket shares agree within 0.01. The token-bucket closed form must
make the same decisions as the reference one-request-at-a-time limiter.
"""

from __future__ import annotations

import io
import json
import math
from bisect import bisect_left, bisect_right

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from scipy.stats import chi2_contingency

from simulator.batch import bucket_index, poisson_tail, token_buckets
from simulator.cli import build_parser
from simulator.metrics import ProcessGauge, collect_samples, make_metrics
from simulator.model import SimulationResult, simulate
from simulator.ratelimit import RateLimiter
from simulator.scenario import scenario_from_dict

# The database slowdown makes its polls contend for the pool (event by event in both modes) without
# overloading it: an overloaded pool's time-outs would be a random walk dominating every sum.
SCENARIO = {
    "name": "equivalence",
    "start": "2026-01-06T06:00:00Z",
    "duration": "6h",
    "seed": 5,
    "load": {"api_rate": 6.0, "payout_rate": 0.02, "bursts": {"per_day": 0}, "clients_per_role": 40},
    "incidents": [
        {"kind": "client_flood", "start": "1h", "duration": "20m", "params": {"rate": 12}},
        {"kind": "credential_stuffing", "start": "2h", "duration": "15m", "params": {"rate": 10}},
        {"kind": "database_slowdown", "start": "3h", "duration": "20m", "params": {"factor": 100}},
        {"kind": "service_crash", "start": "4h", "duration": "3m"},
        {"kind": "cpu_saturation", "start": "5h", "duration": "20m"},
    ],
}


@pytest.fixture(scope="module")
def runs() -> dict[str, SimulationResult]:
    sc = scenario_from_dict(SCENARIO)
    return {mode: simulate(sc, mode=mode) for mode in ("batch", "events")}


def _values(result: SimulationResult, name: str, **labels: str) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, values) of the one matching series, stale markers and gaps as NaN-free rows."""
    (series,) = [
        s
        for s in result.store
        if dict(s.labels)["__name__"] == name and labels.items() <= dict(s.labels).items()
    ]
    keep = ~np.isnan(series.values)
    return series.timestamps[keep], series.values[keep]


def _increments(result: SimulationResult, name: str, **labels: str) -> dict[int, float]:
    """Per-scrape increase keyed by the later scrape's timestamp (a counter reset restarts it)."""
    ts, vs = _values(result, name, **labels)
    diffs = np.diff(vs)
    diffs = np.where(diffs < 0, vs[1:], diffs)
    return dict(zip(ts[1:].tolist(), diffs.tolist(), strict=True))


COUNTERS = [
    ("slo_total_requests_total", {}),
    ("slo_successful_requests_total", {}),
    ("tron_authentication_failures_total", {"failure_type": "unauthorized"}),
    ("tron_database_operations_duration_seconds_count", {"operation": "find"}),
    ("slo_request_duration_seconds_sum", {}),
]


@pytest.mark.parametrize(("name", "labels"), COUNTERS, ids=[c[0] for c in COUNTERS])
def test_per_scrape_increments_agree(
    runs: dict[str, SimulationResult], name: str, labels: dict[str, str]
) -> None:
    batch, events = (_increments(runs[m], name, **labels) for m in ("batch", "events"))
    common = sorted(set(batch) & set(events))
    assert len(common) > 1000
    diff = np.array([batch[t] - events[t] for t in common])
    se = diff.std(ddof=1) / math.sqrt(diff.size)
    assert abs(diff.mean()) < 4 * se, (diff.mean(), se)
    mean = np.mean([events[t] for t in common])
    assert abs(diff.mean()) < 0.03 * mean, (diff.mean(), mean)


def test_rate_limit_violations_agree(runs: dict[str, SimulationResult]) -> None:
    # The flood's client is far over its limit: its refusals follow the token rate exactly.
    totals = {}
    for mode, result in runs.items():
        _, vs = _values(
            result,
            "tron_rate_limit_violations_total",
            user_type="user",
            endpoint="/api/payment/payouts/{payout_id}",
        )
        totals[mode] = vs.max()
    flood = 12.0 * 1200  # requests of the flood; the bucket lets 2/s (+10 burst) through
    expected = flood - 2.0 * 1200 - 10
    for total in totals.values():
        assert math.isclose(total, expected, rel_tol=0.03), totals


def _bucket_counts(result: SimulationResult, name: str, **labels: str) -> np.ndarray:
    """Raw (non-cumulative) counts per bucket, summed over the run's processes."""
    buckets = [
        s
        for s in result.store
        if dict(s.labels)["__name__"] == name + "_bucket" and labels.items() <= dict(s.labels).items()
    ]
    buckets.sort(key=lambda s: float(dict(s.labels)["le"]))
    cumulative = []
    for s in buckets:
        inc = _increments_of(s.values)
        cumulative.append(inc)
    c = np.array(cumulative)
    return np.diff(np.r_[0.0, c])


def _increments_of(values: np.ndarray) -> float:
    v = values[~np.isnan(values)]
    d = np.diff(v)
    return float(v[0] + np.where(d < 0, v[1:], d).sum())


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("slo_request_duration_seconds", {}),
        ("tron_database_operations_duration_seconds", {"operation": "find"}),
    ],
)
def test_histogram_bucket_shares_agree(
    runs: dict[str, SimulationResult], name: str, labels: dict[str, str]
) -> None:
    counts = np.array([_bucket_counts(runs[m], name, **labels) for m in ("batch", "events")])
    used = counts.sum(axis=0) > 0
    _, p, _, _ = chi2_contingency(counts[:, used])
    assert p > 0.001, counts
    shares = counts / counts.sum(axis=1, keepdims=True)
    assert np.abs(shares[0] - shares[1]).max() < 0.01, shares


def test_run_totals_agree(runs: dict[str, SimulationResult]) -> None:
    b, e = runs["batch"].stats, runs["events"].stats
    for key in ("requests_arrived", "http_200", "http_401", "http_429", "requests_lost_down"):
        # Poisson counts: within four standard deviations of each other.
        assert abs(b[key] - e[key]) < 4 * math.sqrt(b[key] + e[key]), (key, b[key], e[key])


def test_token_buckets_decide_like_the_reference_limiter() -> None:
    rng = np.random.default_rng(3)
    rates, bursts = np.array([2.0, 10.0, 0.5]), np.array([10.0, 30.0, 1.0])
    limiter = RateLimiter({str(r): (rates[r], bursts[r]) for r in range(3)})
    width = 8
    tokens = np.repeat(bursts, width)
    last = np.zeros(3 * width)
    start = 0.0
    for heavy in (0.5, 5.0, 40.0, 3.0):  # chunks of changing load, state carried across them
        n = int(heavy * 60)
        t = np.sort(start + rng.random(n) * 60.0)
        role = rng.integers(0, 3, n)
        client = np.minimum((rng.random(n) ** 3 * width).astype(np.int64), width - 1)
        key = role * width + client
        got = token_buckets(t, key, rates[role], bursts[role], tokens, last)
        want = [limiter.allow(str(r), int(c), float(x)) for x, r, c in zip(t, role, client, strict=True)]
        assert got.tolist() == want
        assert 0 < got.sum() <= n
        start += 60.0
    assert not got.all()  # the heavy chunks did refuse requests


def test_poisson_tail_by_hand() -> None:
    assert math.isclose(poisson_tail(1.0, 1), 1 - math.exp(-1))
    assert math.isclose(poisson_tail(2.0, 3), 1 - 5 * math.exp(-2))
    assert poisson_tail(0.0, 1) == 0.0


def test_process_gauge_exposes_like_gauge() -> None:
    text = []
    for cls in (Gauge, ProcessGauge):
        reg = CollectorRegistry()
        g = cls("tron_memory_usage_bytes", "Memory usage in bytes", registry=reg)
        g.set(123.5)
        g.set(7)
        text.append(generate_latest(reg))
    assert text[0] == text[1]


def test_batch_log_is_in_time_order_with_one_event_per_auth_failure() -> None:
    sc = scenario_from_dict({**SCENARIO, "duration": "2h15m", "incidents": SCENARIO["incidents"][1:2]})
    stream = io.StringIO()
    result = simulate(sc, log_stream=stream)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    auth = [e for e in events if e.get("security_event", "").startswith("authentication_")]
    assert len(auth) == result.stats["http_401"] + result.stats["http_403"]


def test_bucket_index_is_bisect_left() -> None:
    bounds = np.array([0.1, 0.5, 1.0, 60.0])
    values = np.array([0.0, 0.1, 0.10000001, 0.5, 0.7, 1.0, 59.9, 60.0, 61.0, 1e9])
    assert bucket_index(bounds, values).tolist() == [bisect_left(bounds.tolist(), v) for v in values]
    assert bucket_index(bounds, values, inclusive=False).tolist() == [
        bisect_right(bounds.tolist(), v) for v in values
    ]


def test_payout_recorders_equal_the_public_api() -> None:
    public, hot = make_metrics(), make_metrics()
    for duration, status in ((0.5, "confirmed"), (45.0, "failed"), (1e4, "rejected"), (5.0, "confirmed")):
        public.payout_requests_total.labels("kyc", "high", status).inc()
        hot.hot.payout_requests["kyc", "high", status](1.0)
        public.payout_amount_usdt_total.labels("kyc").inc(12.5)
        hot.hot.payout_amount["kyc"](12.5)
        public.payout_processing_duration_seconds.labels("kyc", status).observe(duration)
        hot.hot.payout_processing["kyc", status](duration)
        public.slo_payout_duration_seconds.observe(duration)
        hot.hot.payout_duration(duration)
    assert collect_samples(hot.registry) == collect_samples(public.registry)


def test_events_mode_is_selectable() -> None:
    args = build_parser().parse_args(["run", "s.yaml", "--out", "r", "--simulation", "events"])
    assert args.simulation == "events"
    assert build_parser().parse_args(["run", "s.yaml", "--out", "r"]).simulation == "batch"
    with pytest.raises(ValueError, match="mode"):
        simulate(scenario_from_dict(SCENARIO), mode="fast")
