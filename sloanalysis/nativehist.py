"""Prometheus native histograms as immutable float histograms.

A :class:`FloatHistogram` holds what Prometheus's ``histogram.FloatHistogram`` holds, with the
spans-and-deltas encoding already expanded: ``positive``/``negative`` are ``(bucket index,
absolute count)`` pairs sorted by index. For an exponential schema ``s`` (-4..8) bucket ``i``
covers ``(base**(i-1), base**i]`` with ``base = 2**(2**-s)`` (negative buckets mirror that on
the negative axis); the zero bucket covers ``[-zero_threshold, zero_threshold]``. Schema -53 is
the custom-bucket schema (NHCB): bucket ``i`` covers ``(custom_values[i-1], custom_values[i]]``
with ``custom_values[-1] = -Inf`` and ``custom_values[len] = +Inf``.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from sloanalysis._go import format_float

CUSTOM_BUCKETS_SCHEMA = -53

Bucket = tuple[float, float, float, bool, bool]
"""(lower, upper, count, lower_inclusive, upper_inclusive), as Prometheus's API lists buckets."""


@dataclass(frozen=True)
class FloatHistogram:
    """One native-histogram sample (see the module docstring for the bucket layout)."""

    count: float
    sum: float
    schema: int = 0
    zero_threshold: float = 0.0
    zero_count: float = 0.0
    positive: tuple[tuple[int, float], ...] = ()
    negative: tuple[tuple[int, float], ...] = ()
    custom_values: tuple[float, ...] = ()
    counter_reset_hint: str = "unknown"  # unknown | reset | not_reset | gauge

    # -- layout ---------------------------------------------------------------------------
    @property
    def uses_custom_buckets(self) -> bool:
        return self.schema == CUSTOM_BUCKETS_SCHEMA

    def buckets(self) -> list[Bucket]:
        """Every bucket in ascending order of value: negative, zero, positive.

        As Prometheus's ``AllBucketIterator``: the zero bucket is listed when its threshold or
        count is non-zero, and a bucket overlapping it is clipped at the threshold.
        """
        if self.uses_custom_buckets:
            out: list[Bucket] = []
            for idx, count in self.positive:
                lo, hi = custom_bounds(self.custom_values, idx)
                out.append((lo, hi, count, lo == -math.inf, True))
            return out
        zt = self.zero_threshold
        neg: list[Bucket] = []
        for idx, count in reversed(self.negative):
            lo, hi = -bucket_upper(self.schema, idx), -bucket_upper(self.schema, idx - 1)
            neg.append((lo, min(hi, -zt) if hi > -zt else hi, count, True, False))
        pos: list[Bucket] = []
        for idx, count in self.positive:
            lo, hi = bucket_upper(self.schema, idx - 1), bucket_upper(self.schema, idx)
            pos.append((max(lo, zt), hi, count, False, True))
        zero: list[Bucket] = []
        if zt != 0 or self.zero_count != 0:
            zero.append((-zt, zt, self.zero_count, True, True))
        return neg + zero + pos

    # -- arithmetic -----------------------------------------------------------------------
    def scale(self, factor: float, hint: str | None = None) -> FloatHistogram:
        """Every count and the sum multiplied by ``factor`` (``Mul``), optionally a new hint."""
        return FloatHistogram(
            self.count * factor,
            self.sum * factor,
            self.schema,
            self.zero_threshold,
            self.zero_count * factor,
            tuple([(i, c * factor) for i, c in self.positive]),
            tuple([(i, c * factor) for i, c in self.negative]),
            self.custom_values,
            self.counter_reset_hint if hint is None else hint,
        )

    def divide(self, divisor: float) -> FloatHistogram:
        """``Div``: counts and sum divided (so 0/0 is NaN and x/0 is ±Inf, as in Go); division by
        zero removes every regular bucket, as Prometheus does, leaving only the zero bucket."""
        if divisor == 0:
            positive: tuple[tuple[int, float], ...] = ()
            negative: tuple[tuple[int, float], ...] = ()
        else:
            positive = tuple((i, c / divisor) for i, c in self.positive)
            negative = tuple((i, c / divisor) for i, c in self.negative)
        return replace(
            self,
            count=_div(self.count, divisor),
            sum=_div(self.sum, divisor),
            zero_count=_div(self.zero_count, divisor),
            positive=positive,
            negative=negative,
        )

    def add(self, other: FloatHistogram) -> tuple[FloatHistogram, bool]:
        """``self + other`` and whether custom bucket bounds had to be reconciled.

        Raises :class:`IncompatibleHistograms` when one uses custom buckets and the other not.
        """
        return _combine(self, other, 1.0)

    def sub(self, other: FloatHistogram) -> tuple[FloatHistogram, bool]:
        """``self - other`` (see :meth:`add`)."""
        return _combine(self, other, -1.0)

    def to_schema(self, schema: int) -> FloatHistogram:
        """The same observations in the coarser exponential ``schema`` (``CopyToSchema``)."""
        if schema == self.schema or self.uses_custom_buckets:
            return self
        if schema > self.schema:
            raise ValueError("cannot increase the resolution of a histogram")
        delta = self.schema - schema
        return replace(
            self,
            schema=schema,
            positive=_merge_indices(self.positive, lambda i: ((i - 1) >> delta) + 1),
            negative=_merge_indices(self.negative, lambda i: ((i - 1) >> delta) + 1),
        )

    def with_zero_threshold(self, threshold: float) -> FloatHistogram:
        """Buckets that lie within a larger zero threshold moved into the zero bucket."""
        if threshold <= self.zero_threshold or self.uses_custom_buckets:
            return self
        moved = 0.0
        pos, neg = [], []
        for idx, c in self.positive:
            if bucket_upper(self.schema, idx) <= threshold:
                moved += c
            else:
                pos.append((idx, c))
        for idx, c in self.negative:
            if bucket_upper(self.schema, idx) <= threshold:
                moved += c
            else:
                neg.append((idx, c))
        return replace(
            self,
            zero_threshold=threshold,
            zero_count=self.zero_count + moved,
            positive=tuple(pos),
            negative=tuple(neg),
        )

    def with_custom_values(self, bounds: tuple[float, ...]) -> FloatHistogram:
        """Buckets merged into the coarser custom ``bounds`` (a subset of this one's bounds)."""
        if bounds == self.custom_values:
            return self
        cv = self.custom_values

        def target(idx: int) -> int:
            upper = cv[idx] if idx < len(cv) else math.inf
            return bisect.bisect_left(bounds, upper)

        return replace(self, custom_values=bounds, positive=_merge_indices(self.positive, target))

    def compact(self) -> FloatHistogram:
        """Empty buckets dropped (``Compact(0)``)."""
        return replace(
            self,
            positive=tuple(p for p in self.positive if p[1] != 0),
            negative=tuple(p for p in self.negative if p[1] != 0),
        )

    # -- counter semantics ----------------------------------------------------------------
    def detect_reset(self, previous: FloatHistogram) -> bool:
        """Whether going from ``previous`` to ``self`` implies a counter reset (``DetectReset``).

        Any count (total, zero bucket, a bucket) that shrinks or a finer resolution is a reset;
        a coarser schema, a larger zero threshold or coarser custom bounds are merged first.
        """
        if self.counter_reset_hint == "reset":
            return True
        if self.counter_reset_hint == "not_reset":
            return False
        if self.uses_custom_buckets != previous.uses_custom_buckets:
            return True
        if self.count < previous.count:
            return True
        if self.uses_custom_buckets:
            common = _common_bounds(self.custom_values, previous.custom_values)
            cur, prev = self.with_custom_values(common), previous.with_custom_values(common)
            return _buckets_shrank(cur.positive, prev.positive)
        if self.schema > previous.schema or self.zero_threshold < previous.zero_threshold:
            return True
        prev = previous.to_schema(self.schema).with_zero_threshold(self.zero_threshold)
        if self.zero_count < prev.zero_count:
            return True
        return _buckets_shrank(self.positive, prev.positive) or _buckets_shrank(self.negative, prev.negative)

    def same_as(self, other: FloatHistogram) -> bool:
        """Exact equality of layout and counts, empty buckets ignored (``Equals`` after compaction)."""
        a, b = self.compact(), other.compact()
        return (
            a.schema == b.schema
            and a.zero_threshold == b.zero_threshold
            and _feq(a.zero_count, b.zero_count)
            and _feq(a.count, b.count)
            and _feq(a.sum, b.sum)
            and a.positive == b.positive
            and a.negative == b.negative
            and (not a.uses_custom_buckets or a.custom_values == b.custom_values)
        )


def make_histogram(
    count: float,
    total: float,
    schema: int,
    zero_threshold: float,
    zero_count: float,
    positive: tuple[tuple[int, float], ...],
    negative: tuple[tuple[int, float], ...],
    custom_values: tuple[float, ...],
    counter_reset_hint: str,
) -> FloatHistogram:
    """``FloatHistogram(...)`` without the frozen dataclass's per-field ``__setattr__`` (a third
    of the cost), for code that builds one per output point."""
    h = object.__new__(FloatHistogram)
    h.__dict__.update(
        count=count,
        sum=total,
        schema=schema,
        zero_threshold=zero_threshold,
        zero_count=zero_count,
        positive=positive,
        negative=negative,
        custom_values=custom_values,
        counter_reset_hint=counter_reset_hint,
    )
    return h


class IncompatibleHistograms(ValueError):
    """Exponential and custom-bucket histograms cannot be combined."""


def _feq(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * (math.copysign(1.0, b))
    return a / b


def bucket_upper(schema: int, idx: int) -> float:
    """Upper bound of exponential bucket ``idx``: ``2 ** (idx * 2 ** -schema)``."""
    if schema <= 0:
        try:
            return math.ldexp(1.0, idx << -schema)
        except OverflowError:
            return math.inf
    whole, frac = divmod(idx, 1 << schema)
    try:
        return math.ldexp(2.0 ** (frac / (1 << schema)), whole)
    except OverflowError:
        return math.inf


def custom_bounds(custom_values: tuple[float, ...], idx: int) -> tuple[float, float]:
    lo = custom_values[idx - 1] if idx > 0 else -math.inf
    hi = custom_values[idx] if idx < len(custom_values) else math.inf
    return lo, hi


def _merge_indices(buckets: tuple[tuple[int, float], ...], target: Any) -> tuple[tuple[int, float], ...]:
    merged: dict[int, float] = {}
    for idx, c in buckets:
        t = target(idx)
        merged[t] = merged.get(t, 0.0) + c
    return tuple(sorted(merged.items()))


def _common_bounds(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    if a == b:
        return a
    other = set(b)
    return tuple(v for v in a if v in other)


def _buckets_shrank(cur: tuple[tuple[int, float], ...], prev: tuple[tuple[int, float], ...]) -> bool:
    if len(cur) == len(prev) and all(x[0] == y[0] for x, y in zip(cur, prev, strict=True)):  # same layout
        return any(y[1] != 0 and x[1] < y[1] for x, y in zip(cur, prev, strict=True))
    now = dict(cur)
    return any(c != 0 and now.get(i, 0.0) < c for i, c in prev)


def _reset_hint(a: str, b: str) -> str:
    if a == b or a == "gauge":
        return a
    if b == "gauge":
        return "gauge"
    return "unknown"


def _combine(h: FloatHistogram, o: FloatHistogram, sign: float) -> tuple[FloatHistogram, bool]:
    if h.uses_custom_buckets != o.uses_custom_buckets:
        raise IncompatibleHistograms(
            "vector contains a mix of histograms with exponential and custom buckets schemas"
        )
    reconciled = False
    if h.uses_custom_buckets:
        if h.custom_values != o.custom_values:
            common = _common_bounds(h.custom_values, o.custom_values)
            h, o = h.with_custom_values(common), o.with_custom_values(common)
            reconciled = True
    else:
        schema = min(h.schema, o.schema)
        h, o = h.to_schema(schema), o.to_schema(schema)
        zt = max(h.zero_threshold, o.zero_threshold)
        h, o = h.with_zero_threshold(zt), o.with_zero_threshold(zt)
    out = FloatHistogram(
        h.count + sign * o.count,
        h.sum + sign * o.sum,
        h.schema,
        h.zero_threshold,
        h.zero_count + sign * o.zero_count,
        _add_buckets(h.positive, o.positive, sign),
        _add_buckets(h.negative, o.negative, sign),
        h.custom_values,
        _reset_hint(h.counter_reset_hint, o.counter_reset_hint),
    )
    return out, reconciled


def _add_buckets(
    a: tuple[tuple[int, float], ...], b: tuple[tuple[int, float], ...], sign: float
) -> tuple[tuple[int, float], ...]:
    if not b:
        return a
    if len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b, strict=True)):  # same layout
        return tuple([(x[0], x[1] + sign * y[1]) for x, y in zip(a, b, strict=True)])
    merged = dict(a)
    for i, c in b:
        merged[i] = merged.get(i, 0.0) + sign * c
    return tuple(sorted(merged.items()))


# -- statistics ---------------------------------------------------------------------------------


def quantile(q: float, h: FloatHistogram) -> float:
    """``histogram_quantile`` of one native histogram (Prometheus's ``HistogramQuantile``).

    Exponential buckets interpolate on a log scale, custom buckets and the zero bucket linearly;
    a custom histogram's first bucket starts at 0 when its upper bound is positive. Quantiles
    from 0.5 up walk the buckets from the top, as Prometheus does (it decides ties at a bucket
    boundary); a NaN sum (NaN observations) forces the walk from the bottom.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if h.count == 0:
        return math.nan
    return quantile_of_buckets(q, bucket_view(h))


@dataclass(frozen=True)
class BucketView:
    """What ``quantile`` and ``fraction`` read of a histogram: its totals, whether it uses custom
    buckets and has negative/positive buckets, and :meth:`FloatHistogram.buckets`. Dense
    histogram rows (``promql.densehist``) build it without a :class:`FloatHistogram`."""

    count: float
    sum: float
    custom: bool
    has_negative: bool
    has_positive: bool
    buckets: list[Bucket]


def bucket_view(h: FloatHistogram) -> BucketView:
    return BucketView(h.count, h.sum, h.uses_custom_buckets, bool(h.negative), bool(h.positive), h.buckets())


NAN_RESULT = "nan_result"
NAN_SKEW = "nan_skew"


def quantile_of_buckets(q: float, h: BucketView) -> float:
    """:func:`quantile` for ``0 <= q <= 1`` and a non-zero count."""
    return quantile_noted(q, h)[0]


def quantile_noted(q: float, h: BucketView) -> tuple[float, str | None]:
    """:func:`quantile_of_buckets` and what Prometheus notes about NaN observations (a NaN sum
    with fewer observations in buckets than counted): :data:`NAN_RESULT` when the rank lies
    beyond every bucket (the result is NaN), :data:`NAN_SKEW` when it lies in one (the result
    is skewed higher), else None."""
    forward = math.isnan(h.sum) or q < 0.5
    rank = q * h.count if forward else (1 - q) * h.count
    all_buckets = h.buckets
    count = 0.0
    chosen: Bucket | None = None
    for b in all_buckets if forward else reversed(all_buckets):
        if b[2] == 0:
            continue
        chosen = b
        count += b[2]
        if count >= rank:
            break
    if chosen is None:  # no bucket: NaN observations alone (a NaN sum) are worth an info
        return math.nan, (NAN_RESULT if math.isnan(h.sum) else None)
    lower, upper, bcount = chosen[0], chosen[1], chosen[2]
    if not h.custom and lower < 0 < upper:
        if not h.has_negative and h.has_positive:
            lower = 0.0
        elif not h.has_positive and h.has_negative:
            upper = 0.0
    elif h.custom:
        if lower == -math.inf:
            if upper <= 0:
                return upper, None
            lower = 0.0
        elif upper == math.inf:
            return lower, None
    count = min(count, h.count)
    if count < rank:
        return (math.nan, NAN_RESULT) if math.isnan(h.sum) else (upper, None)
    rank = rank - (count - bcount) if forward else count - rank
    note = None
    if math.isnan(h.sum):  # the walk was forward: add the buckets above the chosen one
        rest = all_buckets[all_buckets.index(chosen) + 1 :]
        for b in rest:
            count += b[2]
        if count < h.count:
            note = NAN_SKEW
    fraction_in = rank / bcount
    if h.custom or (lower <= 0 <= upper):
        return lower + (upper - lower) * fraction_in, note
    log_lower, log_upper = math.log2(abs(lower)), math.log2(abs(upper))
    if lower > 0:
        return 2.0 ** (log_lower + (log_upper - log_lower) * fraction_in), note
    return -(2.0 ** (log_upper + (log_lower - log_upper) * (1 - fraction_in))), note


def has_nan_observations(h: BucketView) -> bool:
    """A NaN sum and fewer observations in buckets than counted (``histogram_fraction``'s note)."""
    return math.isnan(h.sum) and sum(b[2] for b in h.buckets) < h.count


def fraction(lower: float, upper: float, h: FloatHistogram) -> float:
    """``histogram_fraction``: the share of observations between ``lower`` and ``upper``
    (Prometheus's ``HistogramFraction``: linear within custom buckets and the zero bucket,
    logarithmic within exponential ones; a bucket spanning 0 starts or ends at 0 when the
    histogram has only positive or only negative buckets)."""
    if h.count == 0 or math.isnan(lower) or math.isnan(upper):
        return math.nan
    if lower >= upper:
        return 0.0
    return fraction_of_buckets(lower, upper, bucket_view(h))


def fraction_of_buckets(lower: float, upper: float, h: BucketView) -> float:
    """:func:`fraction` for ``lower < upper`` (neither NaN) and a non-zero count."""
    rank = 0.0
    lower_rank = upper_rank = 0.0
    lower_set = upper_set = False
    for b_lo, b_hi, b_count, _, _ in h.buckets:
        zero_bucket = b_lo <= 0 <= b_hi
        if zero_bucket:
            if not h.has_negative and h.has_positive:
                b_lo = 0.0
            elif not h.has_positive and h.has_negative:
                b_hi = 0.0
        if not lower_set and b_lo >= lower:
            lower_rank, lower_set = rank, True
        if not upper_set and b_lo >= upper:
            upper_rank, upper_set = rank, True
        if lower_set and upper_set:
            break
        linear = h.custom or zero_bucket
        if not lower_set and b_lo < lower < b_hi:
            lower_rank, lower_set = rank + b_count * position(lower, b_lo, b_hi, linear), True
        if not upper_set and b_lo < upper < b_hi:
            upper_rank, upper_set = rank + b_count * position(upper, b_lo, b_hi, linear), True
        if lower_set and upper_set:
            break
        rank += b_count
    total = h.count
    if math.isnan(h.sum):  # NaN observations are counted but sit in no bucket
        total = sum(b[2] for b in h.buckets)
    if not lower_set or lower_rank > total:
        lower_rank = total
    if not upper_set or upper_rank > total:
        upper_rank = total
    return (upper_rank - lower_rank) / h.count


def position(v: float, lo: float, hi: float, linear: bool) -> float:
    """How far ``v`` lies into the bucket ``(lo, hi]``, from 0 to 1."""
    if math.isinf(lo) or math.isinf(hi):
        return 0.0 if hi == math.inf else 1.0
    if linear:
        return (v - lo) / (hi - lo)
    log_lo, log_hi, log_v = math.log2(abs(lo)), math.log2(abs(hi)), math.log2(abs(v))
    if v > 0:
        return (log_v - log_lo) / (log_hi - log_lo)
    return 1 - (log_v - log_hi) / (log_lo - log_hi)


def variance(h: FloatHistogram) -> float:
    """``histogram_stdvar``: each bucket's observations at its geometric mean (arithmetic for
    custom buckets, 0 in the zero bucket), around the mean ``sum / count``."""
    mean = h.sum / h.count if h.count else math.nan
    total = 0.0
    for lo, hi, count, _, _ in h.buckets():
        if count == 0:
            continue
        if h.uses_custom_buckets:
            val = (lo + hi) / 2.0
        elif lo <= 0 <= hi:
            val = 0.0
        else:
            val = math.sqrt(hi * lo)
            if hi < 0:
                val = -val
        total += count * (val - mean) ** 2
    return _div(total, h.count)


# -- the promqltest notation ---------------------------------------------------------------------

_HINTS = ("unknown", "reset", "not_reset", "gauge")
_FIELD = re.compile(r"\s*([a-z_]+)\s*:\s*(\[[^\]]*\]|[^\s\[\]]+)")


def parse_histogram(text: str) -> FloatHistogram:
    """A ``{{schema:0 sum:5 count:4 buckets:[1 2 1] ...}}`` description (braces included)."""
    body = text.strip()
    if not (body.startswith("{{") and body.endswith("}}")):
        raise ValueError(f"invalid histogram {text!r}")
    body = body[2:-2]
    fields: dict[str, Any] = {}
    pos = 0
    while pos < len(body):
        if not body[pos:].strip():
            break
        m = _FIELD.match(body, pos)
        if not m:
            raise ValueError(f"invalid histogram description {text!r}")
        key, raw = m.group(1), m.group(2)
        if key in fields:
            raise ValueError(f"duplicate key {key!r} in histogram {text!r}")
        if raw.startswith("["):
            fields[key] = [_float(x) for x in raw[1:-1].split()]
        elif key == "counter_reset_hint":
            if raw not in _HINTS:
                raise ValueError(f"invalid counter_reset_hint {raw!r}")
            fields[key] = raw
        else:
            fields[key] = _float(raw)
        pos = m.end()
    known = {"schema", "sum", "count", "z_bucket", "z_bucket_w", "buckets", "offset", "n_buckets",
             "n_offset", "counter_reset_hint", "custom_values"}  # fmt: skip
    unknown = set(fields) - known
    if unknown:
        raise ValueError(f"unknown key {sorted(unknown)[0]!r} in histogram {text!r}")
    offset, n_offset = int(fields.get("offset", 0)), int(fields.get("n_offset", 0))
    return FloatHistogram(
        count=float(fields.get("count", 0.0)),
        sum=float(fields.get("sum", 0.0)),
        schema=int(fields.get("schema", 0)),
        zero_threshold=float(fields.get("z_bucket_w", 0.0)),
        zero_count=float(fields.get("z_bucket", 0.0)),
        positive=tuple((offset + k, c) for k, c in enumerate(fields.get("buckets", []))),
        negative=tuple((n_offset + k, c) for k, c in enumerate(fields.get("n_buckets", []))),
        custom_values=tuple(fields.get("custom_values", [])),
        counter_reset_hint=fields.get("counter_reset_hint", "unknown"),
    )


def _float(text: str) -> float:
    low = text.lower().lstrip("+-")
    if low in ("inf", "nan"):
        return float(text)
    return float(text)


def test_expression(h: FloatHistogram) -> str:
    """The notation of a histogram, as Prometheus's ``TestExpression`` prints it."""
    parts = []
    if h.schema != 0:
        parts.append(f"schema:{h.schema}")
    if h.count != 0:
        parts.append(f"count:{format_float(h.count)}")
    if h.sum != 0:
        parts.append(f"sum:{format_float(h.sum)}")
    if h.zero_count != 0:
        parts.append(f"z_bucket:{format_float(h.zero_count)}")
    if h.zero_threshold != 0:
        parts.append(f"z_bucket_w:{format_float(h.zero_threshold)}")
    if h.custom_values:
        parts.append("custom_values:[" + " ".join(format_float(v) for v in h.custom_values) + "]")
    for name, off, bs in (("buckets", "offset", h.positive), ("n_buckets", "n_offset", h.negative)):
        if bs:
            first, last = bs[0][0], bs[-1][0]
            dense = dict(bs)
            if first != 0:
                parts.append(f"{off}:{first}")
            parts.append(
                f"{name}:[" + " ".join(format_float(dense.get(i, 0.0)) for i in range(first, last + 1)) + "]"
            )
    if h.counter_reset_hint != "unknown":
        parts.append(f"counter_reset_hint:{h.counter_reset_hint}")
    return "{{" + " ".join(parts) + "}}"


def histogram_string(h: FloatHistogram) -> str:
    """Go's ``FloatHistogram.String()``: ``{count:20, sum:10, [-2,-1):2, (0.5,1]:1}``."""

    def g(v: float) -> str:
        return format_float(v, "g", -1)

    parts = [f"count:{g(h.count)}", f"sum:{g(h.sum)}"]
    if h.uses_custom_buckets:
        for idx, c in h.positive:
            if c != 0:
                lo, hi = custom_bounds(h.custom_values, idx)
                parts.append(f"({g(lo)},{g(hi)}]:{g(c)}")
    else:
        for idx, c in reversed(h.negative):
            if c != 0:
                lo, hi = -bucket_upper(h.schema, idx), -bucket_upper(h.schema, idx - 1)
                parts.append(f"[{g(lo)},{g(hi)}):{g(c)}")
        if h.zero_count != 0:
            parts.append(f"[{g(-h.zero_threshold)},{g(h.zero_threshold)}]:{g(h.zero_count)}")
        for idx, c in h.positive:
            if c != 0:
                lo, hi = bucket_upper(h.schema, idx - 1), bucket_upper(h.schema, idx)
                parts.append(f"({g(lo)},{g(hi)}]:{g(c)}")
    return "{" + ", ".join(parts) + "}"
