"""A latency SLI over a Prometheus native histogram (Prometheus 3; Pyrra's ``latencyNative``).

A classic histogram counts the good events in its ``le`` bucket; a native one has no such series, so
the per-second rates of all observations (``histogram_count``) and of those at most the threshold
(``histogram_fraction(0, threshold, ...)`` of that count) come from the summed rate of the
histogram itself::

    good  = histogram_fraction(0, 0.3, sum(rate(x{m}[w]))) * histogram_count(sum(rate(x{m}[w])))
    total = histogram_count(sum(rate(x{m}[w])))

Summing the histograms before taking the fraction weighs every series by its traffic, as the
classic ``sum(rate(x_bucket{le="0.3"}[w])) / sum(rate(x_count[w]))`` does. The lower bound 0 takes
in the zero bucket whole (Prometheus counts it from 0 up when no bucket is negative), so the ratio
is the fraction of observations at most the threshold, interpolated within its bucket.
"""

from __future__ import annotations

from sloanalysis.durations import format_duration_ms

__all__ = ["native_bucket_expr", "native_rate_expr", "native_total_expr"]


def native_rate_expr(histogram: str, matchers: str, window_ms: int) -> str:
    """The per-second rate of the histogram over ``window_ms``, summed to one histogram."""
    return f"sum(rate({histogram}{{{matchers}}}[{format_duration_ms(window_ms)}]))"


def native_bucket_expr(histogram: str, matchers: str, le: float, window_ms: int) -> str:
    """Per-second rate of observations at most ``le`` seconds (from 0)."""
    rate = native_rate_expr(histogram, matchers, window_ms)
    return f"histogram_fraction(0, {float(le)!r}, {rate}) * histogram_count({rate})"


def native_total_expr(histogram: str, matchers: str, window_ms: int) -> str:
    """Per-second rate of all observations."""
    return f"histogram_count({native_rate_expr(histogram, matchers, window_ms)})"
