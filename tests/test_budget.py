"""Budgets and burn rates against hand-computed values and the SRE Workbook's figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sloanalysis.report.gates import slo_checks
from sloanalysis.slo.budget import (
    budget_minutes,
    budget_spent,
    burn_down,
    burn_rate,
    burn_rate_series,
    error_budget,
    events_frame,
    measure,
    measure_window,
    sli_series,
    time_to_exhaustion_ms,
    timeslice_frame,
)
from sloanalysis.slo.spec import SLO, Alerting, EventsSLI, TimesliceSLI
from sloanalysis.slo.status import slo_status

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = pd.Timestamp("2024-01-01T00:00:00Z")


def minutes(n: int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(minutes=i + 1) for i in range(n)])


# -- the SRE Workbook's numbers for 99.9 % over 30 days -------------------------------------------


def test_burn_rate_14_4_spends_two_percent_in_one_hour() -> None:
    # 30 days = 720 hours; one hour at 14.4 = 14.4/720 of the budget.
    assert budget_spent(14.4, HOUR, 30 * DAY) == pytest.approx(0.02, rel=1e-12)


def test_budget_of_99_9_over_30_days_is_43_2_minutes() -> None:
    # 0.1 % of 43200 minutes.
    assert budget_minutes(0.999, 30 * DAY) == pytest.approx(43.2, rel=1e-12)


def test_exhaustion_at_burn_1000_takes_43_2_minutes() -> None:
    # A 100 % outage (burn 1/0.001 = 1000) spends 30 days of budget in 30 days / 1000.
    assert time_to_exhaustion_ms(1.0, 1000.0, 30 * DAY) == pytest.approx(43.2 * MIN, rel=1e-12)
    # Half the budget left at burn 10: 0.5 * 30 d / 10 = 1.5 days.
    assert time_to_exhaustion_ms(0.5, 10.0, 30 * DAY) == pytest.approx(1.5 * DAY, rel=1e-12)
    assert time_to_exhaustion_ms(0.5, 0.0, 30 * DAY) == math.inf
    assert time_to_exhaustion_ms(-0.1, 5.0, 30 * DAY) == 0.0


def test_burn_rate_of_an_error_ratio() -> None:
    assert burn_rate(0.01, 0.999) == pytest.approx(10.0, rel=1e-9)
    assert burn_rate(1.0, 0.999) == pytest.approx(1000.0, rel=1e-9)


# -- a small event series by hand -------------------------------------------------------------------
# Six one-minute steps, objective 0.99:
#   valid  100  100   0  (absent)  100  100
#   good   100   99   0  (absent)   90  100


@pytest.fixture
def small() -> pd.DataFrame:
    idx = minutes(6)
    valid = pd.Series([100.0, 100.0, 0.0, np.nan, 100.0, 100.0], index=idx)
    good = pd.Series([100.0, 99.0, 0.0, np.nan, 90.0, 100.0], index=idx)
    return events_frame(good, valid)


def test_error_budget_by_hand(small: pd.DataFrame) -> None:
    b = error_budget(small, 0.99)
    # 389 good of 400; 11 bad; allowed 1 % of 400 = 4 events.
    assert b.good == 389 and b.valid == 400
    assert b.sli == pytest.approx(0.9725)
    assert b.allowed == pytest.approx(4.0)
    assert b.consumed == pytest.approx(11.0)
    assert b.remaining == pytest.approx(-7.0)
    assert b.consumed_ratio == pytest.approx(2.75)
    assert b.remaining_ratio == pytest.approx(-1.75)
    assert b.burn_rate == pytest.approx(2.75)  # error ratio 11/400 over budget 0.01
    assert b.coverage == pytest.approx(5 / 6)


def test_burn_rate_and_sli_over_two_minute_windows(small: pd.DataFrame) -> None:
    # Window (t-2m, t]: steps (1), (1,2), (2,3), (3,4), (4,5), (5,6).
    burn = burn_rate_series(small, 0.99, 2 * MIN).to_numpy()
    # bad/valid: 0/100, 1/200, 1/100, 0/0 (no traffic: 0), 10/100, 10/200; divided by 0.01.
    assert burn == pytest.approx([0.0, 0.5, 1.0, 0.0, 10.0, 5.0])
    sli = sli_series(small, 2 * MIN).to_numpy()
    assert sli[:3] == pytest.approx([1.0, 0.995, 0.99])
    assert math.isnan(sli[3])  # no traffic in the window: no SLI, on purpose
    assert sli[4:] == pytest.approx([0.9, 0.95])


def test_burn_down_grows_with_traffic(small: pd.DataFrame) -> None:
    bd = burn_down(small, 0.99)
    # cumulative valid 100 200 200 200 300 400; bad 0 1 1 1 11 11; allowed 1 2 2 2 3 4
    assert bd["allowed"].to_numpy() == pytest.approx([1, 2, 2, 2, 3, 4])
    assert bd["consumed"].to_numpy() == pytest.approx([0, 1, 1, 1, 11, 11])
    assert bd["remaining_ratio"].to_numpy() == pytest.approx([1, 0.5, 0.5, 0.5, 1 - 11 / 3, 1 - 11 / 4])


def test_burn_down_with_a_fixed_budget(small: pd.DataFrame) -> None:
    bd = burn_down(small, 0.99, allowed=10.0)
    assert bd["remaining_ratio"].to_numpy() == pytest.approx([1, 0.9, 0.9, 0.9, -0.1, -0.1])
    assert bd["remaining"].to_numpy() == pytest.approx([10, 9, 9, 9, -1, -1])


def test_zero_traffic_spends_nothing_and_is_never_nan() -> None:
    idx = minutes(4)
    zero = pd.Series([0.0, 0.0, np.nan, 0.0], index=idx)
    frame = events_frame(zero, zero)
    b = error_budget(frame, 0.999)
    assert b.sli is None
    assert (b.allowed, b.consumed, b.remaining) == (0.0, 0.0, 0.0)
    assert (b.consumed_ratio, b.remaining_ratio, b.burn_rate) == (0.0, 1.0, 0.0)
    assert not np.isnan(burn_rate_series(frame, 0.999, HOUR).to_numpy()).any()
    assert burn_down(frame, 0.999)["remaining_ratio"].to_numpy() == pytest.approx([1, 1, 1, 1])


def test_negative_counts_are_clipped_and_good_never_exceeds_valid() -> None:
    idx = minutes(2)
    frame = events_frame(pd.Series([-5.0, 12.0], index=idx), pd.Series([-3.0, 10.0], index=idx))
    assert frame["good"].tolist() == [0.0, 10.0]
    assert frame["valid"].tolist() == [0.0, 10.0]


# -- time slices ------------------------------------------------------------------------------------


def test_timeslice_budget_in_minutes_and_missing_policies() -> None:
    idx = minutes(5)
    indicator = pd.Series([1.0, 1.0, 0.0, 1.0], index=idx.delete(3))  # slice 4 has no data
    ignore = timeslice_frame(indicator, MIN, "ignore", index=idx)
    b = error_budget(ignore, 0.9, "minutes")
    # 3 good minutes of 4 counted; allowed 10 % of 4 = 0.4 min; consumed 1 min.
    assert (b.good, b.valid, b.consumed) == (3.0, 4.0, 1.0)
    assert b.allowed == pytest.approx(0.4)
    assert b.coverage == pytest.approx(0.8)
    bad = error_budget(timeslice_frame(indicator, MIN, "bad", index=idx), 0.9, "minutes")
    assert (bad.good, bad.valid, bad.consumed) == (3.0, 5.0, 2.0)
    good = error_budget(timeslice_frame(indicator, MIN, "good", index=idx), 0.9, "minutes")
    assert (good.good, good.valid, good.consumed) == (4.0, 5.0, 1.0)


def test_fractional_indicator_counts_that_share_of_the_slice() -> None:
    frame = timeslice_frame(pd.Series([0.5, 1.0], index=minutes(2)), 2 * MIN)
    # 0.5 * 2 min + 1 * 2 min good of 4 minutes.
    assert error_budget(frame, 0.5, "minutes").good == pytest.approx(3.0)


# -- measuring through a backend (a transport seam, no mocks of our code) -----------------------------


class ConstantBackend:
    """Answers every query with a constant per expression, at every step but the ``gaps``."""

    def __init__(self, values: dict[str, float], gaps: frozenset[int] = frozenset()) -> None:
        self.values = values
        self.gaps = gaps
        self.queries: list[tuple[str, int, int, int]] = []

    def query_range(self, expr: str, start: int, end: int, step: int) -> pd.DataFrame:
        self.queries.append((expr, start, end, step))
        value = next(v for k, v in self.values.items() if k in expr)
        ts = np.arange(start, end + 1, step, dtype=np.int64)
        ts = ts[~np.isin(ts, list(self.gaps))]
        return pd.DataFrame(
            {"timestamp": pd.to_datetime(ts, unit="ms", utc=True), "value": np.full(ts.size, value)}
        )


def _slo(sli: EventsSLI | TimesliceSLI, objective: float = 0.99, period: int = DAY) -> SLO:
    return SLO("x", "svc", objective, period, sli, Alerting(name="X"))


def test_measure_events_scales_rates_to_counts_per_step() -> None:
    sli = EventsSLI(total="sum(rate(total[{{.window}}]))", good="sum(rate(good[{{.window}}]))")
    start = 1_700_000_000_000
    backend = ConstantBackend({"good": 9.9, "total": 10.0})
    frame = measure(_slo(sli), backend, start, start + HOUR, MIN)
    # 60 steps of one minute: 600 requests and 594 good per step.
    assert len(frame) == 60
    assert frame["valid"].sum() == pytest.approx(36_000)
    assert frame["good"].sum() == pytest.approx(35_640)
    assert all("[1m]" in q[0] for q in backend.queries)


def test_measure_window_counts_the_whole_window_at_once() -> None:
    sli = EventsSLI(total="sum(rate(total[{{.window}}]))", good="sum(rate(good[{{.window}}]))")
    start = 1_700_000_000_000
    backend = ConstantBackend({"good": 9.9, "total": 10.0})
    frame = measure_window(_slo(sli), backend, start, start + HOUR)
    # One evaluation of the 1h templates at the end: 36000 requests, 35640 good.
    assert len(frame) == 1
    assert [q[0].count("[1h]") for q in backend.queries] == [1, 1]
    assert (frame["valid"].iloc[0], frame["good"].iloc[0]) == (pytest.approx(36_000), pytest.approx(35_640))


def test_slo_status_over_data_shorter_than_the_period() -> None:
    sli = EventsSLI(total="sum(rate(total[{{.window}}]))", good="sum(rate(good[{{.window}}]))")
    end = 1_700_000_000_000
    backend = ConstantBackend({"good": 9.9, "total": 10.0})
    # 99 % good for one hour of a 1-day period at 98 %: the budget is 2 % of 36000 = 720 requests,
    # 360 are bad, so half is left; the burn rate is 1 % / 2 % = 0.5 in every window, and half a
    # budget lasts 0.5 * 1 d / 0.5 = 1 day at that rate.
    status = slo_status(_slo(sli, 0.98), backend, end - HOUR, end, burn_windows_ms=[5 * MIN])
    assert (status.start_ms, status.window_ms, status.state) == (end - HOUR, HOUR, "met")
    assert status.burn_rates == {HOUR: pytest.approx(0.5), 5 * MIN: pytest.approx(0.5)}
    row = status.row()
    assert row["sli"] == pytest.approx(0.99) and row["met"] is True and row["window_ms"] == HOUR
    assert row["budget_remaining_ratio"] == pytest.approx(0.5)
    assert row["budget_remaining"] == pytest.approx(360.0)
    assert row["time_to_exhaustion_ms"] == pytest.approx(DAY)
    # At 99 % exactly the budget is spent: missed is only below the objective, nothing remains.
    spent = slo_status(_slo(sli, 0.99), backend, end - HOUR, end).row()
    assert spent["met"] is True and spent["budget_remaining_ratio"] == pytest.approx(0.0, abs=1e-9)
    assert spent["time_to_exhaustion_ms"] == pytest.approx(0.0, abs=1.0)  # rounding: within 1 ms
    assert slo_status(_slo(sli, 0.995), backend, end - HOUR, end).state == "missed"


class EmptyBackend:
    """A server that has no sample for any query."""

    def query_range(self, expr: str, start: int, end: int, step: int) -> pd.DataFrame:
        return pd.DataFrame({"timestamp": pd.to_datetime([], utc=True), "value": np.array([], np.float64)})


def test_slo_status_without_samples_is_no_data_and_never_a_pass() -> None:
    sli = EventsSLI(total="sum(rate(total[{{.window}}]))", good="sum(rate(good[{{.window}}]))")
    end = 1_700_000_000_000
    status = slo_status(_slo(sli), EmptyBackend(), end - DAY, end)
    assert status.state == "no data" and not status.has_samples
    row = status.row()
    unknown = ("sli", "met", "budget_remaining", "budget_remaining_ratio", "burn_rate_current")
    assert all(row[k] is None for k in (*unknown, "time_to_exhaustion_ms"))
    assert row["state"] == "no data" and row["coverage"] is None
    assert [c.status for c in slo_checks([row])] != ["passed"]
    # Samples without traffic: no SLI either, but nothing was spent (the whole budget is left).
    idle = slo_status(_slo(sli), ConstantBackend({"good": 0.0, "total": 0.0}), end - DAY, end)
    assert idle.state == "no data" and idle.has_samples
    assert idle.row()["budget_remaining_ratio"] == 1.0 and idle.row()["burn_rate_current"] == 0.0


def test_measure_timeslice_with_absent_slices() -> None:
    start = 1_700_000_000_000
    gaps = frozenset({start + 3 * MIN, start + 4 * MIN})
    sli = TimesliceSLI(indicator="up == bool 1", slice_ms=MIN, missing="ignore")
    frame = measure(_slo(sli, 0.9), ConstantBackend({"up": 1.0}, gaps), start, start + 10 * MIN)
    assert len(frame) == 10 and int(frame["present"].sum()) == 8
    b = error_budget(frame, 0.9, "minutes")
    assert (b.good, b.valid) == (8.0, 8.0)
    assert b.coverage == pytest.approx(0.8)
