"""The exported families equal the seed's metrics code, written here as data (not imported)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.metrics import collect_samples, make_metrics

# From the seed document (payment_systems/tron_payment_service/metrics.py and slo_monitor.py):
# family as exposed -> (type, label names, bucket bounds or None).
SEED_FAMILIES = {
    "tron_payment_requests": ("counter", ("router_type", "priority", "status"), None),
    "tron_payout_amount_usdt": ("counter", ("router_type",), None),
    "tron_payout_processing_duration_seconds": (
        "histogram",
        ("router_type", "status"),
        (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0),
    ),
    "tron_circuit_breaker_status": ("gauge", (), None),
    "tron_daily_limit_usage_usdt": ("gauge", (), None),
    "tron_hourly_limit_usage_usdt": ("gauge", (), None),
    "tron_pending_payouts_count": ("gauge", (), None),
    "tron_confirmed_payouts_count": ("gauge", (), None),
    "tron_failed_payouts_count": ("gauge", (), None),
    "tron_network_latency_seconds": ("histogram", ("operation",), (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)),
    "tron_network_errors": ("counter", ("error_type", "operation"), None),
    "tron_database_connections_active": ("gauge", (), None),
    "tron_database_operations_duration_seconds": (
        "histogram",
        ("operation",),
        (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0),
    ),
    "tron_authentication_failures": ("counter", ("failure_type",), None),
    "tron_rate_limit_violations": ("counter", ("endpoint", "user_type"), None),
    "tron_memory_usage_bytes": ("gauge", (), None),
    "tron_cpu_usage_percent": ("gauge", (), None),
    "tron_disk_usage_bytes": ("gauge", (), None),
    "slo_total_requests": ("counter", (), None),
    "slo_successful_requests": ("counter", (), None),
    "slo_request_duration_seconds": ("histogram", (), (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)),
    "slo_payout_duration_seconds": ("histogram", (), (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)),
}

# The seed's catalog table lists 17 tron_* families; its code defines one more.
CATALOG_TABLE = {
    "tron_payment_requests_total",
    "tron_payout_amount_usdt_total",
    "tron_pending_payouts_count",
    "tron_confirmed_payouts_count",
    "tron_failed_payouts_count",
    "tron_payout_processing_duration_seconds",
    "tron_network_latency_seconds",
    "tron_database_operations_duration_seconds",
    "tron_circuit_breaker_status",
    "tron_daily_limit_usage_usdt",
    "tron_hourly_limit_usage_usdt",
    "tron_authentication_failures_total",
    "tron_rate_limit_violations_total",
    "tron_memory_usage_bytes",
    "tron_cpu_usage_percent",
    "tron_disk_usage_bytes",
    "tron_database_connections_active",
}


@pytest.fixture(scope="module")
def families() -> dict[str, object]:
    return {f.name: f for f in make_metrics().registry.collect()}


def test_family_names_and_types(families: dict[str, object]) -> None:
    assert {name: f.type for name, f in families.items()} == {n: t for n, (t, _, _) in SEED_FAMILIES.items()}
    tron = [n for n in families if n.startswith("tron_")]
    assert len(tron) == 18 and len(families) == 22


def test_catalog_table_is_the_code_minus_network_errors(families: dict[str, object]) -> None:
    exposed = {
        n + "_total" if SEED_FAMILIES[n][0] == "counter" else n for n in families if n.startswith("tron_")
    }
    assert exposed - CATALOG_TABLE == {"tron_network_errors_total"}
    assert exposed >= CATALOG_TABLE


@pytest.mark.parametrize("name", sorted(SEED_FAMILIES))
def test_label_names_and_buckets(families: dict[str, object], name: str) -> None:
    kind, label_names, buckets = SEED_FAMILIES[name]
    family = families[name]
    samples = family.samples
    assert samples, f"{name} exposes no series at start"
    for s in samples:
        names = set(s.labels) - {"le"}
        assert names == set(label_names), (name, s)
        if kind == "counter":
            assert s.name == f"{name}_total"
    if buckets is not None:
        les = sorted({float(s.labels["le"]) for s in samples if s.name.endswith("_bucket")})
        assert les == [*buckets, float("inf")]
        assert not any(s.name.endswith("_created") for s in samples)


def test_label_values_are_the_designed_vocabulary(families: dict[str, object]) -> None:
    values = {
        (n, k): {s.labels[k] for s in f.samples if k in s.labels}
        for n, f in families.items()
        for k in ("router_type", "priority", "status", "operation", "failure_type", "user_type")
    }
    assert values[("tron_payment_requests", "status")] == {"confirmed", "failed", "rejected"}
    assert values[("tron_payment_requests", "router_type")] == {"v0", "kyc"}
    assert values[("tron_payment_requests", "priority")] == {"normal", "high"}
    assert values[("tron_network_latency_seconds", "operation")] == {
        "get_balance",
        "broadcast",
        "get_transaction_info",
    }
    errors = {s.labels["error_type"] for s in families["tron_network_errors"].samples}
    assert errors == {
        "timeout",
        "node_unavailable",
        "server_busy",
        "rate_limited",
        "bandwidth_exceeded",
        "expired",
        "out_of_energy",
        "reverted",
    }
    assert values[("tron_authentication_failures", "failure_type")] == {"unauthorized", "forbidden"}


def test_fast_snapshot_equals_collect() -> None:
    m = make_metrics()
    m.payout_processing_duration_seconds.labels("kyc", "failed").observe(45.0)
    m.payout_processing_duration_seconds.labels("kyc", "failed").observe(0.05)
    m.slo_request_duration_seconds.observe(1e6)  # lands in +Inf only
    m.tron_network_errors_total.labels("expired", "broadcast").inc(3)
    m.memory_usage_bytes.set(123.5)
    row = np.array([m.snapshot.read()])
    got = dict(zip(m.snapshot.labels, m.snapshot.finish(row)[0], strict=True))
    assert got == collect_samples(m.registry)
    key = (
        ("__name__", "tron_payout_processing_duration_seconds_bucket"),
        ("le", "30.0"),
        ("router_type", "kyc"),
        ("status", "failed"),
    )
    assert got[key] == 1.0  # 0.05 counted, 45 not yet


def test_hot_path_recorders_equal_the_public_api() -> None:
    public, hot = make_metrics(), make_metrics()
    values = [0.0, 0.1, 0.10000001, 2.0, 59.9, 60.0, 1e9]  # on and around bucket bounds
    for v in values:
        public.slo_request_duration_seconds.observe(v)
        hot.hot.request_duration(v)
        public.database_operations_duration_seconds.labels("find").observe(v / 1000)
        hot.hot.db_find(v / 1000)
        public.slo_total_requests.inc()
        hot.hot.requests_total(1.0)
    public.rate_limit_violations_total.labels("/api/payment/payouts", "admin").inc(2)
    hot.hot.rate_limited["/api/payment/payouts", "admin"](2.0)
    public.authentication_failures_total.labels("forbidden").inc()
    hot.hot.auth_failures["forbidden"](1.0)
    assert collect_samples(hot.registry) == collect_samples(public.registry)
