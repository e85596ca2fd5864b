"""``histogram_fraction``, ``histogram_quantile`` and ``histogram_count`` over native histograms,
against the float path.

    python benchmarks/bench_native_histograms.py [--days 30] [--series 4] [--step 10m] [--repeat 1] [--summed]

Synthesises a store the size of the 30-day reference run (``scenarios/reference-30d.yaml``: 30 days
of 15 s scrapes, 172,800 samples a series) holding ``--series`` native-histogram latency counters
(schema 1, sixteen buckets between 11 ms and 2.8 s, Poisson increments, one counter reset
halfway) and, as the float baseline, the same observations as a classic histogram: one
``_bucket`` float series per ``le`` (the native buckets' upper bounds, and ``+Inf``) and ``_count``.

Each query is evaluated over the whole range at ``--step`` by the embedded engine and reported as
seconds per million output points; the baseline queries, timed in the same run, ask the same
question of the classic histogram, so the last column is native time / float time:

- ``histogram_fraction(0, 0.25, rate(lat[5m]))`` against
  ``rate(lat_bucket{le="0.25"}[5m]) / ignoring(le) rate(lat_count[5m])`` (0.25 s is a bucket bound
  of both, so the answers agree);
- ``histogram_quantile(0.95, rate(lat[5m]))`` against ``histogram_quantile(0.95, rate(lat_bucket[5m]))``;
- ``histogram_count(rate(lat[5m]))`` (a native latency SLI's total events) against
  ``rate(lat_count[5m])``;
- with ``--summed`` also both of ``sum(rate(...))`` (``sum by (le)`` for the classic quantile).

The default step of 10 m keeps the run under a minute on two cores: the store is still the full
30 days at 15 s and every step's ``rate`` reads its twenty samples, but fewer steps are evaluated.
The time per output point does fall with finer steps: the first query over a store converts each
series' histograms into a dense bucket matrix once (``promql.densehist``, a few us a sample, kept
while the store lives), a cost that coarse steps spread over fewer points; the first query here is
``histogram_fraction``, so it carries that conversion.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial

import numpy as np
from bench_query import best_of  # run as a script: this directory is on sys.path

from sloanalysis.nativehist import FloatHistogram
from sloanalysis.query import EmbeddedBackend, parse_duration
from sloanalysis.store import SeriesStore

T0 = 1_700_000_000_000
SCRAPE_MS = 15_000  # the reference scenarios' scrape_interval
SCHEMA = 1  # base sqrt(2): two buckets per doubling
# Sixteen contiguous buckets of schema 1, from (2^-6.5, 2^-6] (11 ms) to (2^1, 2^1.5] (2.8 s).
INDEXES = np.arange(-12, 4)
RATE_PER_SCRAPE = 30.0  # 2 observations/s per series, as the reference service's API rate


def _bound(index: int) -> float:
    return float(2.0 ** (index / 2**SCHEMA))


def synthesise(days: int, n_series: int, seed: int = 1) -> SeriesStore:
    """Native-histogram counters and the same observations as classic ``le`` histograms."""
    rng = np.random.default_rng(seed)
    n = days * 86_400_000 // SCRAPE_MS
    ts = T0 + SCRAPE_MS * np.arange(n, dtype=np.int64)
    # Observation shares per bucket: log-normal-ish latency around 100 ms.
    centre = np.log2(0.1) * 2**SCHEMA
    weights = np.exp(-(((INDEXES - centre) / 4.0) ** 2))
    weights /= weights.sum()
    store = SeriesStore()
    for s in range(n_series):
        increments = rng.poisson(RATE_PER_SCRAPE * weights, size=(n, INDEXES.size)).astype(np.float64)
        cumulative = np.cumsum(increments, axis=0)
        cumulative[n // 2 :] -= cumulative[n // 2 - 1]  # a process restart: the counter resets
        sums = cumulative @ np.array([_bound(int(i)) * 0.8 for i in INDEXES])
        counts = cumulative.sum(axis=1)
        idx = [int(i) for i in INDEXES]
        hists = np.empty(n, dtype=object)
        # Empty buckets stay listed (count 0): a valid histogram, and much faster to build.
        hists[:] = [
            FloatHistogram(c, total, SCHEMA, 0.0, 0.0, tuple(zip(idx, row, strict=True)))
            for c, total, row in zip(counts.tolist(), sums.tolist(), cumulative.tolist(), strict=True)
        ]
        base = {"job": "api", "instance": f"api-{s}"}
        store.add({"__name__": "lat", **base}, ts, np.full(n, np.nan), hists)
        classic = np.cumsum(cumulative, axis=1)  # le buckets count everything at most their bound
        for j, i in enumerate(idx):
            store.add({"__name__": "lat_bucket", "le": repr(_bound(i)), **base}, ts, classic[:, j])
        store.add({"__name__": "lat_bucket", "le": "+Inf", **base}, ts, counts)
        store.add({"__name__": "lat_count", **base}, ts, counts)
    return store


THRESHOLD = repr(_bound(-4))  # 0.25 s: a bucket bound of both histograms
QUERIES = [
    (
        "histogram_fraction",
        f"histogram_fraction(0, {THRESHOLD}, rate(lat[5m]))",
        f'rate(lat_bucket{{le="{THRESHOLD}"}}[5m]) / ignoring(le) rate(lat_count[5m])',
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.95, rate(lat[5m]))",
        "histogram_quantile(0.95, rate(lat_bucket[5m]))",
    ),
    (  # the total events of a native latency SLI
        "histogram_count",
        "histogram_count(rate(lat[5m]))",
        "rate(lat_count[5m])",
    ),
]
SUMMED = [
    (
        "fraction of the sum",
        f"histogram_fraction(0, {THRESHOLD}, sum(rate(lat[5m])))",
        f'sum(rate(lat_bucket{{le="{THRESHOLD}"}}[5m])) / sum(rate(lat_count[5m]))',
    ),
    (
        "quantile of the sum",
        "histogram_quantile(0.95, sum(rate(lat[5m])))",
        "histogram_quantile(0.95, sum by (le) (rate(lat_bucket[5m])))",
    ),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=30, help="days of 15 s scrapes (default 30)")
    ap.add_argument("--series", type=int, default=4, help="native-histogram series (default 4)")
    ap.add_argument("--step", default="10m", help="evaluation step (default 10m)")
    ap.add_argument("--summed", action="store_true", help="also the fraction and quantile of the summed rate")
    ap.add_argument("--repeat", type=int, default=1, help="time each query this often, keep the best (1)")
    args = ap.parse_args()
    t = time.perf_counter()
    store = synthesise(args.days, args.series)
    span = store.time_range()
    assert span is not None
    print(
        f"store: {args.series} native histograms of {args.days} days at 15 s "
        f"({len(store)} series with the classic baseline, {store.num_samples:,} samples; "
        f"{time.perf_counter() - t:.1f} s to build)"
    )
    engine = EmbeddedBackend(store)
    step = parse_duration(args.step)
    start, end = span[0] + 300_000, span[1]
    engine.query_range("lat_count", start, end, step)  # untimed warm-up
    print(f"\n{'query':<22} {'points':>9} {'native s/M':>11} {'float s/M':>10} {'ratio':>6}  agree")
    status = 0
    for name, native, classic in QUERIES + (SUMMED if args.summed else []):
        a, tn = best_of(args.repeat, partial(engine.query_range, native, start, end, step))
        b, tf = best_of(args.repeat, partial(engine.query_range, classic, start, end, step))
        per_n, per_f = tn / max(len(a), 1) * 1e6, tf / max(len(b), 1) * 1e6
        agree = len(a) == len(b)
        if agree and "fraction" in name:  # same bucket bound: the same numbers
            agree = bool(np.allclose(a["value"].to_numpy(), b["value"].to_numpy(), equal_nan=True))
        status |= 0 if agree else 1
        ok = "yes" if agree else "NO"
        print(f"{name:<22} {len(a):>9,} {per_n:>11.2f} {per_f:>10.2f} {per_n / per_f:>6.1f}  {ok}")
    return status


if __name__ == "__main__":
    sys.exit(main())
