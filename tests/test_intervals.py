"""Confidence intervals against textbook values, their bounds, and their coverage."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from sloanalysis.intervals import (
    bootstrap_interval,
    bounded_mean_interval,
    clopper_pearson_interval,
    log_normal_mean_interval,
    logit_t_interval,
    nonnegative_mean_interval,
    poisson_rate_interval,
    t_interval,
    t_quantile,
    wilson_interval,
    z_quantile,
)

Z = 1.959963984540054  # the normal 0.975 quantile
T2 = 4.302652730  # Student t, 0.975 quantile, 2 degrees of freedom (published tables)


def _is_nan_pair(pair: tuple[float, float]) -> bool:
    return math.isnan(pair[0]) and math.isnan(pair[1])


def test_quantiles() -> None:
    assert z_quantile(0.95) == pytest.approx(Z, rel=1e-9)
    assert t_quantile(1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-7)  # Cauchy
    assert t_quantile(2) == pytest.approx(T2, rel=1e-8)
    assert math.isnan(t_quantile(0))


def test_wilson_two_of_three_by_hand() -> None:
    # Wilson (1927): centre (p + z²/2n) / (1 + z²/n), half z/(1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).
    n, p = 3.0, 2 / 3
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    lo, hi = wilson_interval(2, 3)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), rel=1e-9)
    assert (lo, hi) == pytest.approx((0.2077, 0.9385), abs=1e-4)  # the commonly tabulated value


def test_wilson_edges_are_exact() -> None:
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(Z * Z / (10 + Z * Z), rel=1e-9)  # z²/(n + z²) at k = 0
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(10 / (10 + Z * Z), rel=1e-9)
    assert _is_nan_pair(wilson_interval(0, 0))
    lo90, hi90 = wilson_interval(2, 3, confidence=0.90)
    assert lo90 > 0.2077 and hi90 < 0.9385  # less confidence, narrower


def test_clopper_pearson_textbook_values() -> None:
    lo, hi = clopper_pearson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    lo, hi = clopper_pearson_interval(10, 10)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 10), rel=1e-9)
    # 1 of 2: the lower end solves 1 - (1-p)² = 0.025, the upper (by symmetry) 1 - that.
    lo, hi = clopper_pearson_interval(1, 2)
    assert lo == pytest.approx(1 - math.sqrt(0.975), rel=1e-9)
    assert hi == pytest.approx(math.sqrt(0.975), rel=1e-9)
    assert clopper_pearson_interval(5, 10) == pytest.approx((0.187086, 0.812914), abs=1e-6)
    assert _is_nan_pair(clopper_pearson_interval(0, 0))


def test_clopper_pearson_contains_wilson_at_the_edges() -> None:
    # The exact interval is the conservative one: wider than the score interval for 0 of n.
    assert clopper_pearson_interval(0, 20)[1] > wilson_interval(0, 20)[1]


def test_garwood_poisson_rates() -> None:
    assert poisson_rate_interval(0, 1.0) == pytest.approx((0.0, 3.688879), abs=1e-6)  # -ln(0.025)
    assert poisson_rate_interval(0, 2.0)[1] == pytest.approx(-math.log(0.025) / 2, rel=1e-9)
    # One event: lower solves P(X >= 1) = 0.025, i.e. -ln(0.975).
    lo, hi = poisson_rate_interval(1, 1.0)
    assert lo == pytest.approx(-math.log(0.975), rel=1e-9)
    assert hi == pytest.approx(5.571643, abs=1e-6)
    assert poisson_rate_interval(10, 1.0) == pytest.approx((4.795389, 18.390356), abs=1e-5)
    assert _is_nan_pair(poisson_rate_interval(3, 0.0))


def test_bad_counts_raise() -> None:
    with pytest.raises(ValueError):
        wilson_interval(4, 3)
    with pytest.raises(ValueError):
        clopper_pearson_interval(-1, 3)
    with pytest.raises(ValueError):
        poisson_rate_interval(-1, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(1, 3, confidence=1.5)


def test_bootstrap_of_two_values_by_hand() -> None:
    # Resampling {0, 1} twice: means 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 2.5 % and
    # 97.5 % percentiles are 0 and 1.
    lo, hi = bootstrap_interval([0.0, 1.0], np.mean, np.random.default_rng(7))
    assert (lo, hi) == (0.0, 1.0)
    assert bootstrap_interval([5.0, 5.0, 5.0], np.median, np.random.default_rng(0)) == (5.0, 5.0)
    assert _is_nan_pair(bootstrap_interval([], np.mean, np.random.default_rng(0)))


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    x = np.random.default_rng(3).exponential(10.0, size=40)
    a = bootstrap_interval(x, np.median, np.random.default_rng(11))
    b = bootstrap_interval(x, np.median, np.random.default_rng(11))
    assert a == b and a[0] <= float(np.median(x)) <= a[1]


def test_log_normal_mean_interval_by_hand() -> None:
    # Logs 0, 1, 2: mean 1, variance 1; Cox: exp(1 + 1/2 -/+ t2 * sqrt(1/3 + 1/(2*2))).
    half = T2 * math.sqrt(1 / 3 + 1 / 4)
    lo, hi = log_normal_mean_interval([1.0, math.e, math.e**2])
    assert (lo, hi) == pytest.approx((math.exp(1.5 - half), math.exp(1.5 + half)), rel=1e-8)
    assert _is_nan_pair(log_normal_mean_interval([0.0, 1.0]))
    assert _is_nan_pair(log_normal_mean_interval([1.0]))


def test_nonnegative_mean_interval_stays_above_zero() -> None:
    # The two replications: P95 283 [-459, 1030] under a t interval, cut at 0.
    values = [20.0, 546.0]
    t_lo, t_hi = t_interval(values)
    assert t_lo < 0
    half = math.tan(math.pi * 0.475) * 263.0  # t(1) * sd / sqrt(2), sd = 526 / sqrt(2)
    assert t_hi == pytest.approx(283.0 + half, rel=1e-8)
    assert nonnegative_mean_interval(values) == pytest.approx((0.0, 283.0 + half), rel=1e-8)
    # Mean 1, sd sqrt(3), n 3: 1 -/+ t2.
    assert nonnegative_mean_interval([0.0, 0.0, 3.0]) == pytest.approx((0.0, 1 + T2), rel=1e-8)
    assert nonnegative_mean_interval([4.0, 4.0]) == (4.0, 4.0)
    assert nonnegative_mean_interval([10.0, 12.0, 14.0]) == pytest.approx(
        (12 - 2 * T2 / math.sqrt(3), 12 + 2 * T2 / math.sqrt(3))
    )
    assert _is_nan_pair(nonnegative_mean_interval([4.0, math.nan]))
    with pytest.raises(ValueError):
        nonnegative_mean_interval([-1.0, 2.0])


def test_bounded_mean_interval_stays_in_range() -> None:
    # The success 0.9931 [0.9818, 1.004]: the upper end is cut to 1.
    lo, hi = bounded_mean_interval([0.9862, 1.0], 0.0, 1.0)
    assert hi == 1.0 and 0.0 <= lo < 0.9931


def test_logit_interval_stays_inside_zero_one() -> None:
    assert logit_t_interval([5, 5], [10, 10]) == pytest.approx((0.5, 0.5))
    lo, hi = logit_t_interval([2, 8], [10, 10])
    assert 0.0 < lo < 0.01 and 0.99 < hi < 1.0
    lo, hi = logit_t_interval([1000, 999], [1000, 1000])  # all or nearly all confirmed
    assert 0.0 < lo < hi < 1.0
    assert _is_nan_pair(logit_t_interval([3], [4]))


@pytest.mark.parametrize("interval", [wilson_interval, clopper_pearson_interval])
def test_proportion_interval_coverage(interval: Callable[[int, int], tuple[float, float]]) -> None:
    # The check: a known proportion, 200 seeded repetitions, covered 90-99 % of the time.
    rng = np.random.default_rng(20261201)
    true_p, n, reps = 0.3, 60, 200
    hits = 0
    for k in rng.binomial(n, true_p, size=reps):
        lo, hi = interval(int(k), n)
        hits += lo <= true_p <= hi
    assert 0.90 * reps <= hits <= 0.99 * reps


def test_poisson_interval_coverage() -> None:
    rng = np.random.default_rng(5)
    rate, exposure, reps = 0.8, 3.0, 200
    hits = 0
    for k in rng.poisson(rate * exposure, size=reps):
        lo, hi = poisson_rate_interval(int(k), exposure)
        hits += lo <= rate <= hi
    assert 0.90 * reps <= hits <= 1.0 * reps  # exact intervals are conservative
