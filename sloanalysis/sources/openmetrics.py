"""OpenMetrics text files: the interchange format for ``promtool tsdb create-blocks-from openmetrics``.

:func:`write_openmetrics` turns a :class:`~sloanalysis.store.SeriesStore` into a file that promtool
backfills into Prometheus blocks; :func:`read_openmetrics` reads such a file (ours, or one a user
exported) back into a store.

Rendering rules of the writer, chosen so that a backfilled Prometheus holds exactly the store's
samples:

- Timestamps are seconds with the exact decimal rendering of the milliseconds
  (``1700000000.015``; whole seconds as ``1700000000``). Prometheus parses a timestamp as a
  float64 ``f`` and keeps ``int64(f * 1000)``, which *truncates*: for about 0.6 % of millisecond
  instants the nearest float64 of the exact decimal is a hair below it and the sample would land
  1 ms early. For exactly those instants the writer appends ``25`` (``1700000000.01525``, a
  quarter of a millisecond later), which truncates *and* rounds to the intended millisecond.
  Whole-second timestamps are always exact. Timestamps before 1970 are rejected.
- Values are the shortest decimal that reads back as the same float64 (``0.1``, ``1e-7``,
  ``100``, ``1.2345678901234568e+17``), and ``NaN``, ``+Inf``, ``-Inf``.
- Each series' samples are in time order (promtool silently drops out-of-order samples); series
  are grouped by metric family, families sorted by name, series by label set, so equal stores give
  byte-identical files; ``# EOF`` ends the file.
- Histograms and summaries (when the metadata says so) are written timestamp by timestamp within
  each label group: every bucket in ascending ``le``, then ``_count`` and ``_sum`` of one instant,
  then the next instant. That is what a strict OpenMetrics parser (prometheus_client's) demands;
  promtool accepts either order.

Stale markers cannot be expressed in OpenMetrics (a ``NaN`` sample is an ordinary NaN value to
Prometheus, and the stale NaN's payload does not survive the text format), so the writer
**skips them**. A query on the backfilled data then sees a series that simply stops: an instant
vector selector keeps returning the series' last sample for the 5 minute lookback delta after it,
where the stale marker would have ended the series at once. Results therefore agree with the
store's own (embedded engine) results everywhere except in the lookback window following each
stale marker; compare the two only on data without stale markers, or away from them.
"""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sloanalysis._go import is_label_name, is_metric_name
from sloanalysis.errors import DataError
from sloanalysis.files import atomic_open
from sloanalysis.store import METRIC_NAME, Labels, Series, SeriesStore, format_labels, is_stale

__all__ = ["read_openmetrics", "write_openmetrics"]

METRIC_TYPES = ("counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown")
_TYPE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("_count", "_sum", "_created"),
    "info": ("_info",),
}
_CHUNK = 1 << 20  # samples rendered per Arrow call; bounds memory and keeps offsets in int32


# -- writing -----------------------------------------------------------------------------------


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class _Family:
    name: str
    mtype: str | None
    help: str | None
    series: list[Series]


def _normalise_metadata(metadata: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Family name -> (type, help); a counter given by its sample name ``x_total`` becomes ``x``."""
    out: dict[str, tuple[str, str]] = {}
    for name, entry in metadata.items():
        try:
            mtype, help_text = entry
        except (TypeError, ValueError):
            raise DataError(f"metadata for {name!r}: expected a (type, help) pair, got {entry!r}") from None
        if mtype not in METRIC_TYPES:
            raise DataError(
                f"metadata for {name!r}: unknown metric type {mtype!r} (one of {', '.join(METRIC_TYPES)})"
            )
        if not is_metric_name(name):
            raise DataError(f"metadata: invalid metric family name {name!r}")
        if mtype == "counter" and name.endswith("_total"):
            name = name[: -len("_total")]
        out[name] = (mtype, str(help_text))
    return out


def _family_of(name: str, meta: Mapping[str, tuple[str, str]]) -> str:
    if name in meta and meta[name][0] != "counter":
        return name
    for suffix in ("_total", "_created", "_bucket", "_count", "_sum", "_gcount", "_gsum", "_info"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if base in meta and suffix in _TYPE_SUFFIXES.get(meta[base][0], ()):
                return base
    return name


def _group(store: SeriesStore, metadata: Mapping[str, tuple[str, str]] | None) -> list[_Family]:
    meta = _normalise_metadata(metadata or {})
    families: dict[str, _Family] = {}
    for s in store:
        name = s.name
        if not name:
            raise DataError(f"series {format_labels(s.labels)} has no metric name; OpenMetrics needs one")
        if not is_metric_name(name):
            raise DataError(f"series {format_labels(s.labels)}: invalid metric name {name!r}")
        for label, _ in s.labels:
            if label != METRIC_NAME and not is_label_name(label):
                raise DataError(f"series {format_labels(s.labels)}: invalid label name {label!r}")
        fam_name = _family_of(name, meta)
        fam = families.get(fam_name)
        if fam is None:
            mtype, help_text = meta.get(fam_name, (None, None))
            fam = families[fam_name] = _Family(fam_name, mtype, help_text, [])
        fam.series.append(s)
    out = [families[k] for k in sorted(families)]
    for fam in out:
        fam.series.sort(key=lambda s: s.labels)
    return out


def _series_prefix(labels: Labels) -> str:
    d = dict(labels)
    name = d.pop(METRIC_NAME)
    if not d:
        return f"{name} "
    inner = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in sorted(d.items()))
    return f"{name}{{{inner}}} "


def _frac_table() -> pa.Array:
    """Index ``ms`` -> exact fraction; index ``1000 + ms`` -> fraction nudged by 0.25 ms."""
    exact = [""] + [f".{k:03d}" for k in range(1, 1000)]
    nudged = [f".{k:03d}25" for k in range(1000)]
    return pa.array(exact + nudged, pa.string())


_FRACS = _frac_table()


def _go_truncation_misses(ts: np.ndarray) -> np.ndarray:
    """Instants whose exact decimal Prometheus would read 1 ms early (``int64(f * 1000)``).

    ``ts / 1000.0`` is the correctly rounded float64 of the exact decimal, i.e. what Go's
    ``ParseFloat`` returns; numpy's ``astype(int64)`` truncates toward zero like Go's conversion.
    """
    f = ts / 1000.0
    return (f * 1000.0).astype(np.int64) != ts


def _render_timestamps(ts: np.ndarray) -> pa.Array:
    """`` <seconds>[.<ms>]\\n`` for each timestamp."""
    if ts.size and int(ts[0]) < 0:
        raise DataError(f"timestamp {int(ts[0])} ms is before 1970; OpenMetrics export does not support it")
    sec = ts // 1000
    idx = ts - sec * 1000
    idx = np.where(_go_truncation_misses(ts), idx + 1000, idx)
    frac = _FRACS.take(pa.array(idx, pa.int64()))
    return pc.binary_join_element_wise(" ", pc.cast(pa.array(sec, pa.int64()), pa.string()), frac, "\n", "")


def _render_values(values: np.ndarray) -> pa.Array:
    """Shortest round-trip decimal of each value; ``NaN``, ``+Inf``, ``-Inf`` for the rest."""
    finite = np.isfinite(values)
    if bool(finite.all()):
        integral = values == np.floor(values)
        if (
            bool(integral.all())
            and bool((np.abs(values) < 2.0**53).all())
            and not bool(np.signbit(values).any())
        ):
            return pc.cast(pa.array(values.astype(np.int64), pa.int64()), pa.string())
        return pc.cast(pa.array(values, pa.float64()), pa.string())
    out = pc.cast(pa.array(np.where(finite, values, 0.0), pa.float64()), pa.string())
    out = pc.if_else(pa.array(np.isnan(values)), "NaN", out)
    out = pc.if_else(pa.array(np.isposinf(values)), "+Inf", out)
    return pc.if_else(pa.array(np.isneginf(values)), "-Inf", out)


def _string_bytes(arr: pa.Array) -> memoryview:
    """The concatenated UTF-8 bytes of a string array (no separators), without copying."""
    if arr.null_count:
        raise AssertionError("rendered OpenMetrics lines must not be null")
    offsets_buf, data_buf = arr.buffers()[1], arr.buffers()[2]
    offsets = np.frombuffer(offsets_buf, dtype=np.int32 if arr.type == pa.string() else np.int64)
    lo, hi = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    if data_buf is None:
        return memoryview(b"")
    return memoryview(data_buf)[lo:hi]


class _TimestampCache:
    """Scrapes share timestamps across series: render each distinct timestamp array once."""

    def __init__(self) -> None:
        self._entries: list[tuple[np.ndarray, pa.Array]] = []

    def render(self, ts: np.ndarray) -> pa.Array:
        for known, rendered in self._entries:
            if known.size == ts.size and np.array_equal(known, ts):
                return rendered
        rendered = _render_timestamps(ts)
        self._entries.append((ts, rendered))
        if len(self._entries) > 8:
            self._entries.pop(0)
        return rendered


def _series_chunks(series: Series) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    ts, vs = series.timestamps, series.values
    stale = is_stale(vs)
    if bool(stale.any()):
        ts, vs = ts[~stale], vs[~stale]
    for lo in range(0, ts.size, _CHUNK):
        yield ts[lo : lo + _CHUNK], vs[lo : lo + _CHUNK]


_GROUPED_TYPES = ("histogram", "gaugehistogram", "summary")
# Within a histogram or summary group, lines at one timestamp go in this order (OpenMetrics: buckets
# by ascending ``le``, then count and sum).
_SUFFIX_RANK = {"_bucket": 0, "": 0, "_count": 1, "_gcount": 1, "_sum": 2, "_gsum": 2, "_created": 3}

Piece = bytes | tuple[Any, ...]  # header bytes, or (render function, *arguments) for a worker thread


def _rank(series: Series, family: str) -> tuple[int, float]:
    suffix = series.name[len(family) :]
    d = dict(series.labels)
    bound = d.get("le", d.get("quantile", "nan"))
    try:
        position = float(bound)
    except ValueError:
        position = float("nan")
    return _SUFFIX_RANK.get(suffix, 4), position


def _groups(fam: _Family) -> list[list[Series]]:
    """A histogram's or summary's series grouped by label set (less ``le``/``quantile``), each group
    in OpenMetrics line order: buckets by bound, then ``_count``, ``_sum``."""
    by_key: dict[Labels, list[Series]] = {}
    for s in fam.series:
        key = tuple((k, v) for k, v in s.labels if k not in (METRIC_NAME, "le", "quantile"))
        by_key.setdefault(key, []).append(s)
    return [sorted(by_key[k], key=lambda s: _rank(s, fam.name)) for k in sorted(by_key)]


def _without_stale(series: Series) -> tuple[np.ndarray, np.ndarray]:
    ts, vs = series.timestamps, series.values
    stale = is_stale(vs)
    return (ts[~stale], vs[~stale]) if bool(stale.any()) else (ts, vs)


def _render_group(prefixes: list[pa.Scalar], chunks: list[tuple[np.ndarray, np.ndarray]]) -> pa.Array:
    """One group's lines for a span of time, timestamp by timestamp: a strict OpenMetrics parser wants
    every bucket, the count and the sum of one timestamp together, and timestamps never going back."""
    lines = pa.concat_arrays(
        [_render_lines(p, _render_timestamps(ts), vs) for p, (ts, vs) in zip(prefixes, chunks, strict=True)]
    )
    ts_all = np.concatenate([ts for ts, _ in chunks])
    rank = np.concatenate([np.full(ts.size, i) for i, (ts, _) in enumerate(chunks)])
    return lines.take(pa.array(np.lexsort((rank, ts_all))))


def _group_pieces(group: list[Series]) -> Iterator[Piece]:
    prefixes = [pa.scalar(_series_prefix(s.labels), pa.string()) for s in group]
    data = [_without_stale(s) for s in group]
    instants = np.unique(np.concatenate([ts for ts, _ in data]))
    step = max(1, _CHUNK // len(group))
    for lo in range(0, instants.size, step):
        first = instants[lo]
        last = instants[min(lo + step, instants.size) - 1]
        chunks = []
        for ts, vs in data:
            a, b = np.searchsorted(ts, first, "left"), np.searchsorted(ts, last, "right")
            chunks.append((ts[a:b], vs[a:b]))
        yield (_render_group, prefixes, chunks)


def _pieces(families: list[_Family]) -> Iterator[Piece]:
    """Header lines as bytes, sample chunks as (render function, *arguments)."""
    cache = _TimestampCache()
    for fam in families:
        if fam.help is not None:
            yield f"# HELP {fam.name} {_escape_help(fam.help)}\n".encode()
        if fam.mtype is not None:
            yield f"# TYPE {fam.name} {fam.mtype}\n".encode()
        if fam.mtype in _GROUPED_TYPES:
            for group in _groups(fam):
                yield from _group_pieces(group)
            continue
        for series in fam.series:
            prefix = pa.scalar(_series_prefix(series.labels), pa.string())
            for ts, vs in _series_chunks(series):
                if ts.size == _CHUNK or ts.size != series.timestamps.size:
                    suffix = _render_timestamps(ts)
                else:
                    suffix = cache.render(ts)
                yield (_render_lines, prefix, suffix, vs)


def _render_lines(prefix: pa.Scalar, suffix: pa.Array, values: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, _render_values(values), suffix, "")


def _write_piece(fh: IO[bytes], piece: bytes | Future[pa.Array]) -> None:
    fh.write(piece if isinstance(piece, bytes) else _string_bytes(piece.result()))


def write_openmetrics(
    store: SeriesStore,
    path: str | os.PathLike[str],
    *,
    metadata: Mapping[str, tuple[str, str]] | None = None,
) -> None:
    """Write ``store`` as an OpenMetrics text file that promtool can backfill.

    ``metadata`` maps a metric family name (``tron_payment_requests`` or its sample name
    ``tron_payment_requests_total``; ``tron_payout_processing_duration_seconds`` for all of its
    ``_bucket``/``_count``/``_sum`` series) to ``(type, help)``; families without metadata are
    written without ``# TYPE``/``# HELP`` lines (type ``unknown``). Stale markers are skipped (see
    the module docstring for what that changes). The file is written atomically
    (:mod:`sloanalysis.files`), so a failed write leaves nothing behind.
    """
    families = _group(store, metadata)
    workers = max(1, min(4, os.cpu_count() or 1))
    with atomic_open(path, "wb") as fh, ThreadPoolExecutor(max_workers=workers) as pool:
        # Arrow kernels release the GIL: render a few chunks ahead in threads, write in order.
        pending: deque[bytes | Future[pa.Array]] = deque()
        for piece in _pieces(families):
            pending.append(piece if isinstance(piece, bytes) else pool.submit(*piece))
            while len(pending) > 2 * workers:
                _write_piece(fh, pending.popleft())
        while pending:
            _write_piece(fh, pending.popleft())
        fh.write(b"# EOF\n")


# -- reading -----------------------------------------------------------------------------------

_LABEL_PAIR_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\.)*)"\s*(?:,|(?=\})|$)')
_UNESCAPE_RE = re.compile(r"\\(.)")


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _UNESCAPE_RE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _parse_series(text: str, where: str) -> Labels:
    brace = text.find("{")
    name = text if brace < 0 else text[:brace]
    if not is_metric_name(name):
        raise DataError(f"{where}: invalid metric name {name!r}")
    labels = {METRIC_NAME: name}
    if brace >= 0:
        if not text.endswith("}"):
            raise DataError(f"{where}: label set is not closed with '}}'")
        body, pos = text[brace + 1 : -1], 0
        while pos < len(body):
            m = _LABEL_PAIR_RE.match(body, pos)
            if m is None:
                raise DataError(f"{where}: malformed label set at {body[pos : pos + 30]!r}")
            if m.group(1) in labels:
                raise DataError(f"{where}: duplicate label {m.group(1)!r}")
            labels[m.group(1)] = _unescape(m.group(2))
            pos = m.end()
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def read_openmetrics(path: str | os.PathLike[str]) -> SeriesStore:
    """Read an OpenMetrics text file into a store.

    Timestamps are converted as Prometheus converts them (``int64(seconds * 1000)``), so the store
    holds what a promtool backfill of the same file would hold. Every sample needs a timestamp;
    samples of a series must be in strictly increasing time order (promtool would drop the others
    silently; here they are an error). Exemplars and metadata lines are ignored. Errors name the
    file and line.

    Long because it is the reader's one hot loop (tens of millions of lines): helper calls per line
    would double its time.
    """
    p = Path(path)
    try:
        fh = open(p, encoding="utf-8", newline="\n")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise DataError(f"{p}: cannot read OpenMetrics file: {exc.strerror or exc}") from None
    raw: dict[str, tuple[list[str], list[str], int]] = {}
    saw_eof = False
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if saw_eof:
                    raise DataError(f"{p}:{lineno}: content after '# EOF'")
                line = line.rstrip("\n")
                if line.startswith("#"):
                    if line == "# EOF":
                        saw_eof = True
                    elif not line.startswith(("# TYPE ", "# HELP ", "# UNIT ")):
                        raise DataError(f"{p}:{lineno}: unexpected comment {line[:40]!r}")
                    continue
                if not line:
                    raise DataError(f"{p}:{lineno}: empty line")
                if " # " in line:  # exemplar (rare): find the end of the label set properly
                    series, rest = _split_exemplar_line(line, f"{p}:{lineno}")
                    parts = rest.split(" ")
                else:
                    parts = line.rsplit(" ", 2)
                    series = parts[0]
                    if "{" in series and not series.endswith("}"):
                        parts = ["", line]
                if len(parts) != 3:
                    if len(parts) == 2 and _is_float(parts[1]):
                        raise DataError(f"{p}:{lineno}: sample has no timestamp (backfilling needs one)")
                    raise DataError(f"{p}:{lineno}: expected 'series value timestamp', got {line[:60]!r}")
                entry = raw.get(series)
                if entry is None:
                    entry = raw[series] = ([], [], lineno)
                entry[0].append(parts[-2])
                entry[1].append(parts[-1])
        except UnicodeDecodeError as exc:
            raise DataError(f"{p}: not UTF-8 text: {exc.reason}") from None
    if not saw_eof:
        raise DataError(f"{p}: missing '# EOF' at the end")
    store = SeriesStore()
    seen: set[Labels] = set()
    for series, (values, stamps, first_line) in raw.items():
        where = f"{p}:{first_line}"
        labels = _parse_series(series, where)
        if labels in seen:
            raise DataError(
                f"{where}: series {format_labels(labels)} is written twice with different spellings"
            )
        seen.add(labels)
        try:
            vs = np.array(values, dtype=np.float64)
        except ValueError:
            bad = next(v for v in values if not _is_float(v))
            raise DataError(f"{where}: invalid value {bad!r} in series {format_labels(labels)}") from None
        try:
            secs = np.array(stamps, dtype=np.float64)
        except ValueError:
            bad = next(v for v in stamps if not _is_float(v))
            raise DataError(f"{where}: invalid timestamp {bad!r} in series {format_labels(labels)}") from None
        if not bool(np.isfinite(secs).all()):
            raise DataError(f"{where}: non-finite timestamp in series {format_labels(labels)}")
        ts = (secs * 1000.0).astype(np.int64)
        if ts.size > 1 and not bool(np.all(ts[1:] > ts[:-1])):
            k = int(np.flatnonzero(ts[1:] <= ts[:-1])[0]) + 1
            raise DataError(
                f"{where}: series {format_labels(labels)}: sample {k + 1} at {stamps[k]} "
                f"is not after {stamps[k - 1]}"
            )
        store.add(labels, ts, vs)
    return store


def _split_exemplar_line(line: str, where: str) -> tuple[str, str]:
    """``series value ts # {exemplar} v`` -> (series, ``value ts``)."""
    brace = line.find("{")
    space = line.find(" ")
    if brace < 0 or (0 <= space < brace):
        series, rest = line[:space], line[space:]
    else:
        pos = brace + 1
        while True:
            m = _LABEL_PAIR_RE.match(line, pos)
            if m is None:
                break
            pos = m.end()
        if not line.startswith("}", pos):
            raise DataError(f"{where}: malformed label set at {line[pos : pos + 30]!r}")
        series, rest = line[: pos + 1], line[pos + 1 :]
    cut = rest.find(" # ")
    return series, rest if cut < 0 else rest[:cut]


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
