"""The JSON of Prometheus's HTTP API: native histograms both ways, result frames as its ``data``.

The API (``util/jsonutil.MarshalHistogram``) writes a histogram sample as::

    {"count": "42", "sum": "34593.34", "buckets": [[3, "-0.25", "0.25", "3"], [0, "0.25", "0.5", "12"]]}

Numbers are strings in Go's ``strconv.FormatFloat(x, 'f', -1)`` (``'e'`` below 1e-6 and from
1e21); only buckets with a non-zero count appear, and ``buckets`` is left out when none does. The
first element of a bucket says which ends belong to it: 0 ``(lower, upper]``, 1 ``[lower, upper)``,
2 ``(lower, upper)``, 3 ``[lower, upper]``. Positive buckets are 0, negative ones 1, the zero
bucket 3; with custom bounds (schema -53) the first bucket ``[-Inf, b0]`` is 3 and the rest 0.

Reading back (:func:`histogram_from_api`) recovers the schema from the bounds: exponential buckets
have ``upper/lower == 2**(2**-schema)`` and bounds at integer powers of that base; a bound at
infinity, or bounds that fit no schema from -4 to 8, mean custom buckets, whose bounds are then
every finite bound listed (empty buckets between two listed ones do not matter). The JSON does not
say which of the two a histogram is, so custom bounds that happen to be powers of one base read
as exponential buckets.

:func:`api_data` writes a query's result frame as the API's ``data`` object: a ``vector`` of
``{"metric": {...}, "value": [t, "v"]}`` or ``{"metric": {...}, "histogram": [t, {...}]}``, or a
``matrix`` of ``{"metric": {...}, "values": [[t, "v"], ...], "histograms": [[t, {...}], ...]}``
(either key left out when empty), times in seconds as numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from sloanalysis._go import format_float
from sloanalysis.errors import UserError
from sloanalysis.nativehist import CUSTOM_BUCKETS_SCHEMA, FloatHistogram

__all__ = ["api_data", "api_float", "histogram_from_api", "histogram_text", "histogram_to_api"]

_SCHEMAS = range(-4, 9)
_TOLERANCE = 1e-9


def api_float(x: float) -> str:
    """A number as the API writes it (``jsonutil.MarshalFloat``, without the quotes)."""
    x = float(x)
    magnitude = abs(x)
    if magnitude != 0 and math.isfinite(x) and (magnitude < 1e-6 or magnitude >= 1e21):
        return format_float(x, "e")
    return format_float(x, "f")


def _rule(lower_inclusive: bool, upper_inclusive: bool) -> int:
    if lower_inclusive:
        return 3 if upper_inclusive else 1
    return 0 if upper_inclusive else 2


def histogram_to_api(h: FloatHistogram) -> dict[str, Any]:
    """The API's JSON object of one histogram sample (see the module docstring)."""
    out: dict[str, Any] = {"count": api_float(h.count), "sum": api_float(h.sum)}
    buckets = [
        [_rule(lo_in, up_in), api_float(lo), api_float(up), api_float(c)]
        for lo, up, c, lo_in, up_in in h.buckets()
        if c != 0
    ]
    if buckets:
        out["buckets"] = buckets
    return out


def histogram_text(h: FloatHistogram) -> str:
    """Prometheus's ``FloatHistogram.String()``: ``{count:12, sum:3.5, (0.5,1]:3, (1,2]:9}``."""
    parts = [f"count:{format_float(h.count)}", f"sum:{format_float(h.sum)}"]
    for lo, up, c, lo_in, up_in in h.buckets():
        if c != 0:
            ends = ("[" if lo_in else "(", "]" if up_in else ")")
            parts.append(f"{ends[0]}{format_float(lo)},{format_float(up)}{ends[1]}:{format_float(c)}")
    return "{" + ", ".join(parts) + "}"


# -- reading ------------------------------------------------------------------------------------


def _number(text: Any, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise UserError(f"native histogram: {what} {text!r} is not a number") from None


def _parse_buckets(raw: Any) -> list[tuple[int, float, float, float]]:
    if not isinstance(raw, list):
        raise UserError(f"native histogram: buckets must be a list, got {raw!r}")
    out = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) != 4 or item[0] not in (0, 1, 2, 3):
            raise UserError(f"native histogram: bucket {item!r} is not [rule 0-3, lower, upper, count]")
        lo, up = _number(item[1], "bucket bound"), _number(item[2], "bucket bound")
        out.append((int(item[0]), lo, up, _number(item[3], "bucket count")))
    return out


def _index(bound: float, schema: int) -> int | None:
    """``i`` with ``bound == 2**(i * 2**-schema)`` (the upper bound of exponential bucket ``i``)."""
    if not bound > 0:
        return None
    exact = math.log2(bound) * 2.0**schema
    i = round(exact)
    return i if abs(exact - i) <= _TOLERANCE * max(1.0, abs(exact)) else None


def _fits(spans: Sequence[tuple[float, float]], schema: int, zero_threshold: float) -> bool:
    """Whether every (|inner|, |outer|) span is bucket ``index(outer)`` of ``schema``: its inner
    bound is the previous power of the base, or the zero threshold where that power lies below it."""
    for inner, outer in spans:
        i = _index(outer, schema)
        if i is None:
            return False
        if not (_natural(inner, outer, schema) or (inner == zero_threshold and _below(i, schema, inner))):
            return False
    return True


def _natural(inner: float, outer: float, schema: int) -> bool:
    """Whether ``inner`` is the bound one bucket below ``outer`` (both powers of the base)."""
    i = _index(outer, schema)
    return i is not None and math.isclose(inner, 2.0 ** ((i - 1) * 2.0**-schema), rel_tol=1e-12)


def _below(i: int, schema: int, threshold: float) -> bool:
    """Whether bucket ``i``'s natural inner bound lies below ``threshold`` (so it was cut there)."""
    return 2.0 ** ((i - 1) * 2.0**-schema) < threshold


def _exponential(
    spans: Sequence[tuple[float, float, float, bool]],
    zero: tuple[float, float] | None,
    head: tuple[float, float],
) -> FloatHistogram | None:
    """``spans``: (|inner|, |outer|, count, negative) of every bucket but the zero bucket;
    ``zero``: the zero bucket's (threshold, count) when listed. Without it, a bucket cut short at
    the threshold tells the threshold (its inner bound); else the threshold does not matter (0)."""
    if not spans:  # no bucket but the zero bucket: no schema to tell, Prometheus's default 0
        return FloatHistogram(count=head[0], sum=head[1], zero_threshold=zero[0] if zero else 0.0,
                              zero_count=zero[1] if zero else 0.0)  # fmt: skip
    shapes = [(inner, outer) for inner, outer, _, _ in spans]
    threshold = zero[0] if zero else min((inner for inner, _ in shapes), default=0.0)
    for schema in reversed(_SCHEMAS):  # the finest schema that fits keeps the most detail
        if not _fits(shapes, schema, threshold):
            continue
        indexed = [(_index(outer, schema) or 0, c, neg) for _, outer, c, neg in spans]
        cut = any(not _natural(inner, outer, schema) for inner, outer in shapes)
        return FloatHistogram(
            count=head[0],
            sum=head[1],
            schema=schema,
            zero_threshold=threshold if zero or cut else 0.0,
            zero_count=zero[1] if zero else 0.0,
            positive=tuple(sorted((i, c) for i, c, neg in indexed if not neg)),
            negative=tuple(sorted((i, c) for i, c, neg in indexed if neg)),
        )
    return None


def _custom(buckets: Sequence[tuple[int, float, float, float]], head: tuple[float, float]) -> FloatHistogram:
    bounds = sorted({b for _, lo, up, _ in buckets for b in (lo, up) if math.isfinite(b)})
    position = {b: i for i, b in enumerate(bounds)}
    positive = []
    for _, lo, up, c in buckets:
        index = len(bounds) if up == math.inf else position.get(up)
        if index is None or (math.isfinite(lo) and position[lo] != index - 1):
            raise UserError(f"native histogram: bucket ({lo}, {up}] overlaps another bucket")
        positive.append((index, c))
    return FloatHistogram(
        count=head[0],
        sum=head[1],
        schema=CUSTOM_BUCKETS_SCHEMA,
        positive=tuple(sorted(positive)),
        custom_values=tuple(bounds),
    )


def histogram_from_api(obj: Mapping[str, Any]) -> FloatHistogram:
    """A :class:`FloatHistogram` from the API's JSON object (see the module docstring)."""
    if not isinstance(obj, Mapping) or "count" not in obj or "sum" not in obj:
        raise UserError(f"native histogram: expected an object with count and sum, got {obj!r}")
    head = (_number(obj["count"], "count"), _number(obj["sum"], "sum"))
    buckets = _parse_buckets(obj.get("buckets", []))
    if any(math.isinf(lo) or math.isinf(up) for _, lo, up, _ in buckets):
        return _custom(buckets, head)
    zero: tuple[float, float] | None = None
    spans = []
    for rule, lo, up, c in buckets:
        if rule == 3 and lo == -up:
            zero = (abs(up), c)
        elif rule == 0 and lo >= 0:  # a positive exponential bucket (lower, upper]
            spans.append((lo, up, c, False))
        elif rule == 1 and up <= 0:  # a negative one [lower, upper)
            spans.append((-up, -lo, c, True))
        else:
            return _custom(buckets, head)
    exponential = _exponential(spans, zero, head)
    return exponential if exponential is not None else _custom(buckets, head)


# -- result frames ------------------------------------------------------------------------------


def _api_time(ms: int) -> int | float:
    """Seconds as ``jsonutil.MarshalTimestamp`` writes them: whole, or with the milliseconds."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def api_data(frame: pd.DataFrame, *, instant: bool) -> dict[str, Any]:
    """The API's ``data`` of a result frame (:mod:`sloanalysis.query`'s shape). An instant query
    whose every series has one row is a ``vector``; anything else a ``matrix``."""
    label_cols = [c for c in frame.columns if c not in ("timestamp", "value", "histogram")]
    ms = (frame["timestamp"].astype("int64") // 1_000_000).tolist() if len(frame) else []
    values = frame["value"].tolist()
    hists: list[Any] = frame["histogram"].tolist() if "histogram" in frame.columns else [None] * len(frame)
    columns = [frame[c].fillna("").astype(str).tolist() for c in label_cols]
    keys = list(zip(*columns, strict=True)) if columns else None
    series: dict[tuple[str, ...], list[int]] = {}
    for row in range(len(frame)):
        series.setdefault(keys[row] if keys else (), []).append(row)
    vector = instant and all(len(rows) == 1 for rows in series.values())
    result = []
    for key, rows in series.items():
        entry: dict[str, Any] = {"metric": {n: v for n, v in zip(label_cols, key, strict=True) if v}}
        floats = [[_api_time(ms[r]), api_float(values[r])] for r in rows if hists[r] is None]
        natives = [[_api_time(ms[r]), histogram_to_api(hists[r])] for r in rows if hists[r] is not None]
        if vector:
            entry.update({"value": floats[0]} if floats else {"histogram": natives[0]})
        else:
            entry.update(
                ({"values": floats} if floats else {}) | ({"histograms": natives} if natives else {})
            )
        result.append(entry)
    return {"resultType": "vector" if vector else "matrix", "result": result}
