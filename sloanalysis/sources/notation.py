"""Prometheus's series notation, as used by promqltest ``load`` blocks and promtool ``input_series``.

``metric{a="b"} 0+10x3 _ stale 5x2`` expands to samples at 0, 1, 2, ... intervals:
``a+bxN`` is N+1 values starting at a (accumulating b, as Prometheus does), ``axN`` repeats a
N+1 times, ``_`` skips one interval, ``_xN`` skips N, ``stale`` writes a stale marker.
Native-histogram values (``{{...}}``) are not float samples; parsers report them separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sloanalysis.errors import DataError
from sloanalysis.store import METRIC_NAME, STALE_NAN, Labels, SeriesStore, make_labels

# Decimal before hex: "52+0x100" is 52, increment 0, 100 times (as Prometheus reads it).
_NUM = r"(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|0[xX][0-9a-fA-F]+|[Ii]nf|NaN|nan)"
_ITEM = re.compile(rf"^(?P<base>[+-]?{_NUM}|stale)(?:(?P<sign>[+-])(?P<inc>{_NUM}))?(?:x(?P<times>[0-9]+))?$")
_BLANK = re.compile(r"^_(?:x(?P<times>[0-9]+))?$")
_HISTOGRAM = re.compile(r"\{\{.*?\}\}(?:[+-]\{\{.*?\}\})?(?:x[0-9]+)?")


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


def expand_values(text: str) -> list[float | None]:
    """Expand notation into one entry per interval; ``None`` marks a skipped interval."""
    out: list[float | None] = []
    for token in text.split():
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
    vals = expand_values(text)
    ts = [start_ms + i * interval_ms for i, v in enumerate(vals) if v is not None]
    vs = [v for v in vals if v is not None]
    return np.array(ts, dtype=np.int64), np.array(vs, dtype=np.float64)


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


def parse_series_line(line: str, interval_ms: int, start_ms: int = 0) -> SeriesLine:
    """Parse ``metric{labels} notation``; native-histogram items are dropped and flagged."""
    labels, rest = split_metric(line)
    has_hist = "{{" in rest
    if has_hist:
        rest = _HISTOGRAM.sub("_", rest)
    ts, vs = parse_series_notation(rest, interval_ms, start_ms)
    return SeriesLine(labels, ts, vs, has_hist)


def load_series(lines: list[str], interval_ms: int, store: SeriesStore | None = None) -> SeriesStore:
    """Add ``metric{labels} notation`` lines to a store (a new one unless given)."""
    store = SeriesStore() if store is None else store
    for line in lines:
        if line.strip():
            parsed = parse_series_line(line, interval_ms)
            store.add(parsed.labels, parsed.timestamps, parsed.values)
    return store
