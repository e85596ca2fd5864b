"""Confidence intervals that stay inside their parameter's bounds.

Pure functions (numpy, scipy). Every function returns ``(low, high)``; ``(nan, nan)`` means "no
data" (no trials, no exposure, no samples). Proportions stay in [0, 1]; rates, times and other
non-negative measures stay >= 0. Intersecting an interval with the parameter space keeps its
coverage (the true value is always inside the space), which is why clipping is allowed below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as sps

__all__ = [
    "bootstrap_interval",
    "bounded_mean_interval",
    "clopper_pearson_interval",
    "log_normal_mean_interval",
    "logit_t_interval",
    "nonnegative_mean_interval",
    "poisson_rate_interval",
    "t_interval",
    "t_quantile",
    "wilson_interval",
    "z_quantile",
]

NO_DATA = (math.nan, math.nan)


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return 1.0 - confidence  # alpha


def _check_counts(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= successes <= trials, got {k} of {n}")


def z_quantile(confidence: float) -> float:
    """Two-sided normal quantile: 1.95996... for 0.95."""
    return float(sps.norm.ppf(1.0 - _check_confidence(confidence) / 2.0))


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """Two-sided Student-t quantile with ``df`` degrees of freedom; NaN below one."""
    alpha = _check_confidence(confidence)
    return float(sps.t.ppf(1.0 - alpha / 2.0, df)) if df >= 1 else math.nan


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; exact 0 and 1 at the edges."""
    _check_counts(successes, trials)
    if trials == 0:
        _check_confidence(confidence)
        return NO_DATA
    z = z_quantile(confidence)
    n, p = float(trials), successes / trials
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial interval from beta quantiles; conservative coverage."""
    _check_counts(k, n)
    alpha = _check_confidence(confidence)
    if n == 0:
        return NO_DATA
    lo = 0.0 if k == 0 else float(sps.beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


def poisson_rate_interval(events: int, exposure: float, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson rate, per unit of ``exposure``; lower 0 with no events."""
    alpha = _check_confidence(confidence)
    if events < 0:
        raise ValueError(f"events must be >= 0, got {events}")
    if not exposure > 0:  # zero, negative or NaN exposure: nothing observed
        return NO_DATA
    lo = 0.0 if events == 0 else float(sps.chi2.ppf(alpha / 2, 2 * events)) / 2
    hi = float(sps.chi2.ppf(1 - alpha / 2, 2 * events + 2)) / 2
    return lo / exposure, hi / exposure


def bootstrap_interval(
    samples: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    rng: np.random.Generator,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic``; resamples whose statistic is NaN are dropped.

    Deterministic for a given ``rng`` state. With one sample every resample is that sample, so
    the interval collapses to the statistic (the bootstrap cannot see spread it never observed).
    """
    alpha = _check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    x = np.asarray(samples, dtype=np.float64)
    if x.size == 0:
        return NO_DATA
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))
    values = np.fromiter((statistic(x[row]) for row in idx), dtype=np.float64, count=n_resamples)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return NO_DATA
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    return x[np.isfinite(x)]


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval for the mean of the finite values; NaN below two values."""
    x = _finite(values)
    if x.size < 2:
        _check_confidence(confidence)
        return NO_DATA
    mean = float(x.mean())
    half = t_quantile(x.size - 1, confidence) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean - half, mean + half


def log_normal_mean_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for the (arithmetic) mean of positive, right-skewed values: Cox's method.

    On logs y with mean m and variance s2 over n values, the log of the mean is m + s2/2 with
    standard error sqrt(s2/n + s2**2 / (2 (n - 1))); the interval is exp of m + s2/2 -/+ t * se,
    hence always positive and wider above than below. NaN below two values or if any is <= 0.
    """
    x = _finite(values)
    if x.size < 2 or bool((x <= 0).any()):
        _check_confidence(confidence)
        return NO_DATA
    y = np.log(x)
    n, m, s2 = x.size, float(y.mean()), float(y.var(ddof=1))
    centre = m + s2 / 2
    half = t_quantile(n - 1, confidence) * math.sqrt(s2 / n + s2 * s2 / (2 * (n - 1)))
    return math.exp(centre - half), math.exp(centre + half)


def nonnegative_mean_interval(
    values: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """Interval for the mean of a measure that cannot be negative (a time, a rate, a count).

    The t interval with its low end raised to 0: the mean cannot be negative, so the cut keeps
    the coverage, the sample mean stays inside, and the interval stays finite with two values
    (where a log-scale interval, :func:`log_normal_mean_interval`, runs to astronomical upper
    ends under t with one degree of freedom). NaN below two finite values.
    """
    x = _finite(values)
    if bool((x < 0).any()):
        raise ValueError("nonnegative_mean_interval got a negative value")
    lo, hi = t_interval(x, confidence)
    return (max(0.0, lo), hi) if not math.isnan(lo) else NO_DATA


def bounded_mean_interval(
    values: Sequence[float] | np.ndarray, low: float, high: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The t interval for the mean of values known to lie in [low, high], cut to that range."""
    x = _finite(values)
    if bool(((x < low) | (x > high)).any()):
        raise ValueError(f"bounded_mean_interval got a value outside [{low}, {high}]")
    lo, hi = t_interval(x, confidence)
    return (max(low, lo), min(high, hi)) if not math.isnan(lo) else NO_DATA


def logit_t_interval(
    successes: Sequence[int] | np.ndarray, trials: Sequence[int] | np.ndarray, confidence: float = 0.95
) -> tuple[float, float]:
    """Proportion interval from the spread between replications, on the logit scale.

    Each replication's proportion is the empirical logit log((k + 0.5) / (n - k + 0.5)), finite
    at 0 and 1; a t interval over those, mapped back, stays inside (0, 1). Replications without
    trials are skipped; NaN below two replications with trials.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if k.shape != n.shape or bool(((k < 0) | (k > n)).any()):
        raise ValueError("logit_t_interval needs 0 <= successes <= trials, pairwise")
    keep = n > 0
    logits = np.log((k[keep] + 0.5) / (n[keep] - k[keep] + 0.5))
    lo, hi = t_interval(logits, confidence)
    if math.isnan(lo):
        return NO_DATA
    return _expit(lo), _expit(hi)


def _expit(v: float) -> float:
    return float(sps.logistic.cdf(v))
