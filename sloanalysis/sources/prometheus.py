"""A real Prometheus (or Thanos, Mimir, VictoriaMetrics) over HTTP, through prometheus-api-client.

Two jobs:

- :class:`PrometheusClient` wraps :class:`prometheus_api_client.PrometheusConnect` with the
  conventions of this toolkit: integer-millisecond times, a timeout on every request and no
  silent retries (an unreachable or mute server is a one-line :class:`~sloanalysis.errors.UserError`
  within the timeout, never a hang), and the server's own error text for rejected queries.
- :func:`fetch_samples` pulls the raw samples an expression needs into a
  :class:`~sloanalysis.store.SeriesStore`, so that the embedded engine can evaluate it offline:
  :func:`needed_ranges` walks the parsed expression for its selectors and works out, from the
  evaluation range, offsets, ``@`` modifiers, range selectors, subqueries and the lookback delta,
  which time span of each selector is read; the samples are then fetched in time chunks as range
  selectors (``selector[chunk]`` evaluated by the instant-query API at each chunk's end).

Fetched data has no stale markers: Prometheus does not return them in range-selector results.
Series that ended with a stale marker on the server therefore look, to the embedded engine, as
if they had stopped being scraped (they linger for the lookback delta).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import numpy as np
import promql_parser as pp
import requests
import urllib3
import yaml
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from sloanalysis._go import match_op
from sloanalysis.api_json import histogram_from_api
from sloanalysis.durations import parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.promql.walk import children, duration_ms
from sloanalysis.store import Labels, SeriesStore, make_labels

__all__ = [
    "PrometheusClient",
    "SelectorRange",
    "fetch_expressions",
    "fetch_metadata",
    "fetch_metric_names",
    "fetch_samples",
    "fetch_scrape_interval_ms",
    "fetch_series",
    "format_seconds",
    "needed_ranges",
    "parse_result_samples",
    "parse_result_series",
    "selector_has_samples",
    "selector_span",
    "selector_text",
]

DEFAULT_LOOKBACK_MS = 300_000
DEFAULT_CHUNK_MS = 6 * 3_600_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def format_seconds(ms: int) -> str:
    """Exact decimal seconds of an integer millisecond instant or duration (``1700000000.015``)."""
    sign = "-" if ms < 0 else ""
    sec, frac = divmod(abs(int(ms)), 1000)
    return f"{sign}{sec}.{frac:03d}" if frac else f"{sign}{sec}"


def _ms(delta: timedelta) -> int:
    return delta // timedelta(milliseconds=1)


def _datetime_ms(at: datetime) -> int:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // timedelta(milliseconds=1)


# -- the HTTP client -------------------------------------------------------------------------


class PrometheusClient:
    """prometheus-api-client with millisecond times, hard timeouts and one-line errors.

    ``timeout`` (seconds) bounds connecting and each wait for data; no request is retried unless
    ``retries`` says so. On loopback addresses responses are requested uncompressed (gzip costs
    about as much as it saves there).
    """

    def __init__(self, url: str, *, timeout: float = 30.0, retries: int = 0) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UserError(f"Prometheus URL {url!r}: expected http://HOST:PORT or https://HOST:PORT")
        if not timeout > 0:
            raise UserError(f"Prometheus timeout must be positive, got {timeout!r}")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        headers = (
            {"Accept-Encoding": "identity"} if parsed.hostname in ("127.0.0.1", "localhost", "::1") else None
        )
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=0.2)
        self._conn = PrometheusConnect(self.url, headers=headers, retry=retry, timeout=self.timeout)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PrometheusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def instant(self, expr: str, at_ms: int) -> dict[str, Any]:
        """``/api/v1/query`` at ``at_ms``: ``{"resultType": ..., "result": ...}``."""
        return self._call(
            lambda: self._conn.custom_query(expr, params={"time": format_seconds(at_ms)}), expr, "vector"
        )

    def range(self, expr: str, start_ms: int, end_ms: int, step_ms: int) -> dict[str, Any]:
        """``/api/v1/query_range`` (one request; callers chunk to stay under 11,000 points)."""
        params = {
            "start": format_seconds(start_ms),
            "end": format_seconds(end_ms),
            "step": format_seconds(step_ms),
        }
        start = _EPOCH + timedelta(milliseconds=start_ms)
        end = _EPOCH + timedelta(milliseconds=end_ms)
        return self._call(
            lambda: self._conn.custom_query_range(expr, start, end, params["step"], params=params),
            expr,
            "matrix",
        )

    def _mute(self) -> str:
        return f"Prometheus at {self.url} did not answer within {self.timeout:g} s"

    def _call(self, fn: Any, expr: str, kind: str) -> dict[str, Any]:
        try:
            result = fn()
        except requests.exceptions.Timeout:
            raise UserError(self._mute()) from None
        except requests.exceptions.ConnectionError as exc:
            if _is_timeout(exc):  # with retries off, urllib3 wraps timeouts in MaxRetryError
                raise UserError(self._mute()) from None
            raise UserError(f"cannot reach Prometheus at {self.url}: {_reason(exc)}") from None
        except requests.exceptions.RequestException as exc:
            raise UserError(f"request to Prometheus at {self.url} failed: {_reason(exc)}") from None
        except PrometheusApiClientException as exc:
            raise UserError(
                f"Prometheus at {self.url} rejected {expr!r}: {_server_error(str(exc))}"
            ) from None
        except (ValueError, KeyError, TypeError) as exc:  # not JSON, or JSON without data.result
            raise UserError(f"{self.url} did not answer like a Prometheus query API: {exc}") from None
        return {"resultType": _result_type(result, kind), "result": result}


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # NewConnectionError (refused, unresolvable) subclasses ConnectTimeoutError in urllib3.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] ([^'\")]+)", r"(Connection refused)", r"(Name or service not known)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _server_error(message: str) -> str:
    """The server's ``error`` text from prometheus-api-client's "HTTP Status Code N (b'...')"."""
    status = re.match(r"HTTP Status Code (\d+)", message)
    body = re.search(r"\((b(['\"]).*\2)\)\s*$", message, re.DOTALL)
    if body:
        try:
            raw = ast.literal_eval(body.group(1))
            return str(json.loads(raw)["error"]).replace("\n", " ")
        except (ValueError, SyntaxError, KeyError, TypeError):
            pass
    if status:
        return f"HTTP status {status.group(1)}"
    return message.splitlines()[0][:300]


def _result_type(result: Any, default: str) -> str:
    """prometheus-api-client hands back only ``data.result``; recover its type from its shape."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        try:
            float(result[1])
        except (TypeError, ValueError):
            return "string"
        return "scalar"
    if isinstance(result, list) and result and isinstance(result[0], dict):
        return "matrix" if "values" in result[0] or "histograms" in result[0] else "vector"
    return default


def parse_result_series(entries: Iterable[dict[str, Any]]) -> list[tuple[Labels, np.ndarray, np.ndarray]]:
    """``[{"metric": {...}, "values": [[t, "v"], ...]}]`` -> (labels, ms, values) per series.

    Float samples only: native-histogram samples are left out (:func:`parse_result_samples`
    keeps them)."""
    out = []
    for entry in entries:
        labels = make_labels(entry.get("metric", {}))
        pairs = entry.get("values")
        if pairs is None:
            pairs = [entry["value"]] if "value" in entry else []
        n = len(pairs)
        secs = np.fromiter((p[0] for p in pairs), dtype=np.float64, count=n)
        vals = np.array([p[1] for p in pairs], dtype=np.float64) if n else np.empty(0, np.float64)
        out.append((labels, np.rint(secs * 1000.0).astype(np.int64), vals))
    return out


def parse_result_samples(
    entries: Iterable[dict[str, Any]],
) -> list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray | None]]:
    """As :func:`parse_result_series`, native histograms included: (labels, ms, values,
    histograms) per series, samples in time order. ``histograms`` is None for a series of floats
    only, else an object array of :class:`~sloanalysis.nativehist.FloatHistogram` (None at float
    samples); a histogram sample's value is NaN. Series hold ``value``/``values`` (floats) and
    ``histogram``/``histograms`` (``[t, {"count", "sum", "buckets"}]``), as the API writes them."""
    entries = list(entries)
    out: list[tuple[Labels, np.ndarray, np.ndarray, np.ndarray | None]] = []
    for (labels, ts, vs), entry in zip(parse_result_series(entries), entries, strict=True):
        pairs = entry.get("histograms")
        if pairs is None:
            pairs = [entry["histogram"]] if "histogram" in entry else []
        if not pairs:
            out.append((labels, ts, vs, None))
            continue
        h_ts = np.rint(np.array([float(p[0]) for p in pairs]) * 1000.0).astype(np.int64)
        all_ts = np.concatenate([ts, h_ts])
        order = np.argsort(all_ts, kind="stable")
        hists = np.full(all_ts.size, None, dtype=object)
        hists[ts.size :] = [histogram_from_api(p[1]) for p in pairs]
        values = np.concatenate([vs, np.full(h_ts.size, np.nan)])
        out.append((labels, all_ts[order], values[order], hists[order]))
    return out


# -- which samples an expression reads --------------------------------------------------------


@dataclass(frozen=True)
class SelectorRange:
    """A selector (name and matchers only, PromQL text) and the span ``[lo_ms, hi_ms]`` it reads."""

    selector: str
    lo_ms: int
    hi_ms: int


def _selector_text(vs: pp.VectorSelector) -> str:
    if vs.matchers.or_matchers:
        raise UserError(f"selector {vs}: 'or' inside a selector is not supported for fetching")
    parts = []
    if vs.name:
        parts.append(f"__name__={json.dumps(vs.name, ensure_ascii=False)}")
    for m in vs.matchers.matchers:
        op = match_op(m.op)
        parts.append(f"{m.name}{op}{json.dumps(m.value, ensure_ascii=False)}")
    return "{" + ",".join(sorted(set(parts))) + "}"


@dataclass(frozen=True)
class _Ctx:
    start_ms: int
    end_ms: int
    lookback_ms: int


def _shift(node: Any, lo: int, hi: int, ctx: _Ctx) -> tuple[int, int]:
    """Apply a node's ``@`` and ``offset`` to the evaluation span ``[lo, hi]``."""
    at = node.at
    if at is not None:
        kind = str(at.type).rsplit(".", 1)[-1]
        if kind == "Start":
            lo = hi = ctx.start_ms
        elif kind == "End":
            lo = hi = ctx.end_ms
        else:
            lo = hi = _datetime_ms(at.at)
    if node.offset is not None:
        off = _ms(node.offset)
        lo, hi = lo - off, hi - off
    return lo, hi


def _walk(node: Any, lo: int, hi: int, ctx: _Ctx, out: list[SelectorRange]) -> None:
    if isinstance(node, pp.VectorSelector):
        a, b = _shift(node, lo, hi, ctx)
        out.append(SelectorRange(_selector_text(node), a - ctx.lookback_ms, b))
    elif isinstance(node, pp.MatrixSelector):
        vs = node.vector_selector
        a, b = _shift(vs, lo, hi, ctx)
        out.append(SelectorRange(_selector_text(vs), a - _ms(node.range or timedelta(0)), b))
    else:
        if isinstance(node, pp.SubqueryExpr):
            a, hi = _shift(node, lo, hi, ctx)
            lo = a - duration_ms(node.range)
        for child in children(node):
            _walk(child, lo, hi, ctx, out)


def parse_expr(expr: str) -> Any:
    try:
        return pp.parse(expr)
    except (ValueError, TypeError) as exc:
        raise UserError(f"cannot parse PromQL {expr!r}: {str(exc).splitlines()[0]}") from None


def needed_ranges(
    expr: str, start_ms: int, end_ms: int, *, lookback_ms: int = DEFAULT_LOOKBACK_MS
) -> list[SelectorRange]:
    """The selectors ``expr`` reads when evaluated at ``start_ms..end_ms``, with the span of each.

    A selector read at several spans gets the smallest span covering them all. Spans are closed
    (``[lo, hi]``), so they cover both Prometheus 2's left-closed and 3's left-open ranges.
    """
    if end_ms < start_ms:
        raise UserError(f"end {format_seconds(end_ms)} is before start {format_seconds(start_ms)}")
    found: list[SelectorRange] = []
    _walk(parse_expr(expr), start_ms, end_ms, _Ctx(start_ms, end_ms, lookback_ms), found)
    merged: dict[str, tuple[int, int]] = {}
    for r in found:
        lo, hi = merged.get(r.selector, (r.lo_ms, r.hi_ms))
        merged[r.selector] = (min(lo, r.lo_ms), max(hi, r.hi_ms))
    return [SelectorRange(sel, lo, hi) for sel, (lo, hi) in sorted(merged.items())]


# -- fetching ---------------------------------------------------------------------------------


def fetch_range(
    client: PrometheusClient,
    selector: str,
    lo_ms: int,
    hi_ms: int,
    *,
    chunk_ms: int = DEFAULT_CHUNK_MS,
    into: SeriesStore | None = None,
) -> SeriesStore:
    """Raw samples of ``selector`` with ``lo_ms <= t <= hi_ms``, fetched ``chunk_ms`` at a time."""
    if chunk_ms <= 0:
        raise UserError(f"chunk must be positive, got {chunk_ms} ms")
    store = SeriesStore() if into is None else into
    parts: dict[Labels, list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {}
    # Chunk k reads (t_k - chunk, t_k]; Prometheus 2 also returns a sample exactly at t_k - chunk,
    # which the next-earlier chunk holds too: duplicates merge in the store.
    t = lo_ms - 1
    while t < hi_ms:
        t = min(t + chunk_ms, hi_ms)
        width = min(chunk_ms, t - lo_ms + 1)
        res = client.instant(f"{selector}[{width}ms]", t)
        for labels, ts, vs, hs in parse_result_samples(res["result"]):
            keep = (ts >= lo_ms) & (ts <= hi_ms)
            parts.setdefault(labels, []).append((ts[keep], vs[keep], None if hs is None else hs[keep]))
    for labels, chunks in parts.items():
        ts, vs = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        if all(c[2] is None for c in chunks):
            store.add(labels, ts, vs)
            continue
        hs = np.concatenate([np.full(c[0].size, None, object) if c[2] is None else c[2] for c in chunks])
        store.add(labels, ts, vs, hs)
    return store


def fetch_samples(
    url: str | PrometheusClient,
    expr: str,
    start_ms: int,
    end_ms: int,
    *,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    chunk_ms: int = DEFAULT_CHUNK_MS,
    timeout: float = 30.0,
) -> SeriesStore:
    """A store with every raw sample ``expr`` reads when evaluated over ``start_ms..end_ms``."""
    client = url if isinstance(url, PrometheusClient) else PrometheusClient(url, timeout=timeout)
    try:
        store = SeriesStore()
        for r in needed_ranges(expr, start_ms, end_ms, lookback_ms=lookback_ms):
            fetch_range(client, r.selector, r.lo_ms, r.hi_ms, chunk_ms=chunk_ms, into=store)
        return store
    finally:
        if not isinstance(url, PrometheusClient):
            client.close()


def fetch_expressions(
    url: str | PrometheusClient,
    reads: Iterable[tuple[str, int, int]],
    *,
    lookback_ms: int = DEFAULT_LOOKBACK_MS,
    chunk_ms: int = DEFAULT_CHUNK_MS,
    timeout: float = 30.0,
) -> SeriesStore:
    """A store with every raw sample the expressions read, each ``(expr, start_ms, end_ms)``
    evaluated over its own range; a selector read by several is fetched once, over the span
    covering them all. An unreachable server fails before any query (one-line error)."""
    spans: dict[str, tuple[int, int]] = {}
    last = 0
    for expr, start_ms, end_ms in reads:
        last = max(last, end_ms)
        for r in needed_ranges(expr, start_ms, end_ms, lookback_ms=lookback_ms):
            lo, hi = spans.get(r.selector, (r.lo_ms, r.hi_ms))
            spans[r.selector] = (min(lo, r.lo_ms), max(hi, r.hi_ms))
    client = url if isinstance(url, PrometheusClient) else PrometheusClient(url, timeout=timeout)
    try:
        client.instant("vector(1)", last)  # fail fast, with the client's one-line error
        store = SeriesStore()
        for selector, (lo, hi) in sorted(spans.items()):
            fetch_range(client, selector, lo, hi, chunk_ms=chunk_ms, into=store)
        return store
    finally:
        if not isinstance(url, PrometheusClient):
            client.close()


# -- where a selector's data is, and what a server exports (query hints, SLO coverage, lint) ----

SPAN_SEARCH_MS = 10 * 365 * 86_400_000
"""How far back :func:`selector_span` looks for data (ten years before the search's end)."""
_SPAN_POINTS = 10_000  # points of the coarse pass: under the server's 11,000 per request
_FINE_STEP_MS = 60_000


def selector_text(vs: pp.VectorSelector) -> str:
    """The selector's name and matchers as canonical PromQL (``{__name__="up",job="x"}``), without
    its offset or ``@``: what :func:`needed_ranges` reports and the functions below take."""
    return _selector_text(vs)


def _api_get(client: PrometheusClient, path: str, params: list[tuple[str, str]], what: str) -> Any:
    """``GET /api/v1/<path>``: its ``data``, through the client's timeout and one-line errors."""

    def get() -> Any:
        conn = client._conn
        response = conn._session.get(
            f"{client.url}/api/v1/{path}",
            params=params,
            headers=conn.headers,
            auth=conn.auth,
            verify=conn._session.verify,
            cert=conn._session.cert,
            timeout=client.timeout,
        )
        if response.status_code != 200:
            raise PrometheusApiClientException(
                f"HTTP Status Code {response.status_code} ({response.content!r})"
            )
        return response.json()["data"]

    return client._call(get, what, "raw")["result"]


def selector_has_samples(client: PrometheusClient, selector: str, lo_ms: int, hi_ms: int) -> bool:
    """Whether any series of ``selector`` has a sample in ``[lo_ms, hi_ms]``: one instant query of
    ``group(present_over_time(selector[width]))`` at ``hi_ms``."""
    width = max(hi_ms - lo_ms + 1, 1)
    res = client.instant(f"group(present_over_time({selector}[{width}ms]))", hi_ms)
    return bool(res["result"]) and res["resultType"] == "vector"


def selector_span(client: PrometheusClient, selector: str, search_end_ms: int) -> tuple[int, int] | None:
    """First and last sample time of the series of ``selector`` in the ten years before
    ``search_end_ms`` (None: no sample there), in three requests.

    A coarse range query of ``count(count_over_time(selector[S]))`` at step ``S`` (ten years in
    10,000 steps: about 9 hours) finds the first and last step with data; two range queries at
    1-minute steps over those steps then read ``min``/``max`` of ``timestamp(selector)``. The last
    time is a sample's exact timestamp; the first is a sample's, within a minute of the first one
    (the lookback delta shows a sample at every step up to 5 minutes after it)."""
    step = -(-SPAN_SEARCH_MS // _SPAN_POINTS // _FINE_STEP_MS) * _FINE_STEP_MS
    start = search_end_ms - _SPAN_POINTS * step
    coarse = client.range(f"count(count_over_time({selector}[{step}ms]))", start, search_end_ms, step)
    times = [t for _, ts, vs in parse_result_series(coarse["result"]) for t in ts[np.isfinite(vs)]]
    if not times:
        return None
    first_step, last_step = int(min(times)), int(max(times))
    fine = _FINE_STEP_MS
    head = client.range(f"min(timestamp({selector}))", first_step - step, first_step, fine)
    tail = client.range(f"max(timestamp({selector}))", last_step - step, last_step + fine, fine)
    firsts = [vs[np.isfinite(vs)] for _, _, vs in parse_result_series(head["result"])]
    lasts = [vs[np.isfinite(vs)] for _, _, vs in parse_result_series(tail["result"])]
    first_vals = [v for v in firsts if v.size]
    last_vals = [v for v in lasts if v.size]
    lo = round(float(first_vals[0][0]) * 1000) if first_vals else first_step - step
    hi = round(float(max(v.max() for v in last_vals)) * 1000) if last_vals else last_step
    return lo, hi


def fetch_metric_names(client: PrometheusClient) -> list[str]:
    """Every metric name the server has (``/api/v1/label/__name__/values``, no time bounds)."""
    return [str(x) for x in _api_get(client, "label/__name__/values", [], "metric names")]


def fetch_series(client: PrometheusClient, selectors: Iterable[str]) -> list[dict[str, str]]:
    """Label sets of the series matching any of ``selectors`` (``/api/v1/series``, no time bounds:
    one request for all of them)."""
    params = [("match[]", s) for s in selectors]
    if not params:
        return []
    data = _api_get(client, "series", params, "series")
    return [{str(k): str(v) for k, v in entry.items()} for entry in data]


def fetch_metadata(client: PrometheusClient) -> dict[str, tuple[str, str]]:
    """Metric family -> (type, help) from ``/api/v1/metadata`` (scraped targets only: backfilled
    data has none). Families with several entries keep the first."""
    data = _api_get(client, "metadata", [], "metadata")
    out: dict[str, tuple[str, str]] = {}
    for name, entries in (data or {}).items():
        if entries:
            out[str(name)] = (str(entries[0].get("type", "unknown")), str(entries[0].get("help", "")))
    return out


def fetch_scrape_interval_ms(client: PrometheusClient, default_ms: int = 15_000) -> int:
    """The global scrape interval of the server's configuration (``/api/v1/status/config``), or
    ``default_ms`` when the server does not say (e.g. a Prometheus-compatible store)."""
    try:
        config = _api_get(client, "status/config", [], "configuration")
        interval = (yaml.safe_load(config.get("yaml", "")) or {}).get("global", {}).get("scrape_interval")
        return parse_prometheus_duration(str(interval)) if interval else default_ms
    except (UserError, AttributeError, TypeError, ValueError):
        return default_ms
