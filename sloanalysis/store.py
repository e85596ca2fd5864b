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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sloanalysis.errors import DataError
from sloanalysis.files import atomic_write_with
from sloanalysis.nativehist import parse_histogram, test_expression
from sloanalysis.regex import InvalidRegexError, PromRegex, compile_regex

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
    """One labelled series; ``timestamps`` (int64 ms) strictly increasing.

    ``histograms`` is None for a float series; otherwise an object array aligned with
    ``timestamps`` whose cells are :class:`sloanalysis.nativehist.FloatHistogram` samples, or None
    where the sample is the float in ``values`` (``values`` holds NaN under a histogram).
    """

    labels: Labels
    timestamps: np.ndarray
    values: np.ndarray
    histograms: np.ndarray | None = None

    @property
    def name(self) -> str:
        return dict(self.labels).get(METRIC_NAME, "")

    def window(self, start_ms: int, end_ms: int, *, left_open: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Samples with ``start < t <= end`` (or ``start <= t <= end`` when not left-open)."""
        lo = int(np.searchsorted(self.timestamps, start_ms, side="right" if left_open else "left"))
        hi = int(np.searchsorted(self.timestamps, end_ms, side="right"))
        return self.timestamps[lo:hi], self.values[lo:hi]


_MATCH_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True)
class Matcher:
    """A label matcher; regexes are fully anchored, as in Prometheus."""

    name: str
    op: str
    value: str
    _regex: PromRegex | None = field(default=None, compare=False, repr=False)

    @staticmethod
    def of(name: str, op: str, value: str, *, dot_matches_newline: bool = True) -> Matcher:
        """``dot_matches_newline``: Prometheus 3's ``(?s)`` (False: 2.x, where ``.`` stops at ``\\n``)."""
        if op not in _MATCH_OPS:
            raise DataError(f"unknown matcher operator {op!r} for label {name!r}")
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = compile_regex(value, dot_matches_newline=dot_matches_newline)
            except InvalidRegexError as exc:
                raise DataError(f"{exc} for label {name!r}") from None
        return Matcher(name, op, value, regex)

    def matches(self, value: str) -> bool:
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(value)
        return hit if self.op == "=~" else not hit


class SeriesStore:
    """An indexed collection of series; adding the same label set twice merges samples."""

    def __init__(self, series: Iterable[Series] = ()) -> None:
        self._series: list[Series] = []
        self._by_labels: dict[Labels, int] = {}
        self._by_name: dict[str, list[int]] = {}
        for s in series:
            self.add(s.labels, s.timestamps, s.values, s.histograms)

    # -- building -----------------------------------------------------------------------
    def add(
        self,
        labels: Labels | Mapping[str, str],
        timestamps: Sequence[int] | np.ndarray,
        values: Sequence[float] | np.ndarray,
        histograms: np.ndarray | None = None,
    ) -> Series:
        """Add samples to the series with these labels (merged and re-sorted if it exists).

        When two samples share a timestamp, the later-added one wins. ``histograms`` (object
        array aligned with ``timestamps``) carries native-histogram samples, see :class:`Series`.
        """
        key = make_labels(labels) if isinstance(labels, Mapping) else tuple(sorted(labels))
        ts = np.asarray(timestamps, dtype=np.int64)
        vs = np.asarray(values, dtype=np.float64)
        hs = histograms
        if ts.shape != vs.shape or ts.ndim != 1 or (hs is not None and hs.shape != ts.shape):
            raise DataError(f"{format_labels(key)}: timestamps and values differ in shape")
        idx = self._by_labels.get(key)
        if idx is not None:
            old = self._series[idx]
            if hs is not None or old.histograms is not None:
                hs = np.concatenate(
                    [_object_cells(old.histograms, old.timestamps.size), _object_cells(hs, ts.size)]
                )
            ts = np.concatenate([old.timestamps, ts])
            vs = np.concatenate([old.values, vs])
        if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            # Stable sort, then keep the last sample of each timestamp.
            order = np.argsort(ts, kind="stable")
            ts, vs = ts[order], vs[order]
            keep = np.append(ts[1:] != ts[:-1], True)
            ts, vs = ts[keep], vs[keep]
            if hs is not None:
                hs = hs[order][keep]
        if hs is not None and not any(h is not None for h in hs):
            hs = None
        series = Series(key, ts, vs, hs)
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
        """Write ``series`` (JSON label set, dictionary-encoded), ``timestamp_ms``, ``value``, and
        when a sample is a native histogram a ``histogram`` column with its ``{{...}}`` notation.

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
        columns = {
            "series": pa.DictionaryArray.from_arrays(pa.array(indices), pa.array(keys, pa.string())),
            "timestamp_ms": pa.array(ts, pa.int64()),
            "value": pa.array(vs, pa.float64()),
        }
        if any(self._series[i].histograms is not None for i in order):
            texts = [
                None if h is None else test_expression(h)
                for i in order
                for h in _object_cells(self._series[i].histograms, self._series[i].timestamps.size)
            ]
            columns["histogram"] = pa.array(texts, pa.string())
        table = pa.table(columns)
        atomic_write_with(
            path,
            # Timestamps as deltas: regular scrapes pack into a few bits (0.7 s and 19 MB of the
            # 7-day reference's write with the default encoding, 0.17 s and 60 kB this way).
            lambda tmp: pq.write_table(
                table,
                tmp,
                compression="zstd",
                use_dictionary=["series"],
                column_encoding={"timestamp_ms": "DELTA_BINARY_PACKED"},
                row_group_size=1 << 22,
            ),
        )

    @classmethod
    def from_parquet(cls, path: str | os.PathLike[str]) -> SeriesStore:
        try:
            extra = ["histogram"] if "histogram" in pq.read_schema(path).names else []
            table = pq.read_table(path, columns=["series", "timestamp_ms", "value", *extra])
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
        hs = _histogram_column(table, path)
        store = cls()
        if codes.size == 0:
            return store
        if bool(np.all(codes[1:] >= codes[:-1])):  # as to_parquet writes: skip the sort (~0.3 s for 7 days)
            ts, vs = (a if a.flags.writeable else a.copy() for a in (ts, vs))
        else:
            order = np.argsort(codes, kind="stable")
            codes, ts, vs = codes[order], ts[order], vs[order]
            hs = None if hs is None else hs[order]
        bounds = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [codes.size]])
        for lo, hi in zip(starts, ends, strict=True):
            cells = None if hs is None else hs[lo:hi]
            store.add(_label_set(keys[int(codes[lo])], path), ts[lo:hi], vs[lo:hi], cells)
        return store


def _histogram_column(table: pa.Table, path: object) -> np.ndarray | None:
    """The optional ``histogram`` column parsed into FloatHistogram cells (None: no column)."""
    if "histogram" not in table.column_names:
        return None
    texts = table.column("histogram").to_pylist()
    cells = np.full(len(texts), None, dtype=object)
    for k, text in enumerate(texts):
        if text is not None:
            try:
                cells[k] = parse_histogram(text)
            except ValueError as exc:
                raise DataError(f"{path}: row {k}: invalid histogram: {exc}") from None
    return cells


def _object_cells(hs: np.ndarray | None, n: int) -> np.ndarray:
    """An object array of ``n`` histogram cells (all None for a float series)."""
    if hs is not None:
        return hs
    return np.full(n, None, dtype=object)


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
