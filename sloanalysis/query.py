"""One query interface, two backends: the embedded PromQL engine and a real Prometheus.

Both backends answer ``query_range(expr, start, end, step)`` and ``query(expr, at)`` with the same
long :class:`pandas.DataFrame`:

- ``timestamp``: ``datetime64[ns, UTC]`` (the evaluation step; for a range selector evaluated as an
  instant query, the sample's own timestamp),
- ``value``: ``float64``,
- one ``str`` column per label name occurring in the result (``__name__`` included when present),
  sorted by name; a series without that label has ``""`` there,
- ``histogram`` (object, after ``value``), only when a row is a native-histogram sample: its
  :class:`~sloanalysis.nativehist.FloatHistogram` (``value`` NaN there), None on float rows.

Rows are ordered by series (label sets in sorted order) and then by time; absent steps have no
row. Frames are built from numpy/Arrow arrays, never one dict per row.

Times are integer milliseconds since the epoch (UTC), ``datetime``/``pandas.Timestamp`` objects,
or strings for :func:`parse_time` (RFC 3339, unix seconds, or a duration such as ``30m`` meaning
that long before the data's end). Steps are milliseconds, ``timedelta`` or duration strings.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from sloanalysis._go import match_op
from sloanalysis.durations import is_prometheus_duration, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.sources.prometheus import (
    PrometheusClient,
    needed_ranges,
    parse_expr,
    parse_result_samples,
    selector_has_samples,
    selector_span,
    selector_text,
)
from sloanalysis.store import METRIC_NAME, Labels, Matcher, SeriesStore

__all__ = [
    "MAX_POINTS_PER_SERIES",
    "Backend",
    "EmbeddedBackend",
    "PrometheusBackend",
    "SelectorHint",
    "SpanBackend",
    "TimeLike",
    "empty_frame",
    "parse_duration",
    "parse_time",
    "result_frame",
    "selectors_without_data",
    "with_histograms",
]

TimeLike = int | str | datetime | pd.Timestamp | np.datetime64
DurationLike = int | str | timedelta | pd.Timedelta
MAX_POINTS_PER_SERIES = 11_000
"""Prometheus refuses range queries with more steps than this; requests are chunked below it."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
try:  # pandas >= 2.3: the ``str`` dtype (Arrow-backed, NaN for missing), default in pandas 3
    _STR_DTYPE: Any = pd.StringDtype("pyarrow", na_value=np.nan)
except TypeError:  # pragma: no cover - older pandas: plain object columns
    _STR_DTYPE = None


# -- time parsing -----------------------------------------------------------------------------


def parse_duration(value: DurationLike) -> int:
    """Milliseconds of a query step or window: ``15s``, ``1h30m``, ``7d``, a number of seconds
    (``"15"``, as the Prometheus API's ``step=15``), a timedelta, or an int (milliseconds, as
    :func:`parse_time` takes ints). The one grammar of :func:`sloanalysis.durations.parse_duration_ms`."""
    try:
        return parse_duration_ms(value, ints_are_ms=True)
    except UserError:
        raise UserError(f"invalid duration {value!r} (expected e.g. 15s, 5m, 1h30m, 7d)") from None


def parse_time(value: TimeLike, *, reference_ms: int | None = None) -> int:
    """Milliseconds since the epoch of an RFC 3339 instant, unix seconds (``"1700000000.5"``), ``now``,
    or a duration (``30m``, ``-7d``: that long before ``reference_ms``, the data's end).

    Ints are taken as milliseconds already; naive datetimes as UTC.
    """
    if isinstance(value, bool):
        raise UserError(f"invalid time {value!r}")
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, datetime):  # includes pd.Timestamp
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)
    text = str(value).strip()
    if _NUMBER_RE.match(text):
        secs = float(text)
        if not math.isfinite(secs * 1000) or abs(secs) > 1e13:
            raise UserError(f"invalid time {value!r} (unix seconds out of range)")
        return round(secs * 1000)
    if text in ("now", "end") or is_prometheus_duration(text[1:] if text[:1] in "+-" else text):
        if reference_ms is None:
            raise UserError(f"relative time {value!r} needs a reference (the data's end)")
        if text in ("now", "end"):
            return reference_ms
        sign = 1 if text.startswith("+") else -1
        return reference_ms + sign * parse_duration(text.lstrip("+-"))
    try:
        ts = pd.Timestamp(text)
        if pd.isna(ts):
            raise ValueError(text)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return int(ts.value // 1_000_000)
    except (ValueError, TypeError, OverflowError):
        raise UserError(
            f"invalid time {value!r} (expected RFC 3339 between 1677 and 2262, unix seconds, "
            "or a duration like 30m before the end)"
        ) from None


# -- frames ------------------------------------------------------------------------------------


def _str_column(per_series: Sequence[str], runs: np.ndarray) -> Any:
    """A label column for rows grouped by series: ``per_series[i]`` repeated ``runs[i]`` times.

    The Arrow buffers are built directly: each series' UTF-8 bytes repeated for its run,
    offsets from a cumsum (or an arange when every value has one length).
    """
    encoded = [v.encode() for v in per_series]
    lengths = np.array([len(b) for b in encoded], dtype=np.int64)
    n = int(runs.sum())
    used = [b for b, c in zip(encoded, runs, strict=True) if c]
    if used and all(b == used[0] for b in used):  # one value throughout: one repeat, no join
        data = used[0] * n
    else:
        data = b"".join(b * int(c) for b, c in zip(encoded, runs, strict=True))
    if len({len(b) for b in used}) <= 1:
        offsets = np.arange(n + 1, dtype=np.int64) * (len(used[0]) if used else 0)
    else:
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.repeat(lengths, runs), out=offsets[1:])
    # 64-bit offsets: the pandas ``str`` dtype stores large_string, so no cast follows.
    arr = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    if _STR_DTYPE is None:  # pragma: no cover
        return arr.to_pandas()
    return pd.array(arr, dtype=_STR_DTYPE)


def _timestamps(ms: np.ndarray) -> pd.DatetimeIndex:
    ns = np.asarray(ms, dtype=np.int64) * 1_000_000
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")


def _is_ordered(ranked: np.ndarray, ts_ms: np.ndarray) -> bool:
    """Rows already in (series rank, timestamp) order, as a stable lexsort would leave them."""
    if ranked.size < 2:
        return True
    d_rank = np.diff(ranked)
    return bool(((d_rank > 0) | ((d_rank == 0) & (ts_ms[1:] >= ts_ms[:-1]))).all())


def result_frame(
    labels: Sequence[Labels],
    series_idx: np.ndarray,
    ts_ms: np.ndarray,
    values: np.ndarray,
    histograms: np.ndarray | None = None,
) -> pd.DataFrame:
    """The long frame of a result given as parallel arrays: row ``i`` belongs to series
    ``labels[series_idx[i]]``. Rows are reordered by (label set, timestamp). ``histograms``
    (object, parallel too) adds the ``histogram`` column: :func:`with_histograms`."""
    series_idx = np.asarray(series_idx, dtype=np.int64)
    ts_ms = np.asarray(ts_ms, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    order_of_labels = sorted(range(len(labels)), key=lambda i: labels[i])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order_of_labels] = np.arange(len(labels))
    ranked = rank[series_idx] if series_idx.size else series_idx
    if not _is_ordered(ranked, ts_ms):
        order = np.lexsort((ts_ms, ranked))
        series_idx, ts_ms, values, ranked = series_idx[order], ts_ms[order], values[order], ranked[order]
        histograms = None if histograms is None else np.asarray(histograms, dtype=object)[order]
    # Rows now come in runs per series, in label order: label columns can be built from runs.
    sorted_labels = [labels[i] for i in order_of_labels]
    runs = np.bincount(ranked, minlength=len(labels)) if series_idx.size else np.zeros(len(labels), np.int64)
    return with_histograms(_frame_in_order(sorted_labels, runs, ts_ms, values), histograms)


def with_histograms(frame: pd.DataFrame, histograms: np.ndarray | None) -> pd.DataFrame:
    """``frame`` with a ``histogram`` column after ``value`` (object: a
    :class:`~sloanalysis.nativehist.FloatHistogram` per native-histogram row, whose ``value`` is
    NaN, None elsewhere) when a row holds a histogram; otherwise ``frame`` unchanged."""
    if histograms is None or not any(h is not None for h in histograms):
        return frame
    frame.insert(2, "histogram", np.asarray(histograms, dtype=object))
    return frame


def _frame_in_order(
    labels: Sequence[Labels], runs: np.ndarray, ts_ms: np.ndarray, values: np.ndarray
) -> pd.DataFrame:
    """The frame of rows already grouped by series (``runs[i]`` rows of ``labels[i]``, sorted).

    Built from one dict of columns: adding label columns one by one to a frame costs several
    times more (each insertion revalidates the frame), which small answers would feel."""
    columns: dict[str, Any] = {"timestamp": _timestamps(ts_ms), "value": values}
    dicts = [dict(lab) for lab in labels]
    for name in sorted({k for lab in labels for k, _ in lab}):
        columns[name] = _str_column([d.get(name, "") for d in dicts], runs)
    return pd.DataFrame(columns)


def empty_frame() -> pd.DataFrame:
    return result_frame([], np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


def _frame_from_series(series: Sequence[tuple[Any, ...]]) -> pd.DataFrame:
    """Frame of (labels, ms, values) or (labels, ms, values, histograms or None) per series."""
    merged: dict[Labels, list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {}
    for labels, ts, vs, *hs in series:
        merged.setdefault(labels, []).append((ts, vs, hs[0] if hs else None))
    labels_list = list(merged)
    ts_parts = [np.concatenate([p[0] for p in merged[k]]) for k in labels_list]
    v_parts = [np.concatenate([p[1] for p in merged[k]]) for k in labels_list]
    counts = np.array([p.size for p in ts_parts], dtype=np.int64)
    idx = np.repeat(np.arange(len(labels_list), dtype=np.int64), counts)
    if not labels_list:
        return empty_frame()
    hists = None
    if any(p[2] is not None for parts in merged.values() for p in parts):
        parts = [p for k in labels_list for p in merged[k]]
        hists = np.concatenate([np.full(p[0].size, None, object) if p[2] is None else p[2] for p in parts])
    return result_frame(labels_list, idx, np.concatenate(ts_parts), np.concatenate(v_parts), hists)


# -- backends ----------------------------------------------------------------------------------


class Backend(Protocol):
    """What every analysis needs from a data source."""

    def query_range(self, expr: str, start: TimeLike, end: TimeLike, step: DurationLike) -> pd.DataFrame: ...

    def query(self, expr: str, at: TimeLike) -> pd.DataFrame: ...


# Times a frame can hold (pandas' nanosecond timestamps: 1677-09-21 .. 2262-04-11).
MIN_TIME_MS = int(pd.Timestamp.min.value // 1_000_000) + 1
MAX_TIME_MS = int(pd.Timestamp.max.value // 1_000_000)
# Steps one embedded range query may evaluate per series (30 days at 1 s is 2.6 M). A real Prometheus
# refuses more than 11,000 per request; PrometheusBackend splits longer ranges into such requests.
MAX_EMBEDDED_STEPS = 5_000_000


def check_time(ms: int, what: str = "time") -> int:
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise UserError(f"{what} {ms} ms is outside the supported range (years 1677 to 2262)")
    return ms


def _check_range(start_ms: int, end_ms: int, step_ms: int, max_steps: int | None = None) -> None:
    check_time(start_ms, "start")
    check_time(end_ms, "end")
    if step_ms <= 0:
        raise UserError(f"step must be positive, got {step_ms} ms")
    if end_ms < start_ms:
        raise UserError("end of the query range is before its start")
    steps = (end_ms - start_ms) // step_ms + 1
    if max_steps is not None and steps > max_steps:
        raise UserError(
            f"the range has {steps:,} steps per series, more than the limit of {max_steps:,}: "
            "raise the step or narrow the range (or raise the limit with --max-steps)"
        )


class EmbeddedBackend:
    """The embedded PromQL engine over a :class:`SeriesStore` (no server).

    ``prometheus2=True`` uses Prometheus 2.x range boundaries (left-closed), for comparisons with
    2.x servers; ``delayed_name_removal=True`` is Prometheus 3's ``promql-delayed-name-removal``
    feature. Relative times are relative to the store's last sample.
    """

    def __init__(
        self,
        store: SeriesStore,
        *,
        prometheus2: bool = False,
        lookback_ms: int = 300_000,
        max_steps: int = MAX_EMBEDDED_STEPS,
        delayed_name_removal: bool = False,
    ) -> None:
        from sloanalysis.promql import Engine

        self.store = store
        self.max_steps = max_steps
        self.engine = Engine(
            store, lookback_ms=lookback_ms, prometheus2=prometheus2, delayed_name_removal=delayed_name_removal
        )
        span = store.time_range()
        self.data_end_ms: int | None = None if span is None else span[1]

    def _time(self, value: TimeLike) -> int:
        return parse_time(value, reference_ms=self.data_end_ms)

    def query_range(self, expr: str, start: TimeLike, end: TimeLike, step: DurationLike) -> pd.DataFrame:
        start_ms, end_ms, step_ms = self._time(start), self._time(end), parse_duration(step)
        _check_range(start_ms, end_ms, step_ms, self.max_steps)
        return _frame_from_result(self.engine.range(expr, start_ms, end_ms, step_ms))

    def query(self, expr: str, at: TimeLike) -> pd.DataFrame:
        return _frame_from_result(self.engine.instant(expr, check_time(self._time(at), "--at")))

    def has_samples(self, selector: str, lo_ms: int, hi_ms: int) -> bool:
        """Whether a series of ``selector`` (canonical text) has a sample in ``[lo_ms, hi_ms]``."""
        for s in self.store.select(_store_matchers(selector)):
            i = int(np.searchsorted(s.timestamps, lo_ms, side="left"))
            if i < s.timestamps.size and s.timestamps[i] <= hi_ms:
                return True
        return False

    def data_span(self, selector: str, near_ms: int | None = None) -> tuple[int, int] | None:
        """First and last sample time of the series of ``selector`` in the store (None: none)."""
        found = [s.timestamps for s in self.store.select(_store_matchers(selector)) if s.timestamps.size]
        if not found:
            return None
        return min(int(t[0]) for t in found), max(int(t[-1]) for t in found)


def _store_matchers(selector: str) -> list[Matcher]:
    """Store matchers of a selector's text (``{__name__="up",job="x"}`` or ``up{job="x"}``)."""
    vs = parse_expr(selector)
    matchers = [Matcher.of(m.name, match_op(m.op), m.value) for m in vs.matchers.matchers]
    if vs.name:
        matchers.append(Matcher.of(METRIC_NAME, "=", vs.name))
    return matchers


def _frame_from_result(result: Any) -> pd.DataFrame:
    kind = str(getattr(result, "kind", "")).lower()
    if kind == "string":
        raise UserError("the expression evaluates to a string; only numeric results become frames")
    raw = getattr(result, "raw", None)
    if raw is not None:  # a range selector or subquery evaluated as an instant query: raw samples
        hists = getattr(result, "raw_histograms", None) or [None] * len(raw)
        return _frame_from_series(
            [
                (lab, np.asarray(t), np.asarray(v), h)
                for lab, (t, v), h in zip(result.labels, raw, hists, strict=True)
            ]
        )
    values = np.asarray(result.values, dtype=np.float64)
    steps = np.asarray(result.steps, dtype=np.int64)
    if values.ndim == 1:
        values = values.reshape(1, -1)
    present = getattr(result, "present", None)
    mask = (
        np.ones(values.shape, dtype=bool)
        if present is None
        else np.asarray(present, dtype=bool).reshape(values.shape)
    )
    labels = list(result.labels) if len(result.labels) == values.shape[0] else [()] * values.shape[0]
    if values.shape[1] != steps.size:
        # Not a step grid (e.g. a range selector as an instant query): use the engine's own frame.
        return _normalise_frame(result.to_frame())
    n, t = values.shape
    found = getattr(result, "histograms", None)
    hists = None if found is None else np.asarray(found, dtype=object).reshape(values.shape)[mask]
    if all(labels[i] <= labels[i + 1] for i in range(n - 1)):
        # The engine's own order (series sorted, steps ascending): no sorting, no row indices.
        if bool(mask.all()):
            frame = _frame_in_order(
                labels, np.full(n, t, dtype=np.int64), np.tile(steps, n), values.reshape(-1)
            )
            return with_histograms(frame, hists)
        ts = np.broadcast_to(steps, values.shape)[mask]
        return with_histograms(_frame_in_order(labels, mask.sum(axis=1), ts, values[mask]), hists)
    if bool(mask.all()):
        rows = np.repeat(np.arange(n, dtype=np.int64), t)
        return result_frame(labels, rows, np.tile(steps, n), values.reshape(-1), hists)
    rows, cols = np.nonzero(mask)
    return result_frame(labels, rows, steps[cols], values[mask], hists)


def _normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    ts = frame["timestamp"]
    ms = ts.astype("int64") // 1_000_000 if ts.dtype.kind == "M" else pd.to_datetime(ts, utc=True)
    label_cols = sorted(c for c in frame.columns if c not in ("timestamp", "value"))
    keys = frame[label_cols].astype(str).fillna("").to_numpy() if label_cols else np.empty((len(frame), 0))
    uniq: dict[Labels, int] = {}
    idx = np.empty(len(frame), dtype=np.int64)
    for i, row in enumerate(keys):
        lab = tuple((n, v) for n, v in zip(label_cols, row, strict=True) if v != "")
        idx[i] = uniq.setdefault(lab, len(uniq))
    return result_frame(list(uniq), idx, np.asarray(ms, dtype=np.int64), frame["value"].to_numpy(np.float64))


class PrometheusBackend:
    """A real Prometheus-compatible server through prometheus-api-client.

    Range queries are split so that no request asks for more than ``max_points`` (11,000, the
    server's limit) steps per series; ``timeout`` (seconds) bounds every request. Relative times
    are relative to now.
    """

    def __init__(self, url: str, *, timeout: float = 30.0, max_points: int = MAX_POINTS_PER_SERIES) -> None:
        if not 1 <= max_points <= MAX_POINTS_PER_SERIES:
            raise UserError(f"max_points must be within 1..{MAX_POINTS_PER_SERIES}, got {max_points}")
        self.client = PrometheusClient(url, timeout=timeout)
        self.max_points = max_points

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> PrometheusBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _time(value: TimeLike) -> int:
        now = (datetime.now(UTC) - _EPOCH) // timedelta(milliseconds=1)
        return parse_time(value, reference_ms=now)

    def query_range(self, expr: str, start: TimeLike, end: TimeLike, step: DurationLike) -> pd.DataFrame:
        start_ms, end_ms, step_ms = self._time(start), self._time(end), parse_duration(step)
        _check_range(start_ms, end_ms, step_ms)
        n_steps = (end_ms - start_ms) // step_ms + 1
        series: list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray | None]] = []
        for first in range(0, n_steps, self.max_points):
            last = min(first + self.max_points, n_steps) - 1
            res = self.client.range(expr, start_ms + first * step_ms, start_ms + last * step_ms, step_ms)
            series.extend(parse_result_samples(res["result"]))
        return _frame_from_series(series)

    def has_samples(self, selector: str, lo_ms: int, hi_ms: int) -> bool:
        """Whether a series of ``selector`` has a sample in ``[lo_ms, hi_ms]`` (one request)."""
        return selector_has_samples(self.client, selector, lo_ms, hi_ms)

    def data_span(self, selector: str, near_ms: int | None = None) -> tuple[int, int] | None:
        """First and last sample time of ``selector``'s series in the ten years before now (or
        before ``near_ms`` when later): :func:`~sloanalysis.sources.prometheus.selector_span`."""
        now = self._time("now")
        return selector_span(self.client, selector, max(now, near_ms or now))

    def query(self, expr: str, at: TimeLike) -> pd.DataFrame:
        at_ms = check_time(self._time(at), "--at")
        res = self.client.instant(expr, at_ms)
        kind, result = res["resultType"], res["result"]
        if kind == "string":
            raise UserError("the expression evaluates to a string; only numeric results become frames")
        if kind == "scalar":
            return result_frame(
                [()], np.zeros(1, np.int64), np.array([at_ms], np.int64), np.array([float(result[1])])
            )
        return _frame_from_series(parse_result_samples(result))


# -- where the data is: hints for selectors that read nothing --------------------------------


class SpanBackend(Protocol):
    """A backend that can say where a selector's data is (both backends above)."""

    def has_samples(self, selector: str, lo_ms: int, hi_ms: int) -> bool: ...

    def data_span(self, selector: str, near_ms: int | None = None) -> tuple[int, int] | None: ...


@dataclass(frozen=True)
class SelectorHint:
    """A selector of an expression that reads no sample over the evaluated range.

    ``selector``: as written (name and matchers); ``lo_ms``/``hi_ms``: the span it reads (range,
    lookback, range selectors and offsets included); ``span_ms``: where its series have data (None:
    nowhere); ``metric`` and ``metric_span_ms``: the metric name and where any series of that name
    has data, when the selector itself has none (None: no series of that name exists)."""

    selector: str
    lo_ms: int
    hi_ms: int
    span_ms: tuple[int, int] | None
    metric: str | None = None
    metric_span_ms: tuple[int, int] | None = None


def _display(vs: Any) -> str:
    """A selector as people write it: ``up{job="x"}`` (no offset or ``@``)."""
    parts = [
        f"{m.name}{match_op(m.op)}{json.dumps(m.value, ensure_ascii=False)}"
        for m in vs.matchers.matchers
        if not (vs.name and m.name == METRIC_NAME)
    ]
    body = "{" + ",".join(parts) + "}" if parts or not vs.name else ""
    return f"{vs.name or ''}{body}"


def _metric_name(vs: Any) -> str | None:
    if vs.name:
        return str(vs.name)
    return next(
        (m.value for m in vs.matchers.matchers if m.name == METRIC_NAME and match_op(m.op) == "="), None
    )


def selectors_without_data(
    backend: SpanBackend, expr: str, start_ms: int, end_ms: int, *, lookback_ms: int = 300_000
) -> list[SelectorHint]:
    """The selectors of ``expr`` that read no sample when it is evaluated over ``start_ms..end_ms``,
    each with where its data (or its metric's) is. One presence check per selector, and for those
    without data one or two span look-ups (:meth:`SpanBackend.data_span`)."""
    from sloanalysis.promql.walk import selectors

    shown: dict[str, str] = {}
    names: dict[str, str | None] = {}
    for vs in selectors(parse_expr(expr)):
        key = selector_text(vs)
        shown.setdefault(key, _display(vs))
        names.setdefault(key, _metric_name(vs))
    out = []
    order = {key: i for i, key in enumerate(shown)}
    ranges = needed_ranges(expr, start_ms, end_ms, lookback_ms=lookback_ms)
    for r in sorted(ranges, key=lambda r: order.get(r.selector, len(order))):
        if backend.has_samples(r.selector, r.lo_ms, r.hi_ms):
            continue
        span = backend.data_span(r.selector, end_ms)
        metric = names.get(r.selector)
        metric_span = span
        if span is None and metric is not None:
            by_name = "{" + f"{METRIC_NAME}={json.dumps(metric, ensure_ascii=False)}" + "}"
            metric_span = span if by_name == r.selector else backend.data_span(by_name, end_ms)
        out.append(
            SelectorHint(shown.get(r.selector, r.selector), r.lo_ms, r.hi_ms, span, metric, metric_span)
        )
    return out
