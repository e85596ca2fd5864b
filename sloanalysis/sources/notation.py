"""Prometheus's series notation, as used by promqltest ``load`` blocks and promtool ``input_series``.

``metric{a="b"} 0+10x3 _ stale 5x2`` expands to samples at 0, 1, 2, ... intervals:
``a+bxN`` is N+1 values starting at a (accumulating b, as Prometheus does), ``axN`` repeats a
N+1 times, ``_`` skips one interval, ``_xN`` skips N, ``stale`` writes a stale marker.
Native-histogram values are written ``{{schema:0 sum:5 count:4 buckets:[1 2 1]}}`` and expand the
same way: ``{{a}}+{{b}}xN`` adds ``b`` N times, ``{{a}}-{{b}}xN`` subtracts, ``{{a}}xN`` repeats.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sloanalysis.errors import DataError
from sloanalysis.nativehist import FloatHistogram, IncompatibleHistograms, parse_histogram
from sloanalysis.store import METRIC_NAME, STALE_NAN, Labels, SeriesStore, make_labels

# Decimal before hex: "52+0x100" is 52, increment 0, 100 times (as Prometheus reads it).
_NUM = r"(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|0[xX][0-9a-fA-F]+|[Ii]nf|NaN|nan)"
_ITEM = re.compile(rf"^(?P<base>[+-]?{_NUM}|stale)(?:(?P<sign>[+-])(?P<inc>{_NUM}))?(?:x(?P<times>[0-9]+))?$")
_BLANK = re.compile(r"^_(?:x(?P<times>[0-9]+))?$")
_HISTOGRAM = re.compile(
    r"(?P<base>\{\{.*?\}\})(?:(?P<sign>[+-])(?P<inc>\{\{.*?\}\}))?(?:x(?P<times>[0-9]+))?"
)
_TOKEN = re.compile(r"\{\{.*?\}\}(?:[+-]\{\{.*?\}\})?(?:x[0-9]+)?|\S+")

Item = float | FloatHistogram | None
"""One interval of expanded notation: a float, a native histogram, or None (no sample)."""


def _number(text: str) -> float:
    if text == "stale":
        return STALE_NAN
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body.lower().startswith("0x"):
        return sign * float(int(body, 16))
    if body.lower() == "inf":
        return sign * float("inf")
    if body.lower() == "nan":
        return float("nan")
    return sign * float(body)


def _expand_histogram(token: str) -> list[Item]:
    m = _HISTOGRAM.fullmatch(token)
    if not m:
        raise DataError(f"invalid series value {token!r}")
    try:
        value = parse_histogram(m.group("base"))
        inc = parse_histogram(m.group("inc")) if m.group("inc") else None
    except ValueError as exc:
        raise DataError(f"invalid series value {token!r}: {exc}") from None
    if m.group("times") is None:
        if inc is not None:
            raise DataError(f"invalid series value {token!r}: increment without xN")
        return [value]
    out: list[Item] = [value]
    for _ in range(int(m.group("times"))):
        if inc is not None:
            if value.schema > inc.schema and not value.uses_custom_buckets:
                raise DataError(
                    f"invalid series value {token!r}: cannot merge from schema {inc.schema} to {value.schema}"
                )
            try:
                value = (value.add(inc) if m.group("sign") == "+" else value.sub(inc))[0]
            except IncompatibleHistograms as exc:
                raise DataError(f"invalid series value {token!r}: {exc}") from None
        out.append(value)
    return out


def expand_values(text: str) -> list[Item]:
    """Expand notation into one entry per interval; ``None`` marks a skipped interval."""
    out: list[Item] = []
    for token in _TOKEN.findall(text):
        if token.startswith("{{"):
            out.extend(_expand_histogram(token))
            continue
        blank = _BLANK.match(token)
        if blank:
            out.extend([None] * (int(blank.group("times")) if blank.group("times") else 1))
            continue
        m = _ITEM.match(token)
        if not m:
            raise DataError(f"invalid series value {token!r}")
        value = _number(m.group("base"))
        if m.group("times") is None:
            if m.group("inc") is not None:
                raise DataError(f"invalid series value {token!r}: increment without xN")
            out.append(value)
            continue
        inc = 0.0
        if m.group("inc") is not None:
            inc = _number(m.group("inc")) * (-1.0 if m.group("sign") == "-" else 1.0)
        for _ in range(int(m.group("times")) + 1):
            out.append(value)
            value += inc
    return out


def parse_series_notation(text: str, interval_ms: int, start_ms: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps ms, values) of a value notation; skipped intervals produce no sample."""
    ts, vs, _ = parse_series_samples(text, interval_ms, start_ms)
    return ts, vs


def parse_series_samples(
    text: str, interval_ms: int, start_ms: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(timestamps, values, histograms): the histograms array (object, aligned with timestamps;
    None cells are float samples) is None when the notation holds no histogram."""
    items = expand_values(text)
    ts = np.array([start_ms + i * interval_ms for i, v in enumerate(items) if v is not None], dtype=np.int64)
    kept = [v for v in items if v is not None]
    if not any(isinstance(v, FloatHistogram) for v in kept):
        return ts, np.array(kept, dtype=np.float64), None
    hs = np.empty(len(kept), dtype=object)
    vs = np.empty(len(kept), dtype=np.float64)
    for k, v in enumerate(kept):
        if isinstance(v, FloatHistogram):
            hs[k], vs[k] = v, np.nan
        else:
            hs[k], vs[k] = None, v
    return ts, vs, hs


# -- metric descriptions ------------------------------------------------------------------

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:.]*")
_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _read_string(text: str, i: int) -> tuple[str, int]:
    """Read a Go-style quoted string starting at ``text[i]``; returns (value, next index)."""
    quote = text[i]
    j = i + 1
    out: list[str] = []
    raw = bytearray()

    def flush() -> None:
        if raw:
            out.append(raw.decode("utf-8", errors="surrogateescape"))
            raw.clear()

    while j < len(text):
        c = text[j]
        if c == quote:
            flush()
            return "".join(out), j + 1
        if c == "\\" and quote != "`":
            nxt = text[j + 1 : j + 2]
            if nxt == "x":
                raw.append(int(text[j + 2 : j + 4], 16))
                j += 4
                continue
            flush()
            if nxt in ("u", "U"):
                width = 4 if nxt == "u" else 8
                out.append(chr(int(text[j + 2 : j + 2 + width], 16)))
                j += 2 + width
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                j += 2
                continue
            raise DataError(f"invalid escape in {text[i:]!r}")
        flush()
        out.append(c)
        j += 1
    raise DataError(f"unterminated string in {text!r}")


def split_metric(line: str) -> tuple[Labels, str]:
    """Split ``metric{a="b"} rest`` into (labels, rest)."""
    text = line.strip()
    i = 0
    labels: dict[str, str] = {}
    m = _IDENT.match(text)
    if m and (m.end() == len(text) or text[m.end()] in " \t{"):
        labels[METRIC_NAME] = m.group(0)
        i = m.end()
    if i < len(text) and text[i] == "{":
        i += 1
        while True:
            while i < len(text) and text[i] in " \t,":
                i += 1
            if i >= len(text):
                raise DataError(f"unterminated label set in {line!r}")
            if text[i] == "}":
                i += 1
                break
            if text[i] in "\"'`":
                name, i = _read_string(text, i)
            else:
                nm = _IDENT.match(text, i)
                if not nm:
                    raise DataError(f"invalid label name in {line!r}")
                name, i = nm.group(0), nm.end()
            while i < len(text) and text[i] in " \t":
                i += 1
            if i < len(text) and text[i] == "=":
                i += 1
                while i < len(text) and text[i] in " \t":
                    i += 1
                if i >= len(text) or text[i] not in "\"'`":
                    raise DataError(f"label value must be quoted in {line!r}")
                value, i = _read_string(text, i)
                labels[name] = value
            else:  # a bare quoted string is the metric name
                labels[METRIC_NAME] = name
    elif not labels:
        raise DataError(f"no metric in {line!r}")
    return make_labels(labels), text[i:].strip()


@dataclass
class SeriesLine:
    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray
    has_histograms: bool
    histograms: np.ndarray | None = None  # object array aligned with timestamps (see store.Series)


def parse_series_line(line: str, interval_ms: int, start_ms: int = 0) -> SeriesLine:
    """Parse ``metric{labels} notation``, native-histogram items included."""
    labels, rest = split_metric(line)
    ts, vs, hs = parse_series_samples(rest, interval_ms, start_ms)
    return SeriesLine(labels, ts, vs, hs is not None, hs)


def load_series(lines: list[str], interval_ms: int, store: SeriesStore | None = None) -> SeriesStore:
    """Add ``metric{labels} notation`` lines to a store (a new one unless given)."""
    store = SeriesStore() if store is None else store
    for line in lines:
        if line.strip():
            parsed = parse_series_line(line, interval_ms)
            store.add(parsed.labels, parsed.timestamps, parsed.values, parsed.histograms)
    return store


def nhcb_series(store: SeriesStore) -> list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray]]:
    """Classic ``_bucket``/``_sum`` series converted to native histograms with custom buckets
    (schema -53), as promqltest's ``load_with_nhcb`` does: one histogram per timestamp where
    every bucket of the group has a float sample, named after the base metric."""
    groups: dict[Labels, dict[float, Any]] = {}
    sums: dict[Labels, Any] = {}
    for s in store:
        d = dict(s.labels)
        name = d.get(METRIC_NAME, "")
        if name.endswith("_bucket") and "le" in d:
            try:
                le = float(d.pop("le"))
            except ValueError:
                continue
            d[METRIC_NAME] = name[: -len("_bucket")]
            groups.setdefault(make_labels(d), {})[le] = s
        elif name.endswith("_sum"):
            d[METRIC_NAME] = name[: -len("_sum")]
            sums[make_labels(d)] = s
    out = []
    for labels, by_le in groups.items():
        bounds = sorted(by_le)
        times = sorted(set().union(*(set(by_le[b].timestamps.tolist()) for b in bounds)))
        custom = tuple(b for b in bounds if b != math.inf)
        ts_out, hs_out = [], []
        sum_series = sums.get(labels)
        for t in times:
            cum = []
            for b in bounds:
                s = by_le[b]
                k = int(np.searchsorted(s.timestamps, t))
                if k >= s.timestamps.size or s.timestamps[k] != t or np.isnan(s.values[k]):
                    break
                cum.append(float(s.values[k]))
            if len(cum) != len(bounds):
                continue
            total = 0.0
            if sum_series is not None:
                k = int(np.searchsorted(sum_series.timestamps, t))
                if k < sum_series.timestamps.size and sum_series.timestamps[k] == t:
                    total = float(sum_series.values[k])
            counts = [cum[0]] + [cum[k] - cum[k - 1] for k in range(1, len(cum))]
            if bounds[-1] != math.inf:
                counts.append(0.0)
            ts_out.append(t)
            hs_out.append(
                FloatHistogram(
                    count=cum[-1], sum=total, schema=-53, custom_values=custom,
                    positive=tuple(enumerate(counts)),
                )
            )  # fmt: skip
        if ts_out:
            hs = np.empty(len(hs_out), dtype=object)
            hs[:] = hs_out
            out.append((labels, np.array(ts_out, dtype=np.int64), np.full(len(ts_out), np.nan), hs))
    return out
