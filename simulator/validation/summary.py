"""Per-alert statistics over the replications of an alert validation, with 95 % intervals.

- detection probability per incident-severity bin and overall: Wilson score intervals;
- detection time (median, P90 over detected incidents), reset time and budget consumed before
  detection (medians): percentile bootstrap intervals, resampled with a generator seeded from
  the root seed, so a summary is reproducible;
- the median detection time counting a miss as never (what threshold selection ranks by): its
  value and bootstrap ends are ``None`` (JSON null, "never" in tables) when infinite, and the
  resamples whose median is never are kept, so the upper end is honest;
- false positives per day over the quiet time (outside every incident's detection window):
  exact (Garwood) Poisson intervals.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from simulator.validation.family import IncidentFamily
from sloanalysis.intervals import bootstrap_interval, poisson_rate_interval, wilson_interval

__all__ = ["DAY_MS", "alert_summaries", "severity_edges"]

DAY_MS = 86_400_000
BOOTSTRAP_RESAMPLES = 2000


def severity_edges(family: IncidentFamily) -> list[float]:
    """Bin edges over the family's severity range: each value of a ``choice`` (or ``fixed``) is
    its own bin; a range is cut into ``severity_bins`` equal bins (in log space for log_uniform)."""
    dist = family.severity_dist
    values = [dist.fixed] if dist.fixed is not None else dist.choice
    if values is not None:
        vs = sorted(set(values))
        mids = [(a + b) / 2 for a, b in itertools.pairwise(vs)]
        return [vs[0], *mids, vs[-1]]
    lo, hi = dist.bounds
    n = family.severity_bins
    if dist.log_scale:
        return [float(x) for x in np.geomspace(lo, hi, n + 1)]
    return [float(x) for x in np.linspace(lo, hi, n + 1)]


def _bin(edges: Sequence[float], x: float) -> int:
    i = int(np.searchsorted(edges, x, side="right")) - 1
    return min(max(i, 0), max(len(edges) - 2, 0))


def _boot(samples: list[float], stat: Any, rng: np.random.Generator) -> dict[str, float | None]:
    if not samples:
        return {"value": None, "lo": None, "hi": None}
    arr = np.asarray(samples, dtype=float)
    value = float(stat(arr))
    if len(arr) < 2:
        return {"value": _f(value), "lo": None, "hi": None}
    lo, hi = bootstrap_interval(arr, stat, rng, n_resamples=BOOTSTRAP_RESAMPLES)
    # None stands for "never" too: a median with misses is infinite once half are missed
    return {"value": _f(value), "lo": _f(lo), "hi": _f(hi)}


def _f(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _p90(x: np.ndarray) -> float:
    return float(np.quantile(x, 0.9))


def _median_with_misses(x: np.ndarray) -> float:
    """The median detection time counting a miss (NaN) as never: infinite once half are missed."""
    return float(np.median(np.where(np.isnan(x), np.inf, x)))


def _quantile_with_never(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile (numpy's linear rule) of values that may be +inf: infinite as soon as an
    infinite value takes part in it (numpy would interpolate inf * 0 to NaN)."""
    v = np.sort(values)
    h = (v.size - 1) * q
    lo, hi = math.floor(h), math.ceil(h)
    if not math.isfinite(v[hi]) and h > lo:
        return math.inf
    if not math.isfinite(v[lo]):
        return math.inf
    return float(v[lo] + (v[hi] - v[lo]) * (h - lo))


def _boot_with_misses(samples: list[float], rng: np.random.Generator) -> dict[str, float | None]:
    """The median detection time counting misses (NaN) as never, with a percentile bootstrap
    interval that keeps the resamples whose median is never: its upper end is never (None)
    once more than 2.5 % of the resamples are at least half misses, where dropping them (as
    :func:`~sloanalysis.intervals.bootstrap_interval` drops non-finite values) would be
    optimistic. Draws the same indices as ``bootstrap_interval`` so later resamples are unchanged."""
    if not samples:
        return {"value": None, "lo": None, "hi": None}
    x = np.asarray(samples, dtype=float)
    value = _median_with_misses(x)
    if x.size < 2:
        return {"value": _f(value), "lo": None, "hi": None}
    idx = rng.integers(0, x.size, size=(BOOTSTRAP_RESAMPLES, x.size))
    stats = np.fromiter((_median_with_misses(x[row]) for row in idx), dtype=float, count=len(idx))
    lo, hi = _quantile_with_never(stats, 0.025), _quantile_with_never(stats, 0.975)
    return {"value": _f(value), "lo": _f(lo), "hi": _f(hi)}


def _proportion(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"detected": 0, "incidents": 0, "p": None, "lo": None, "hi": None}
    lo, hi = wilson_interval(k, n)
    return {"detected": k, "incidents": n, "p": k / n, "lo": lo, "hi": hi}


def _one_alert(
    name: str,
    severity: str | None,
    pairs: list[dict[str, Any]],
    fp: tuple[int, int, int],
    edges: Sequence[float],
    rng: np.random.Generator,
) -> dict[str, Any]:
    nbins = max(len(edges) - 1, 1)
    counts = [[0, 0] for _ in range(nbins)]
    for p in pairs:
        b = _bin(edges, p["incident_severity"])
        counts[b][1] += 1
        counts[b][0] += int(p["detected"])
    detected = [p for p in pairs if p["detected"]]
    det_s = [p["detection_ms"] / 1000.0 for p in detected if p["detection_ms"] is not None]
    reset_s = [p["reset_ms"] / 1000.0 for p in detected if p["reset_ms"] is not None]
    budget = [p["budget"] for p in detected if p["budget"] is not None]
    with_misses = [
        p["detection_ms"] / 1000.0 if p["detected"] and p["detection_ms"] is not None else math.nan
        for p in pairs
    ]
    events, quiet_ms, firings = fp
    days = quiet_ms / DAY_MS
    rate_lo, rate_hi = poisson_rate_interval(events, days) if days > 0 else (math.nan, math.nan)
    return {
        "alert": name,
        "severity": severity,
        "detection": _proportion(sum(c[0] for c in counts), sum(c[1] for c in counts)),
        "by_severity": [
            {
                "bin_lo": edges[i],
                "bin_hi": edges[i + 1] if len(edges) > 1 else edges[i],
                **_proportion(*counts[i]),
            }
            for i in range(nbins)
        ],
        "detection_s_median": _boot(det_s, np.median, rng),
        "detection_s_p90": _boot(det_s, _p90, rng),
        "detection_s_median_with_misses": _boot_with_misses(with_misses, rng),
        "reset_s_median": _boot(reset_s, np.median, rng),
        "budget_before_detection_median": _boot(budget, np.median, rng),
        "false_positives": events,
        "firings": firings,
        "quiet_days": days,
        "fp_per_day": events / days if days > 0 else None,
        "fp_per_day_lo": _f(rate_lo),
        "fp_per_day_hi": _f(rate_hi),
    }


def alert_summaries(
    replications: Sequence[dict[str, Any]], variant: str, family: IncidentFamily, root_seed: int
) -> list[dict[str, Any]]:
    """One summary per alert identity (in first-seen order) of ``variant`` over ``replications``."""
    edges = severity_edges(family)
    pairs: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    fps: dict[tuple[str, str | None], list[int]] = {}
    for rep in replications:
        v = rep["variants"][variant]
        for a in v["alerts"]:
            acc = fps.setdefault((a["alert"], a["severity"]), [0, 0, 0])
            acc[0] += a["false_positives"]
            acc[1] += a["quiet_ms"]
            acc[2] += a["firings"]
        for p in v["pairs"]:
            pairs.setdefault((p["alert"], p["severity"]), []).append(p)
    out = []
    for i, ident in enumerate(fps):
        # One generator per alert, seeded from the root seed and the alert's position: the same
        # resamples whatever else was summarised before.
        rng = np.random.default_rng(np.random.SeedSequence(root_seed, spawn_key=(2**31, i)))
        events, quiet, firings = fps[ident]
        out.append(_one_alert(ident[0], ident[1], pairs.get(ident, []), (events, quiet, firings), edges, rng))
    return out
