"""Range queries of the seed's alert and dashboard expressions: embedded engine vs a real Prometheus.

    python benchmarks/bench_query.py [RUN_DIR] [--days 30] [--step 15s] [--blocks DIR] [--repeat 3]

    e.g. tronsim run scenarios/reference-30d.yaml --out /tmp/ref30 --openmetrics
         python benchmarks/bench_query.py /tmp/ref30 --blocks /tmp/ref30-blocks

Loads a run directory (its ``samples.parquet``) or, without one, synthesises a store shaped like
the simulator's metrics (``--days`` of 15 s scrapes). Stale markers are dropped from the store
first: OpenMetrics text cannot carry them, so the server holds the data without them, and both
sides must answer over the same samples. The store is written as OpenMetrics, backfilled with
promtool in one block pass (``--blocks`` keeps the blocks for the next run), and served by
``/usr/bin/prometheus`` on 127.0.0.1.

Every expression is then evaluated over the whole range at ``--step`` by both backends, end to
end into the same long DataFrame: the Prometheus side through prometheus-api-client
(``custom_query_range``, chunked below 11,000 points per series), with responses requested
uncompressed (``Accept-Encoding: identity``, as ``PrometheusClient`` does on loopback: gzip
costs more than it saves there) and frames built from numpy arrays. Both sides get one untimed
warm-up query; each query is timed ``--repeat`` times per side and the best time kept, the
engine's for all queries first, then the server's (so neither pays for the other's leftovers). The
script prints one row per query with both times and their ratio, checks that the answers are
equal (1e-9 relative, NaN alike), and reports the total ratio, the geometric mean and the worst
of the per-query ratios, and the engine's time per million output points.

Evaluation steps start 7 s after the first sample, so Prometheus 2.42 (left-closed ranges) and the
engine (3.x semantics) read the same samples.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from promserver import backfill, binaries_missing, running_prometheus

from sloanalysis.query import EmbeddedBackend, PrometheusBackend, parse_duration
from sloanalysis.sources.openmetrics import write_openmetrics
from sloanalysis.store import SeriesStore, is_stale

SEED = Path(__file__).resolve().parents[1] / "monitoring" / "seed"


def seed_expressions() -> list[str]:
    """The seed's dashboard targets, then its alert expressions, as shipped in monitoring/seed/."""
    dashboard = json.loads((SEED / "dashboard.json").read_text())["dashboard"]
    panels = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((SEED / "alerting-rules.yml").read_text())
    return panels + [r["expr"] for g in rules["groups"] for r in g["rules"]]


SEED_EXPRS = seed_expressions()
T0 = 1_700_000_000_000
SCRAPE = 15_000


def synthesise(days: int, seed: int = 1) -> SeriesStore:
    """Metrics shaped like the simulator's: counters from zero with resets, le histograms, gauges."""
    rng = np.random.default_rng(seed)
    n = days * 86_400_000 // SCRAPE
    grid = T0 + SCRAPE * np.arange(n, dtype=np.int64)
    base = {"job": "tron-payment-api", "instance": "tron-payment-api:8000"}
    store = SeriesStore()

    def counter(rate: float) -> np.ndarray:
        vals = np.cumsum(rng.poisson(rate, n).astype(float))
        vals -= vals[0]
        cut = int(rng.integers(n // 4, 3 * n // 4))  # a process restart
        vals[cut:] -= vals[cut]
        return vals

    def add(name: str, labels: dict[str, str], vals: np.ndarray) -> None:
        store.add({"__name__": name, **base, **labels}, grid, vals)

    for router in ("v0", "kyc"):
        for prio in ("normal", "high"):
            for status, rate in (("confirmed", 4.0), ("failed", 0.3), ("rejected", 0.2)):
                labels = {"router_type": router, "priority": prio, "status": status}
                add("tron_payment_requests_total", labels, counter(rate))
        add("tron_payout_amount_usdt_total", {"router_type": router}, counter(900.0))
        for status in ("confirmed", "failed", "rejected"):
            les = ("0.1", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0", "60.0", "120.0", "+Inf")
            per = np.cumsum(rng.poisson(0.4, (n, len(les))).astype(float), axis=0)
            cum = np.cumsum(per, axis=1)
            cum -= cum[0]
            name = "tron_payout_processing_duration_seconds"
            for i, le in enumerate(les):
                add(f"{name}_bucket", {"router_type": router, "status": status, "le": le}, cum[:, i])
            add(f"{name}_count", {"router_type": router, "status": status}, cum[:, -1])
            secs = np.cumsum(rng.random(n) * 6.0)
            add(f"{name}_sum", {"router_type": router, "status": status}, secs - secs[0])
    for op in ("get_balance", "broadcast", "get_transaction_info"):
        net_les = ("0.1", "0.5", "1.0", "2.0", "5.0", "10.0", "30.0", "+Inf")
        cum = np.cumsum(np.cumsum(rng.poisson(0.5, (n, len(net_les))).astype(float), axis=0), axis=1)
        cum -= cum[0]
        for i, le in enumerate(net_les):
            add("tron_network_latency_seconds_bucket", {"operation": op, "le": le}, cum[:, i])
        for err in ("timeout", "node_unavailable", "server_busy"):
            add("tron_network_errors_total", {"operation": op, "error_type": err}, counter(0.05))
    for ft in ("unauthorized", "forbidden"):
        add("tron_authentication_failures_total", {"failure_type": ft}, counter(0.5))
    add("tron_rate_limit_violations_total", {"endpoint": "/api/payment/payouts", "user_type": "merchant"},
        counter(0.3))  # fmt: skip
    add("tron_circuit_breaker_status", {}, np.where(rng.random(n) < 0.02, 1.0, 0.0))
    add("tron_daily_limit_usage_usdt", {}, (np.arange(n) % 5760) * 1.7)
    add("tron_hourly_limit_usage_usdt", {}, (np.arange(n) % 240) * 2.1)
    add("tron_pending_payouts_count", {}, rng.poisson(30, n).astype(float))
    add("tron_memory_usage_bytes", {}, 6e8 + np.cumsum(rng.normal(0, 1e5, n)))
    add(
        "tron_cpu_usage_percent",
        {},
        np.clip(50 + 30 * np.sin(np.arange(n) / 500) + rng.normal(0, 5, n), 0, 100),
    )
    add("up", {}, np.where(rng.random(n) < 0.001, 0.0, 1.0))
    return store


def same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    keys = [c for c in a.columns if c != "value"]
    if not all(a[k].equals(b[k]) for k in keys):
        return False
    x, y = a["value"].to_numpy(), b["value"].to_numpy()
    return bool(np.all(np.isclose(x, y, rtol=1e-9, atol=1e-12, equal_nan=True)))


def without_stale_markers(store: SeriesStore) -> tuple[SeriesStore, int]:
    """The store as Prometheus holds it after backfill: OpenMetrics text cannot carry stale markers."""
    out = SeriesStore()
    dropped = 0
    for s in store:
        stale = is_stale(s.values)
        dropped += int(stale.sum())
        out.add(dict(s.labels), s.timestamps[~stale], s.values[~stale])
    return out, dropped


def prepare_blocks(store: SeriesStore, blocks: Path, tmp: Path) -> Path:
    """promtool blocks of ``store`` in ``blocks``, reusing them when the directory already has some."""
    if any(blocks.glob("*/meta.json")):
        print(f"reusing blocks in {blocks}")
        return blocks
    om = tmp / "data.om"
    t = time.perf_counter()
    write_openmetrics(store, om)
    dt = time.perf_counter() - t
    print(
        f"write_openmetrics: {dt:.2f} s, {store.num_samples / dt / 1e6:.1f} M samples/s, "
        f"{om.stat().st_size / 1e9:.2f} GB"
    )
    t = time.perf_counter()
    backfill(om, blocks)
    print(f"promtool backfill (--max-block-duration=720h): {time.perf_counter() - t:.1f} s")
    om.unlink()
    return blocks


def best_of(repeat: int, fn: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, float]:
    best, frame = float("inf"), pd.DataFrame()
    for _ in range(repeat):
        t = time.perf_counter()
        frame = fn()
        best = min(best, time.perf_counter() - t)
    return frame, best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", nargs="?", help="a run directory (default: synthesise a store)")
    ap.add_argument("--days", type=int, default=30, help="days to synthesise without a run dir (default 30)")
    ap.add_argument("--step", default="15s", help="evaluation step (default 15s)")
    ap.add_argument(
        "--blocks",
        type=Path,
        help="keep the promtool blocks in this directory and reuse them when it already holds some",
    )
    ap.add_argument("--repeat", type=int, default=3, help="time each query this often, keep the best (3)")
    ap.add_argument("--only", type=int, nargs="*", help="indices of SEED_EXPRS to run (default all)")
    args = ap.parse_args()
    if binaries_missing():
        print(f"needs {', '.join(binaries_missing())} (apt-get install prometheus)", file=sys.stderr)
        return 2
    t = time.perf_counter()
    if args.run_dir:
        store = SeriesStore.from_parquet(Path(args.run_dir) / "samples.parquet")
        source = args.run_dir
    else:
        store = synthesise(args.days)
        source = f"synthetic, {args.days} days"
    store, dropped = without_stale_markers(store)
    span = store.time_range()
    assert span is not None, "empty store"
    print(
        f"store: {source}: {len(store)} series, {store.num_samples:,} samples, "
        f"{dropped} stale markers dropped ({time.perf_counter() - t:.1f} s)"
    )
    step = parse_duration(args.step)
    start, end = span[0] + 7_000, span[1]
    exprs = SEED_EXPRS if args.only is None else [SEED_EXPRS[i] for i in args.only]
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        blocks = prepare_blocks(store, args.blocks or Path(tmp) / "blocks", Path(tmp))
        engine = EmbeddedBackend(store)
        rows = []
        with running_prometheus(blocks) as url, PrometheusBackend(url, timeout=300) as prom:
            # Untimed warm-up of both sides (imports, page cache, first connection).
            engine.query_range("up", start, end, step)
            prom.query_range("up", start, end, step)
            # All engine timings first, then all server timings: a Go server keeps working (GC,
            # returning memory) for a while after a big query, which would land on the engine.
            engine_runs = [
                best_of(args.repeat, partial(engine.query_range, expr, start, end, step)) for expr in exprs
            ]
            prom_runs = [
                best_of(args.repeat, partial(prom.query_range, expr, start, end, step)) for expr in exprs
            ]
    print(f"\n{'expression':<72} {'points':>10} {'engine s':>9} {'prom s':>8} {'ratio':>6}  equal")
    for expr, (a, te), (b, tp) in zip(exprs, engine_runs, prom_runs, strict=True):
        ok = same(a, b)
        rows.append((expr, len(a), te, tp, ok))
        short = expr if len(expr) <= 72 else expr[:69] + "..."
        print(f"{short:<72} {len(a):>10,} {te:>9.3f} {tp:>8.3f} {tp / te:>6.1f}  {'yes' if ok else 'NO'}")
    points = sum(r[1] for r in rows)
    te = sum(r[2] for r in rows)
    tp = sum(r[3] for r in rows)
    print(
        f"\ntotal: {points:,} output points; engine {te:.2f} s, prometheus {tp:.2f} s, ratio {tp / te:.1f}x"
    )
    ratios = np.array([r[3] / r[2] for r in rows])
    worst = int(np.argmin(ratios))
    print(
        f"ratio per expression: geometric mean {float(np.exp(np.log(ratios).mean())):.1f}x, "
        f"worst {ratios[worst]:.1f}x ({rows[worst][0]})"
    )
    print(f"engine: {te / max(points, 1) * 1e6:.3f} s per million output points")
    bad = [r[0] for r in rows if not r[4]]
    if bad:
        print(f"answers differ for {len(bad)} expression(s): {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
