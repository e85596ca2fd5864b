"""Coverage, the ``no data`` and ``low coverage`` states and where the data is, on hand-built
series, through the embedded engine and a real Prometheus holding the same samples.

The series: a request counter scraped every 15 s for 10 hours from T0, 1 request a second, of
which 1 in 100 fails, with nothing scraped in (T0 + 2h, T0 + 4h]. At 1-minute steps the window
(T0, T0 + 10h] has 600 steps; the rate over one step needs two samples in the step, so the steps
ending at T0 + 2h01 .. T0 + 4h (120 of them) have none and the others all have four. Coverage:
480 / 600 = 0.8, under the default least coverage of 0.9.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import numpy as np
import pandas as pd
import pytest

from sloanalysis.query import EmbeddedBackend, PrometheusBackend
from sloanalysis.slo.spec import SLO, Alerting, EventsSLI, TimesliceSLI
from sloanalysis.slo.status import MIN_COVERAGE, slo_status
from sloanalysis.store import SeriesStore

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = int(pd.Timestamp("2026-01-01T00:00:00Z").value // 1_000_000)
GAP = (T0 + 2 * HOUR, T0 + 4 * HOUR)  # no sample in (GAP[0], GAP[1]]

EVENTS = EventsSLI(
    total="sum(rate(http_requests_total[{{.window}}]))",
    good='sum(rate(http_requests_total{code="200"}[{{.window}}]))',
)


def _store() -> SeriesStore:
    ts = np.arange(T0, T0 + 10 * HOUR + 1, 15_000, dtype=np.int64)
    ts = ts[(ts <= GAP[0]) | (ts > GAP[1])]
    seconds = (ts - T0) / 1000.0
    store = SeriesStore()
    store.add({"__name__": "http_requests_total", "code": "200"}, ts, 0.99 * seconds)
    store.add({"__name__": "http_requests_total", "code": "500"}, ts, 0.01 * seconds)
    return store


def _slo(sli: EventsSLI | TimesliceSLI = EVENTS, objective: float = 0.95) -> SLO:
    return SLO("checkout", "shop", objective, DAY, sli, Alerting(name="X"))


@pytest.fixture(scope="module")
def store() -> SeriesStore:
    return _store()


def test_a_two_hour_gap_in_ten_hours_is_80_percent(store: SeriesStore) -> None:
    status = slo_status(_slo(), EmbeddedBackend(store), T0, T0 + 10 * HOUR, MIN)
    assert status.coverage == pytest.approx(0.8)
    assert MIN_COVERAGE == 0.9 and status.state == "low coverage"
    # The SLI is still measured (99 % of the requests are good) and given as information.
    assert status.sli == pytest.approx(0.99, abs=1e-9)
    assert status.data_span_ms == (T0, T0 + 10 * HOUR)
    row = status.row()
    assert (row["state"], row["coverage"], row["met"]) == ("low coverage", pytest.approx(0.8), True)
    assert (row["data_start_ms"], row["data_end_ms"]) == (T0, T0 + 10 * HOUR)
    # At a least coverage of 0.75 the same window counts: met, and no span is looked up.
    lenient = slo_status(_slo(), EmbeddedBackend(store), T0, T0 + 10 * HOUR, MIN, min_coverage=0.75)
    assert lenient.state == "met" and lenient.data_span_ms is None
    assert slo_status(_slo(objective=0.995), EmbeddedBackend(store), T0, T0 + 10 * HOUR, MIN).state == (
        "low coverage"
    )


def test_the_last_six_hours_are_covered_in_full(store: SeriesStore) -> None:
    # (T0 + 4h, T0 + 10h]: the first step, T0 + 4h01, has the samples at 4h00m15 .. 4h01.
    status = slo_status(_slo(objective=0.995), EmbeddedBackend(store), T0 + 4 * HOUR, T0 + 10 * HOUR, MIN)
    assert status.coverage == pytest.approx(1.0) and status.state == "missed"


def test_a_range_without_samples_is_no_data_with_the_span(store: SeriesStore) -> None:
    status = slo_status(_slo(), EmbeddedBackend(store), T0 + 11 * HOUR, T0 + 12 * HOUR, MIN)
    assert status.state == "no data" and status.coverage is None and not status.has_samples
    assert status.data_span_ms == (T0, T0 + 10 * HOUR)
    assert status.row()["coverage"] is None


def test_timeslices_count_their_slices(store: SeriesStore) -> None:
    # 5-minute slices of "any sample in the slice": 120 slices, the 24 ending at 2h05 .. 4h empty.
    sli = TimesliceSLI(indicator="clamp_max(count_over_time(http_requests_total[5m]), 1)", slice_ms=5 * MIN)
    status = slo_status(_slo(sli, 0.5), EmbeddedBackend(store), T0, T0 + 10 * HOUR, MIN)
    assert status.coverage == pytest.approx(96 / 120)
    assert status.state == "low coverage"


def test_min_coverage_out_of_range_is_refused(store: SeriesStore) -> None:
    from sloanalysis.errors import UserError

    with pytest.raises(UserError, match="min_coverage"):
        slo_status(_slo(), EmbeddedBackend(store), T0, T0 + HOUR, MIN, min_coverage=1.5)


@pytest.mark.prometheus
def test_the_same_through_a_real_prometheus(
    store: SeriesStore, prometheus_from_store: Callable[..., AbstractContextManager[str]]
) -> None:
    with prometheus_from_store(store) as url, PrometheusBackend(url) as prom:
        status = slo_status(_slo(), prom, T0, T0 + 10 * HOUR, MIN)
        assert status.coverage == pytest.approx(0.8) and status.state == "low coverage"
        assert status.data_span_ms is not None
        first, last = status.data_span_ms
        # The last sample exactly; the first within a minute of T0 (a 1-minute grid over the
        # lookback delta finds a sample of the first minute, not necessarily the first one).
        assert last == T0 + 10 * HOUR and T0 <= first < T0 + MIN
        empty = slo_status(_slo(), prom, T0 - 3 * DAY, T0 - 2 * DAY, MIN)
        assert empty.state == "no data" and empty.coverage is None
        assert empty.data_span_ms is not None and empty.data_span_ms[1] == T0 + 10 * HOUR
