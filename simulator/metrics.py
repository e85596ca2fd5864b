"""The seed's metric families on a per-run registry, and a fast snapshot of their values.

Names, types, label names and buckets are those of the seed's ``metrics.py`` (18 ``tron_*``
families) and ``slo_monitor.py`` (4 ``slo_*`` families). Every label combination the service can
produce is initialised at start, as a well-behaved exporter does, so series exist (at 0) before
their first event and ``rate()`` sees the first increment.

Label values (docs/reference-service.md): router_type v0/kyc, priority normal/high, status
confirmed/failed/rejected; TRON operations and error types as in docs/tron-network.md. Two choices
where the seed is loose: ``endpoint`` of rate-limit violations is the route template, not the
raw path (the seed's ``request.url.path`` puts every payout id into a label: unbounded
cardinality), and database ``operation`` is ``insert``/``update``/``find``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

import numpy as np
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.utils import floatToGoString

from sloanalysis.store import Labels

ROUTER_TYPES = ("v0", "kyc")
PRIORITIES = ("normal", "high")
PAYOUT_STATUSES = ("confirmed", "failed", "rejected")
DB_OPERATIONS = ("insert", "update", "find")
AUTH_FAILURES = ("unauthorized", "forbidden")
ENDPOINTS = ("/api/payment/payouts", "/api/payment/payouts/{payout_id}")
USER_TYPES = ("user", "merchant", "admin")
NETWORK_ERRORS: dict[str, tuple[str, ...]] = {
    # Which error types each operation can produce (docs/tron-network.md).
    "get_balance": ("timeout", "node_unavailable", "server_busy", "rate_limited"),
    "broadcast": (
        "timeout",
        "node_unavailable",
        "server_busy",
        "rate_limited",
        "bandwidth_exceeded",
        "expired",
    ),
    "get_transaction_info": (
        "timeout",
        "node_unavailable",
        "server_busy",
        "rate_limited",
        "out_of_energy",
        "reverted",
    ),
}

PAYOUT_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
NETWORK_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
DATABASE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0)
SLO_REQUEST_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SLO_PAYOUT_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ProcessGauge(Gauge):
    """A ``Gauge`` whose ``set`` writes the value cell directly.

    The service sets about ten gauges at every scrape (172,800 scrapes in 30 days at 15 s); the
    public call checks observability and takes a lock around one float assignment, which is
    atomic under the GIL anyway, so live mode's ``/metrics`` thread still reads whole values.
    Exposition is unchanged (``tests/test_metrics_catalog.py`` compares it with ``Gauge``).
    """

    def set(self, value: float) -> None:
        self._value._value = float(value)


@dataclass
class PayoutMetrics:
    """The 22 families, registered on ``registry``, with every known child initialised."""

    registry: CollectorRegistry
    payout_requests_total: Counter
    payout_amount_usdt_total: Counter
    payout_processing_duration_seconds: Histogram
    circuit_breaker_status: Gauge
    daily_limit_usage_usdt: Gauge
    hourly_limit_usage_usdt: Gauge
    pending_payouts_count: Gauge
    confirmed_payouts_count: Gauge
    failed_payouts_count: Gauge
    tron_network_latency_seconds: Histogram
    tron_network_errors_total: Counter
    database_connections_active: Gauge
    database_operations_duration_seconds: Histogram
    authentication_failures_total: Counter
    rate_limit_violations_total: Counter
    memory_usage_bytes: Gauge
    cpu_usage_percent: Gauge
    disk_usage_bytes: Gauge
    slo_total_requests: Counter
    slo_successful_requests: Counter
    slo_request_duration_seconds: Histogram
    slo_payout_duration_seconds: Histogram
    snapshot: Snapshot = field(init=False)
    hot: HotPath = field(init=False)

    def __post_init__(self) -> None:
        self.snapshot = Snapshot(self)
        self.hot = HotPath(self)

    def families(self) -> list[Counter | Gauge | Histogram]:
        """The collectors in registration order (the order ``registry.collect()`` uses)."""
        skip = {"registry", "snapshot", "hot"}
        return [getattr(self, f.name) for f in fields(self) if f.name not in skip]


def make_metrics(registry: CollectorRegistry | None = None) -> PayoutMetrics:
    """Create the families on ``registry`` (a fresh one by default); never the global registry.

    ``_created`` series are switched off: prometheus_client only offers a process-wide switch.

    Long because it is declarative: one constructor per family of the seed's catalog, in the
    catalog's order, so the code reads against the specification line by line.
    """
    prometheus_client.disable_created_metrics()
    reg = registry if registry is not None else CollectorRegistry(auto_describe=True)
    m = PayoutMetrics(
        registry=reg,
        payout_requests_total=Counter(
            "tron_payment_requests_total",
            "Total payout requests",
            ["router_type", "priority", "status"],
            registry=reg,
        ),
        payout_amount_usdt_total=Counter(
            "tron_payout_amount_usdt_total", "Total payout amount in USDT", ["router_type"], registry=reg
        ),
        payout_processing_duration_seconds=Histogram(
            "tron_payout_processing_duration_seconds",
            "Time spent processing payouts",
            ["router_type", "status"],
            buckets=PAYOUT_BUCKETS,
            registry=reg,
        ),
        circuit_breaker_status=ProcessGauge(
            "tron_circuit_breaker_status",
            "Circuit breaker status (0=closed, 1=open, 2=half_open)",
            registry=reg,
        ),
        daily_limit_usage_usdt=ProcessGauge(
            "tron_daily_limit_usage_usdt", "Current daily limit usage in USDT", registry=reg
        ),
        hourly_limit_usage_usdt=ProcessGauge(
            "tron_hourly_limit_usage_usdt", "Current hourly limit usage in USDT", registry=reg
        ),
        pending_payouts_count=ProcessGauge(
            "tron_pending_payouts_count", "Number of pending payouts", registry=reg
        ),
        confirmed_payouts_count=ProcessGauge(
            "tron_confirmed_payouts_count", "Number of confirmed payouts", registry=reg
        ),
        failed_payouts_count=ProcessGauge(
            "tron_failed_payouts_count", "Number of failed payouts", registry=reg
        ),
        tron_network_latency_seconds=Histogram(
            "tron_network_latency_seconds",
            "TRON network request latency",
            ["operation"],
            buckets=NETWORK_BUCKETS,
            registry=reg,
        ),
        tron_network_errors_total=Counter(
            "tron_network_errors_total",
            "Total TRON network errors",
            ["error_type", "operation"],
            registry=reg,
        ),
        database_connections_active=ProcessGauge(
            "tron_database_connections_active", "Number of active database connections", registry=reg
        ),
        database_operations_duration_seconds=Histogram(
            "tron_database_operations_duration_seconds",
            "Database operation duration",
            ["operation"],
            buckets=DATABASE_BUCKETS,
            registry=reg,
        ),
        authentication_failures_total=Counter(
            "tron_authentication_failures_total",
            "Total authentication failures",
            ["failure_type"],
            registry=reg,
        ),
        rate_limit_violations_total=Counter(
            "tron_rate_limit_violations_total",
            "Total rate limit violations",
            ["endpoint", "user_type"],
            registry=reg,
        ),
        memory_usage_bytes=ProcessGauge("tron_memory_usage_bytes", "Memory usage in bytes", registry=reg),
        cpu_usage_percent=ProcessGauge("tron_cpu_usage_percent", "CPU usage percentage", registry=reg),
        disk_usage_bytes=ProcessGauge("tron_disk_usage_bytes", "Disk usage in bytes", registry=reg),
        slo_total_requests=Counter("slo_total_requests", "Total requests for SLO calculation", registry=reg),
        slo_successful_requests=Counter(
            "slo_successful_requests", "Successful requests for SLO calculation", registry=reg
        ),
        slo_request_duration_seconds=Histogram(
            "slo_request_duration_seconds",
            "Request duration for SLO calculation",
            buckets=SLO_REQUEST_BUCKETS,
            registry=reg,
        ),
        slo_payout_duration_seconds=Histogram(
            "slo_payout_duration_seconds",
            "Payout duration for SLO calculation",
            buckets=SLO_PAYOUT_BUCKETS,
            registry=reg,
        ),
    )
    return m


def _initial_children(m: PayoutMetrics) -> list[tuple[Any, tuple[str, ...]]]:
    """(family, label values) of every child the service can produce, in a fixed order."""
    out: list[tuple[Any, tuple[str, ...]]] = []
    out += [
        (m.payout_requests_total, (r, p, s))
        for r in ROUTER_TYPES
        for p in PRIORITIES
        for s in PAYOUT_STATUSES
    ]
    out += [(m.payout_amount_usdt_total, (r,)) for r in ROUTER_TYPES]
    out += [(m.payout_processing_duration_seconds, (r, s)) for r in ROUTER_TYPES for s in PAYOUT_STATUSES]
    out += [(m.tron_network_latency_seconds, (op,)) for op in NETWORK_ERRORS]
    out += [(m.tron_network_errors_total, (e, op)) for op, errs in NETWORK_ERRORS.items() for e in errs]
    out += [(m.database_operations_duration_seconds, (op,)) for op in DB_OPERATIONS]
    out += [(m.authentication_failures_total, (f,)) for f in AUTH_FAILURES]
    out += [(m.rate_limit_violations_total, (e, u)) for e in ENDPOINTS for u in USER_TYPES]
    return out


class Snapshot:
    """Reads every sample of the registry as ``registry.collect()`` would, without building objects.

    ``collect()`` costs about 450 us for these ~200 samples (it builds a Metric and Sample tuple
    per sample); a scrape every 15 s over 30 days is 172,800 of them, over a minute of the run.
    This reads the children's value cells directly (prometheus_client's ``_value``, ``_buckets``
    and ``_sum``), raw and non-cumulative, and :meth:`finish` turns bucket columns cumulative and
    derives ``_count`` for all scrapes at once. ``tests/test_metrics.py`` checks that it equals
    ``collect()`` sample for sample, so a change in prometheus_client's internals cannot go unseen.
    """

    def __init__(self, metrics: PayoutMetrics) -> None:
        for family, values in _initial_children(metrics):
            family.labels(*values)
        self.labels: list[Labels] = []
        self._cells: list[Any] = []  # prometheus_client value cells (``_value`` holds the number)
        self._histograms: list[tuple[int, int]] = []  # (first bucket column, number of buckets incl. +Inf)
        for collector in metrics.families():
            self._add_family(collector, collector._type)

    def _add_family(self, collector: Any, kind: str) -> None:
        name: str = collector._name
        labelnames: tuple[str, ...] = collector._labelnames
        children = sorted(collector._metrics.items()) if labelnames else [((), collector)]
        exposed = name + "_total" if kind == "counter" else name
        for values, child in children:
            base = dict(zip(labelnames, values, strict=True))
            if kind == "histogram":
                first = len(self._cells)
                bounds = child._upper_bounds
                for bound, cell in zip(bounds, child._buckets, strict=True):
                    self._push({"__name__": f"{name}_bucket", **base, "le": floatToGoString(bound)}, cell)
                self._histograms.append((first, len(bounds)))
                self._push({"__name__": f"{name}_count", **base}, _DERIVED)  # filled in by finish()
                self._push({"__name__": f"{name}_sum", **base}, child._sum)
            else:
                self._push({"__name__": exposed, **base}, child._value)

    def _push(self, mapping: dict[str, str], cell: Any) -> None:
        self.labels.append(tuple(sorted(mapping.items())))
        self._cells.append(cell)

    def column(self, cell: Any) -> int:
        """The column of one value cell (a child's ``_value``, bucket or ``_sum``)."""
        return next(i for i, c in enumerate(self._cells) if c is cell)

    def read(self) -> list[float]:
        """Raw cell values in column order (bucket columns not yet cumulative).

        Reads ``_value`` without the cell's lock: the simulation runs on one thread.
        """
        return list(map(_VALUE, self._cells))

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """Cumulative buckets and ``_count`` for a (scrapes x columns) array of :meth:`read` rows."""
        out = np.array(raw, dtype=np.float64, copy=True)
        for first, n in self._histograms:
            block = np.cumsum(out[:, first : first + n], axis=1)
            out[:, first : first + n] = block
            out[:, first + n] = block[:, -1]
        return out


class _Derived:
    _value = 0.0


_DERIVED = _Derived()
_VALUE = attrgetter("_value")


def collect_samples(registry: CollectorRegistry) -> dict[Labels, float]:
    """Every sample of ``registry`` through the public ``collect()``, keyed by label set."""
    out: dict[Labels, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            out[tuple(sorted({"__name__": sample.name, **sample.labels}.items()))] = float(sample.value)
    return out


def histogram_observer(child: Any) -> Callable[[float], None]:
    """``child.observe`` for the single-threaded simulation: same cells, a fraction of the cost.

    The public call checks its argument, scans the buckets linearly and takes a lock per cell;
    the model observes millions of latencies on one thread. This adds to the value cells
    (``_value`` of prometheus_client's value class) directly: the first bucket whose bound is >=
    the value, and the sum. ``tests/test_metrics_catalog.py`` checks the result against the
    public ``observe`` through ``collect()``. Live mode, which serves /metrics from another
    thread, uses the public, locked calls.
    """
    bounds = list(child._upper_bounds)
    cells = list(child._buckets)
    total = child._sum

    def observe(value: float) -> None:
        cells[bisect_left(bounds, value)]._value += 1.0
        total._value += value

    return observe


def counter_incrementer(child: Any) -> Callable[[float], None]:
    """``child.inc`` for the single-threaded simulation (see :func:`histogram_observer`)."""
    cell = child._value

    def inc(amount: float) -> None:
        cell._value += amount

    return inc


class HotPath:
    """Pre-resolved recorders for the updates made on every API request."""

    def __init__(self, m: PayoutMetrics) -> None:
        self.requests_total = counter_incrementer(m.slo_total_requests)
        self.requests_ok = counter_incrementer(m.slo_successful_requests)
        self.request_duration = histogram_observer(m.slo_request_duration_seconds)
        self.db_find = histogram_observer(m.database_operations_duration_seconds.labels("find"))
        self.auth_failures = {
            f: counter_incrementer(m.authentication_failures_total.labels(f)) for f in AUTH_FAILURES
        }
        self.rate_limited = {
            (e, u): counter_incrementer(m.rate_limit_violations_total.labels(e, u))
            for e in ENDPOINTS
            for u in USER_TYPES
        }
        # A payout's final state (PayoutService.finalize).
        self.payout_requests = {
            (r, p, s): counter_incrementer(m.payout_requests_total.labels(r, p, s))
            for r in ROUTER_TYPES
            for p in PRIORITIES
            for s in PAYOUT_STATUSES
        }
        self.payout_amount = {
            r: counter_incrementer(m.payout_amount_usdt_total.labels(r)) for r in ROUTER_TYPES
        }
        self.payout_processing = {
            (r, s): histogram_observer(m.payout_processing_duration_seconds.labels(r, s))
            for r in ROUTER_TYPES
            for s in PAYOUT_STATUSES
        }
        self.payout_duration = histogram_observer(m.slo_payout_duration_seconds)
