"""Sample lookup shortcuts of the engine: counting samples on scrape grids, window bounds that
reuse an earlier step's count, and the instant-vector lookback.

Each shortcut must give exactly what a plain binary search gives (``np.searchsorted`` is the
reference), on grids with gaps, irregular samples and keys outside the data.
"""

from __future__ import annotations

import numpy as np
import pytest

from sloanalysis.promql.rangebatch import window_bounds
from sloanalysis.promql.selectors import count_at_or_before, instant_lookup
from sloanalysis.store import STALE_NAN


def _scrapes(rng: np.random.Generator, n: int, interval: int, gaps: int) -> np.ndarray:
    """``n`` scrape times ``interval`` apart with ``gaps`` irregular spacings (restarts, jitter)."""
    spacing = np.full(max(n - 1, 0), interval, dtype=np.int64)
    for _ in range(gaps):
        spacing[int(rng.integers(0, spacing.size))] = int(rng.integers(1, 40 * interval))
    return 1_000 + np.concatenate([[0], np.cumsum(spacing)]).astype(np.int64)[:n]


def test_count_on_a_grid_by_hand() -> None:
    # Samples at 10, 20, 30, then (a gap) 100, 110; keys every 5 ms from 0.
    ts = np.array([10, 20, 30, 100, 110], dtype=np.int64)
    keys = np.arange(0, 600 * 5, 5, dtype=np.int64)  # enough keys for the grid path
    got = count_at_or_before(ts, keys)
    # 0 and 5: nothing yet; 10..15: one sample; 30..95: three; 100..105: four; 110 on: five.
    assert got[:2].tolist() == [0, 0]
    assert got[2:4].tolist() == [1, 1]
    assert got[6:20].tolist() == [3] * 14
    assert got[20:22].tolist() == [4, 4]
    assert (got[22:] == 5).all()


@pytest.mark.parametrize("seed", range(40))
def test_count_matches_binary_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
    interval = int(rng.integers(1, 30_000))
    ts = _scrapes(rng, int(rng.integers(2, 5_000)), interval, int(rng.integers(0, 8)))
    step = int(rng.integers(1, 3 * interval))
    first = int(ts[0]) - int(rng.integers(0, 50 * interval))
    keys = first + step * np.arange(int(rng.integers(0, 6_000)), dtype=np.int64)
    if seed % 5 == 0:  # an @ modifier: the same time at every step
        keys = np.full(keys.size, int(rng.integers(int(ts[0]), int(ts[-1]))), dtype=np.int64)
    for side, shifted in (("right", keys), ("left", keys - 1)):
        assert np.array_equal(count_at_or_before(ts, shifted), np.searchsorted(ts, keys, side=side))


def test_count_falls_back_for_unsorted_or_float_keys() -> None:
    ts = 15 * np.arange(1_000, dtype=np.int64)
    keys = np.random.default_rng(3).integers(-100, 16_000, 2_000).astype(np.int64)
    assert np.array_equal(count_at_or_before(ts, keys), np.searchsorted(ts, keys, side="right"))
    fkeys = keys.astype(np.float64) + 0.5
    assert np.array_equal(count_at_or_before(ts, fkeys), np.searchsorted(ts, fkeys, side="right"))
    empty = np.empty(0, dtype=np.int64)
    assert count_at_or_before(empty, keys).tolist() == [0] * keys.size


@pytest.mark.parametrize("left_closed", [False, True])
@pytest.mark.parametrize(("step", "range_ms"), [(15_000, 300_000), (7_000, 300_000), (60_000, 90_000)])
def test_window_bounds_match_binary_search(left_closed: bool, step: int, range_ms: int) -> None:
    rng = np.random.default_rng(step + range_ms)
    ts = _scrapes(rng, 3_000, 15_000, 3)
    # Window edges on sample times too, where left-closed and left-open windows differ.
    end = int(ts[0]) + 1_000 * 15_000 - step * 40 + step * np.arange(1_200, dtype=np.int64)
    for start in (end - range_ms, end - range_ms + 1):  # the second is no earlier step's end
        lo, hi = window_bounds(ts, start, end, left_closed)
        want_lo = np.searchsorted(ts, start, side="left" if left_closed else "right")
        want_hi = np.maximum(np.searchsorted(ts, end, side="right"), want_lo)
        assert np.array_equal(lo, want_lo)
        assert np.array_equal(hi, want_hi)


@pytest.mark.parametrize("closed", [False, True])
def test_instant_lookup_by_hand(closed: bool) -> None:
    ts = np.array([10_000, 20_000, 30_000, 40_000], dtype=np.int64)
    vals = np.array([1.0, 2.0, STALE_NAN, 4.0])
    # Before the data, on a sample, between samples, on a stale marker, at the lookback edge
    # (40 s + 5 m: only a closed lookback still sees the sample), after it.
    times = np.array([5_000, 20_000, 25_000, 35_000, 340_000, 340_001], dtype=np.int64)
    times = np.concatenate([times, np.full(600, 340_000, dtype=np.int64)])  # grid path too
    v, present, sample_t = instant_lookup(ts, vals, times, 300_000, closed)
    assert present[:6].tolist() == [False, True, True, False, closed, False]
    assert v[1:3].tolist() == [2.0, 2.0]
    assert sample_t[1:3].tolist() == [20_000, 20_000]
    assert v[4] == 4.0 and sample_t[4] == 40_000
    assert (present[6:] == closed).all()


@pytest.mark.parametrize("prometheus2", [False, True])
@pytest.mark.parametrize("special", [0.01, 0.3])  # few flagged cells (gathered) or many (whole block)
@pytest.mark.parametrize("seed", range(4))
def test_extrapolation_shortcut_is_bit_identical(prometheus2: bool, special: float, seed: int) -> None:
    """The block path skips the counter clamp where it cannot apply; wherever it can (values
    at zero, tiny, negative, NaN, infinite; windows of any shape) it must equal ``extrapolate``."""
    from sloanalysis.promql.rangebatch import _extrapolate_block
    from sloanalysis.promql.rangefuncs import extrapolate

    rng = np.random.default_rng(seed)
    k, s, range_ms = 7, 3_000, 300_000
    end = 1_000_000 + 15_000 * np.arange(s, dtype=np.int64)
    start = end - range_ms
    first_t = start + rng.integers(0 if prometheus2 else 1, range_ms, s)
    last_t = np.minimum(first_t + rng.integers(0, range_ms, s), end)
    count = np.where(last_t > first_t, rng.integers(2, 40, s), 1)
    pool = np.array([0.0, -0.0, 1e-310, 1e-300, 2.0**-960, 1.0, 3.0, 1e6, 1e300, -2.0, np.nan, np.inf])
    first_v = np.where(rng.random((k, s)) < special, rng.choice(pool, (k, s)), rng.random((k, s)) * 50)
    last_v = first_v + np.where(
        rng.random((k, s)) < special, rng.choice(pool, (k, s)), rng.random((k, s)) * 9
    )
    correction = np.where(rng.random((k, s)) < 0.1, rng.random((k, s)) * 100, 0.0)
    # Cells a hair either side of the clamp: first / increase within 1e-12 of to_start / sampled.
    edge = rng.random((k, s)) < special
    to_start = np.where(
        prometheus2 | (first_t - start < 1.1 * (last_t - first_t) / np.maximum(count - 1, 1)),
        (first_t - start) / 1000.0,
        (last_t - first_t) / np.maximum(count - 1, 1) / 2000.0,
    )
    with np.errstate(all="ignore"):
        ratio = to_start / ((last_t - first_t) / 1000.0)
    increase = rng.random((k, s)) * 20 + 0.5
    near = increase * ratio * (1 + rng.uniform(-1e-12, 1e-12, (k, s)))
    first_v = np.where(edge & np.isfinite(near), near, first_v)
    last_v = np.where(edge, first_v + increase, last_v)
    correction = np.where(edge, 0.0, correction)
    for is_rate in (False, True):
        args = (first_t, last_t, start, end, count, range_ms, is_rate, prometheus2)
        with np.errstate(all="ignore"):
            want = extrapolate(first_v, last_v, correction, *args)
        got = _extrapolate_block(first_v, last_v, correction, *args)
        reported = np.broadcast_to(count >= 2, (k, s))
        assert np.array_equal(got[reported].view(np.uint64), want[reported].view(np.uint64))


@pytest.mark.parametrize("prometheus2", [False, True])
def test_step_geometry_on_a_grid_equals_step_by_step(prometheus2: bool) -> None:
    """On a scrape grid the window shape repeats: computing it once per run changes nothing."""
    from sloanalysis.promql.rangebatch import _geometry, step_geometry, window_bounds

    rng = np.random.default_rng(5)
    ts = _scrapes(rng, 20_000, 15_000, 4)
    end = int(ts[0]) + 7_000 + 15_000 * np.arange(19_000, dtype=np.int64)
    for range_ms in (60_000, 300_000, 3_600_000):
        start = end - range_ms
        lo, hi = window_bounds(ts, start, end, prometheus2)
        count = hi - lo
        first_t, last_t = ts[np.minimum(lo, ts.size - 1)], ts[np.maximum(hi - 1, 0)]
        for is_rate in (False, True):
            args = (first_t, last_t, start, end, count, range_ms, is_rate, prometheus2)
            for got, want in zip(step_geometry(*args), _geometry(*args), strict=True):
                assert np.array_equal(got.view(np.uint64), want.view(np.uint64))
