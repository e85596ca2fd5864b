"""The series store: labelled float series with int64 millisecond timestamps.

One container serves every source (simulator runs, promqltest ``load`` blocks, promtool
``input_series``, samples fetched from a real Prometheus). Each series keeps its samples in two
numpy arrays sorted by time, so slicing a time range is two ``searchsorted`` calls.

Staleness markers are Prometheus's stale NaN (bit pattern ``0x7ff0000000000002``); they are
ordinary float64 values here and survive every round trip because nothing rewrites NaN payloads.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sloanalysis.errors import DataError
from sloanalysis.files import atomic_write_with

STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = float(np.array([STALE_NAN_BITS], dtype=np.uint64).view(np.float64)[0])
METRIC_NAME = "__name__"

Labels = tuple[tuple[str, str], ...]
"""Sorted (name, value) pairs; empty values are dropped, as Prometheus treats them as absent."""


def make_labels(mapping: Mapping[str, str]) -> Labels:
    """Canonical label tuple: sorted by name, empty values removed."""
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


def is_stale(values: np.ndarray) -> np.ndarray:
    """Boolean mask of stale markers (exact bit pattern, not any NaN)."""
    arr = np.ascontiguousarray(values, dtype=np.float64)
    return arr.view(np.uint64) == np.uint64(STALE_NAN_BITS)


def format_labels(labels: Labels) -> str:
    """``name{a="b"}`` text of a label set, as Prometheus prints it."""
    d = dict(labels)
    name = d.pop(METRIC_NAME, "")
    inner = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(d.items()))
    return f"{name}{{{inner}}}" if inner or not name else name


@dataclass(frozen=True)
class Series:
    """One labelled series; ``timestamps`` (int64 ms) strictly increasing."""

    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray

    @property
    def name(self) -> str:
        return dict(self.labels).get(METRIC_NAME, "")

    def window(self, start_ms: int, end_ms: int, *, left_open: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Samples with ``start < t <= end`` (or ``start <= t <= end`` when not left-open)."""
        lo = int(np.searchsorted(self.timestamps, start_ms, side="right" if left_open else "left"))
        hi = int(np.searchsorted(self.timestamps, end_ms, side="right"))
        return self.timestamps[lo:hi], self.values[lo:hi]


_MATCH_OPS = ("=", "!=", "=~", "!~")


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_INLINE_FLAGS = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?\)")


def go_regex(pattern: str) -> str:
    """Translate Go RE2 syntax that Python's ``re`` rejects or reads differently.

    Inline flags such as ``(?i)`` may appear anywhere in RE2 and apply to the rest of the
    enclosing group (across ``|``); Python only allows them at the start, so they become
    scoped groups. Also ``\\z``, ``\\Q...\\E``, ``(?<name>...)`` and classes like ``[[:alpha:]]``.
    """
    out: list[str] = []
    scopes: list[list[str]] = [[]]  # flag groups opened at each group level
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end
                out.append(re.escape(pattern[i + 2 : end]))
                i = end + 2
                continue
            out.append("\\Z" if nxt == "z" else pattern[i : i + 2])
            i += 2
            continue
        if c == "[":
            i = _char_class(pattern, i, out)
            continue
        m = _INLINE_FLAGS.match(pattern, i)
        if m:
            on = m.group(1).replace("U", "")
            off = (m.group(2) or "").replace("U", "")
            flags = on + (f"-{off}" if off else "")
            if flags:
                out.append(f"(?{flags}:")
                scopes[-1].append(flags)
            i = m.end()
            continue
        if c == "(":
            named = pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i)
            out.append("(?P<" if named else "(")
            i += 3 if named else 1
            scopes.append([])
            continue
        if c == ")" and len(scopes) > 1:
            out.append(")" * len(scopes.pop()) + ")")
            i += 1
            continue
        if c == "|" and scopes[-1]:
            out.append(")" * len(scopes[-1]) + "|" + "".join(f"(?{f}:" for f in scopes[-1]))
            i += 1
            continue
        out.append(c)
        i += 1
    out.append(")" * len(scopes[0]))
    return "".join(out)


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    """Copy the bracket expression at ``pattern[i]``, expanding POSIX classes; returns its end."""
    j = i + 1
    head = "["
    if pattern.startswith("^", j):
        head += "^"
        j += 1
    if pattern.startswith("]", j):  # a leading "]" is literal
        head += "\\]"
        j += 1
    body = [head]
    while j < len(pattern) and pattern[j] != "]":
        m = re.match(r"\[:([a-z]+):\]", pattern[j:])
        if m and m.group(1) in _POSIX_CLASSES:
            body.append(_POSIX_CLASSES[m.group(1)])
            j += m.end()
        elif pattern[j] == "\\":
            body.append(pattern[j : j + 2])
            j += 2
        else:
            body.append("\\[" if pattern[j] == "[" else pattern[j])
            j += 1
    out.append("".join(body) + "]")
    return j + 1


@dataclass(frozen=True)
class Matcher:
    """A label matcher; regexes are fully anchored, as in Prometheus."""

    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def of(name: str, op: str, value: str) -> Matcher:
        if op not in _MATCH_OPS:
            raise DataError(f"unknown matcher operator {op!r} for label {name!r}")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(f"(?s:^(?:{go_regex(value)})$)")
            except re.error as exc:
                raise DataError(f"invalid regex {value!r} for label {name!r}: {exc}") from None
        return Matcher(name, op, value, regex)

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        hit = self._regex.match(value) is not None
        return hit if self.op == "=~" else not hit


class SeriesStore:
    """An indexed collection of series; adding the same label set twice merges samples."""

    def __init__(self, series: Iterable[Series] = ()) -> None:
        self._series: list[Series] = []
        self._by_labels: dict[Labels, int] = {}
        self._by_name: dict[str, list[int]] = {}
        for s in series:
            self.add(s.labels, s.timestamps, s.values)

    # -- building -----------------------------------------------------------------------
    def add(
        self,
        labels: Labels | Mapping[str, str],
        timestamps: Sequence[int] | np.ndarray,
        values: Sequence[float] | np.ndarray,
    ) -> Series:
        """Add samples to the series with these labels (merged and re-sorted if it exists).

        When two samples share a timestamp, the later-added one wins.
        """
        key = make_labels(labels) if isinstance(labels, Mapping) else tuple(sorted(labels))
        ts = np.asarray(timestamps, dtype=np.int64)
        vs = np.asarray(values, dtype=np.float64)
        if ts.shape != vs.shape or ts.ndim != 1:
            raise DataError(f"{format_labels(key)}: timestamps and values differ in shape")
        idx = self._by_labels.get(key)
        if idx is not None:
            old = self._series[idx]
            ts = np.concatenate([old.timestamps, ts])
            vs = np.concatenate([old.values, vs])
        if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            # Stable sort, then keep the last sample of each timestamp.
            order = np.argsort(ts, kind="stable")
            ts, vs = ts[order], vs[order]
            keep = np.append(ts[1:] != ts[:-1], True)
            ts, vs = ts[keep], vs[keep]
        series = Series(key, ts, vs)
        if idx is None:
            self._by_labels[key] = len(self._series)
            self._by_name.setdefault(series.name, []).append(len(self._series))
            self._series.append(series)
        else:
            self._series[idx] = series
        return series

    # -- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._series)

    def __iter__(self) -> Iterator[Series]:
        return iter(self._series)

    @property
    def num_samples(self) -> int:
        return sum(s.timestamps.size for s in self._series)

    def names(self) -> list[str]:
        return sorted(n for n in self._by_name if n)

    def get(self, labels: Labels | Mapping[str, str]) -> Series | None:
        key = make_labels(labels) if isinstance(labels, Mapping) else tuple(sorted(labels))
        idx = self._by_labels.get(key)
        return None if idx is None else self._series[idx]

    def select(self, matchers: Sequence[Matcher]) -> list[Series]:
        """Series whose labels satisfy every matcher (a missing label matches as "")."""
        candidates: Iterable[Series]
        name_eq = [m for m in matchers if m.name == METRIC_NAME and m.op == "="]
        if name_eq:
            candidates = [self._series[i] for i in self._by_name.get(name_eq[0].value, [])]
        else:
            candidates = self._series
        out = []
        for s in candidates:
            d = dict(s.labels)
            if all(m.matches(d.get(m.name, "")) for m in matchers):
                out.append(s)
        return out

    def time_range(self) -> tuple[int, int] | None:
        """(first, last) sample timestamp over all series, or None when empty."""
        firsts = [int(s.timestamps[0]) for s in self._series if s.timestamps.size]
        lasts = [int(s.timestamps[-1]) for s in self._series if s.timestamps.size]
        return (min(firsts), max(lasts)) if firsts else None

    def to_frame(self) -> pd.DataFrame:
        """Long frame: ``timestamp`` (UTC), ``value``, one column per label name."""
        names = sorted({k for s in self._series for k, _ in s.labels})
        cols: dict[str, list[np.ndarray]] = {n: [] for n in names}
        ts_parts, v_parts = [], []
        for s in self._series:
            d = dict(s.labels)
            n = s.timestamps.size
            ts_parts.append(s.timestamps)
            v_parts.append(s.values)
            for name in names:
                cols[name].append(np.full(n, d.get(name, ""), dtype=object))
        frame = pd.DataFrame(
            {
                "timestamp": pd.to_datetime(
                    np.concatenate(ts_parts) if ts_parts else np.array([], np.int64), unit="ms", utc=True
                ),
                "value": np.concatenate(v_parts) if v_parts else np.array([], np.float64),
            }
        )
        for name in names:
            frame[name] = pd.Categorical(np.concatenate(cols[name]))
        return frame

    # -- Parquet ------------------------------------------------------------------------
    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write ``series`` (JSON label set, dictionary-encoded), ``timestamp_ms``, ``value``.

        Series are written in sorted label order, each in time order, so equal stores give
        byte-identical files. The write goes to a temporary file that is then renamed
        (:mod:`sloanalysis.files`).
        """
        order = sorted(range(len(self._series)), key=lambda i: self._series[i].labels)
        keys = [
            json.dumps(dict(self._series[i].labels), sort_keys=True, separators=(",", ":")) for i in order
        ]
        lengths = np.array([self._series[i].timestamps.size for i in order], dtype=np.int64)
        indices = np.repeat(np.arange(len(order), dtype=np.int32), lengths)
        ts = np.concatenate([self._series[i].timestamps for i in order]) if order else np.array([], np.int64)
        vs = np.concatenate([self._series[i].values for i in order]) if order else np.array([], np.float64)
        table = pa.table(
            {
                "series": pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(keys, pa.string())),
                "timestamp_ms": pa.array(ts, pa.int64()),
                "value": pa.array(vs, pa.float64()),
            }
        )
        atomic_write_with(
            path,
            lambda tmp: pq.write_table(
                table, tmp, compression="zstd", use_dictionary=["series"], row_group_size=1 << 22
            ),
        )

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> SeriesStore:
        try:
            table = pq.read_table(path, columns=["series", "timestamp_ms", "value"])
        except (OSError, pa.ArrowInvalid, KeyError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path}: cannot read series Parquet: {first}") from None
        _check_samples_table(table, path)
        series_col = table.column("series").combine_chunks()
        if not pa.types.is_dictionary(series_col.type):
            series_col = series_col.dictionary_encode()
        codes = series_col.indices.to_numpy(zero_copy_only=False)
        keys = series_col.dictionary.to_pylist()
        ts = table.column("timestamp_ms").to_numpy()
        vs = table.column("value").to_numpy()
        store = cls()
        if codes.size == 0:
            return store
        order = np.argsort(codes, kind="stable")
        codes, ts, vs = codes[order], ts[order], vs[order]
        bounds = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [codes.size]])
        for lo, hi in zip(starts, ends, strict=True):
            store.add(_label_set(keys[int(codes[lo])], path), ts[lo:hi], vs[lo:hi])
        return store


# Sample times a store accepts from a file (pandas' range: years 1677 to 2262).
_MIN_FILE_MS = -9_223_372_036_854
_MAX_FILE_MS = 9_223_372_036_854


def _check_samples_table(table: pa.Table, path: object) -> None:
    """The contract of a samples file, checked before anything is allocated from it: a string (or
    dictionary of strings) ``series``, non-null int64 ``timestamp_ms`` within range, float64 ``value``."""
    series_type = table.schema.field("series").type
    if pa.types.is_dictionary(series_type):
        series_type = series_type.value_type
    expected = {"series": pa.types.is_string(series_type) or pa.types.is_large_string(series_type)}
    expected["timestamp_ms"] = pa.types.is_int64(table.schema.field("timestamp_ms").type)
    expected["value"] = pa.types.is_float64(table.schema.field("value").type)
    wanted = {"series": "string", "timestamp_ms": "int64", "value": "double"}
    for column, ok in expected.items():
        if not ok:
            got = table.schema.field(column).type
            raise DataError(f"{path}: column {column!r} must be {wanted[column]}, got {got}")
    for column in ("series", "timestamp_ms"):
        if table.column(column).null_count:
            raise DataError(f"{path}: column {column!r} has {table.column(column).null_count} null values")
    if table.num_rows:
        lo, hi = pc.min_max(table.column("timestamp_ms")).values()
        if lo.as_py() < _MIN_FILE_MS or hi.as_py() > _MAX_FILE_MS:
            raise DataError(
                f"{path}: timestamp_ms {lo.as_py() if lo.as_py() < _MIN_FILE_MS else hi.as_py()} "
                "is outside years 1677 to 2262"
            )


def _label_set(text: str, path: object) -> dict[str, str]:
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: series {text[:80]!r} is not a JSON label set: {exc}") from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise DataError(f"{path}: series {text[:80]!r} is not a JSON object of string labels")
    return mapping
