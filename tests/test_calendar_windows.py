"""Calendar-aligned SLO windows: periods in a time zone, and budgets reset at every boundary.

Every expected figure is worked by hand in the comments (99.9 % objective: a budget of 0.1 %).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloanalysis.errors import UserError
from sloanalysis.query import EmbeddedBackend
from sloanalysis.slo.budget import (
    burn_down,
    calendar_burn_down,
    period_budgets,
    step_periods,
    timeslice_frame,
)
from sloanalysis.slo.calendar import CalendarWindow, calendar_window
from sloanalysis.slo.spec import SLO, Alerting, EventsSLI, RawSLI
from sloanalysis.slo.status import budget_remaining_series, evaluation_start, slo_status
from sloanalysis.store import SeriesStore

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def with_calendar(slo: SLO, cal: CalendarWindow) -> SLO:
    """The SLO with a calendar window."""
    return dataclasses.replace(slo, calendar=cal)


def minute_index(start: str, end: str) -> pd.DatetimeIndex:
    """Every minute in ``(start, end]`` (a step stamped t covers the minute before t)."""
    return pd.date_range(pd.Timestamp(start) + pd.Timedelta(minutes=1), pd.Timestamp(end), freq="1min")


# -- periods ------------------------------------------------------------------------------------


def test_month_periods_in_utc_and_berlin() -> None:
    utc = CalendarWindow("month")
    assert utc.periods(ms("2026-10-20T00:00:00+00:00"), ms("2026-11-10T00:00:00+00:00")) == [
        (ms("2026-10-01T00:00:00+00:00"), ms("2026-11-01T00:00:00+00:00")),
        (ms("2026-11-01T00:00:00+00:00"), ms("2026-12-01T00:00:00+00:00")),
    ]
    berlin = CalendarWindow("month", time_zone="Europe/Berlin")
    # Midnight in Berlin: CEST (+2) on October 1st, CET (+1) from October 25th on.
    a, b = berlin.period_containing(ms("2026-10-15T12:00:00+00:00"))
    assert (a, b) == (ms("2026-09-30T22:00:00+00:00"), ms("2026-10-31T23:00:00+00:00"))
    assert (b - a) == 31 * DAY + HOUR  # 745 hours: the autumn clock change gives an hour back
    assert berlin.period_label(b) == "November 2026 (Europe/Berlin)"
    assert berlin.period_label(a) == "October 2026 (Europe/Berlin)"
    # An instant on the boundary opens the new period; a step ending there closes the old one.
    assert berlin.period_containing(b)[0] == b
    assert berlin.period_of_step(b) == (a, b)


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("Europe/Berlin", "2026-03-29", 23),
        ("Europe/Berlin", "2026-10-25", 25),
        ("Europe/Berlin", "2026-06-15", 24),
        ("America/New_York", "2026-03-08", 23),
        ("America/New_York", "2026-11-01", 25),
        ("Australia/Lord_Howe", "2026-04-05", 24.5),  # half-hour DST
    ],
)
def test_days_follow_daylight_saving_time(zone: str, day: str, hours: float) -> None:
    cal = CalendarWindow("day", time_zone=zone)
    noon = datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=cal.tz)
    a, b = cal.period_containing(int(noon.timestamp() * 1000))
    assert (b - a) == hours * HOUR
    local = datetime.fromtimestamp(a / 1000, UTC).astimezone(cal.tz)
    assert (local.date().isoformat(), local.hour, local.minute) == (day, 0, 0)


def test_weeks_start_on_monday() -> None:
    cal = CalendarWindow("week")
    periods = cal.periods(ms("2026-11-01T00:00:00+00:00"), ms("2026-11-20T00:00:00+00:00"))
    starts = [datetime.fromtimestamp(a / 1000, UTC) for a, _ in periods]
    # 2026-01-01 is a Thursday; November 2nd is 305 days later, 305 = 43 * 7 + 4: a Monday.
    assert [s.date().isoformat() for s in starts] == ["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]
    assert all(s.weekday() == 0 and s.hour == 0 for s in starts)
    assert all(b - a == 7 * DAY for a, b in periods)
    assert cal.period_label(ms("2026-11-04T00:00:00+00:00")) == "2026-W45 (UTC)"
    # The week of the autumn change in Berlin lasts 7 * 24 + 1 hours.
    berlin = CalendarWindow("week", time_zone="Europe/Berlin")
    a, b = berlin.period_containing(ms("2026-10-25T12:00:00+00:00"))
    assert b - a == 7 * DAY + HOUR


def test_quarters_years_counts_and_anchors() -> None:
    q = CalendarWindow("quarter")
    assert q.period_containing(ms("2026-11-15T00:00:00+00:00")) == (
        ms("2026-10-01T00:00:00+00:00"),
        ms("2027-01-01T00:00:00+00:00"),
    )
    assert q.period_label(ms("2026-11-15T00:00:00+00:00")) == "Q4 2026 (UTC)"
    assert CalendarWindow("year").period_label(ms("2026-11-15T00:00:00+00:00")) == "2026 (UTC)"
    # Anchored on the 31st: the next boundaries fall on the last day of shorter months.
    anchored = CalendarWindow("month", start=datetime(2026, 1, 31, 12, 0))
    starts = [
        a for a, _ in anchored.periods(ms("2026-02-01T00:00:00+00:00"), ms("2026-04-15T00:00:00+00:00"))
    ]
    assert starts == [
        ms("2026-01-31T12:00:00+00:00"),
        ms("2026-02-28T12:00:00+00:00"),
        ms("2026-03-31T12:00:00+00:00"),
    ]
    two_days = CalendarWindow("day", count=2, start=datetime(2026, 11, 1))
    assert two_days.period_containing(ms("2026-11-04T05:00:00+00:00")) == (
        ms("2026-11-03T00:00:00+00:00"),
        ms("2026-11-05T00:00:00+00:00"),
    )
    # A boundary inside the spring-forward gap (02:30 on 2026-03-29 in Berlin does not exist) is
    # the first instant after the gap, 03:00 CEST = 01:00 UTC.
    gap = CalendarWindow("day", time_zone="Europe/Berlin", start=datetime(2026, 1, 1, 2, 30))
    assert gap.period_containing(ms("2026-03-29T12:00:00+00:00"))[0] == ms("2026-03-29T01:00:00+00:00")


def test_bad_windows_are_one_line_user_errors() -> None:
    with pytest.raises(UserError, match="unknown time zone 'Mars/Base'"):
        CalendarWindow("month", time_zone="Mars/Base")
    with pytest.raises(UserError, match="count"):
        CalendarWindow("week", count=0)
    with pytest.raises(UserError, match="'1h'"):
        calendar_window("1h")
    assert calendar_window("1M", "Europe/Berlin") == CalendarWindow("month", 1, "Europe/Berlin")
    assert calendar_window("2w").count == 2 and calendar_window("1Q").unit == "quarter"


# -- budgets reset at the boundary ----------------------------------------------------------------


def test_time_budget_burns_one_fifteenth_of_november_per_day_at_burn_rate_two() -> None:
    # A constant 0.2 % error ratio on a 99.9 % SLO burns at 2. Per day it spends
    # 0.002 * 1440 = 2.88 minutes; November's budget is 0.001 * 30 * 1440 = 43.2 minutes (1/15 a
    # day), October's 0.001 * 31 * 1440 = 44.64.
    index = minute_index("2026-10-30T00:00:00+00:00", "2026-11-03T00:00:00+00:00")
    frame = timeslice_frame(pd.Series(0.998, index=index), MIN, index=index)
    cal = CalendarWindow("month")
    down = calendar_burn_down(frame, 0.999, cal, "minutes")
    at = down["remaining_ratio"]
    # The step ending at midnight on November 1st is October's: two days of it are in the frame.
    assert at[pd.Timestamp("2026-11-01T00:00:00Z")] == pytest.approx(1 - 5.76 / 44.64)
    assert down["allowed"][pd.Timestamp("2026-11-01T00:00:00Z")] == pytest.approx(44.64)
    # One minute later November's budget starts afresh: one minute at 0.2 % is 0.002 bad minutes.
    assert at[pd.Timestamp("2026-11-01T00:01:00Z")] == pytest.approx(1 - 0.002 / 43.2)
    assert at[pd.Timestamp("2026-11-02T00:00:00Z")] == pytest.approx(14 / 15)
    assert at[pd.Timestamp("2026-11-03T00:00:00Z")] == pytest.approx(13 / 15)
    # Without the calendar the burn-down runs on over the boundary: four days of 0.2 % against a
    # budget that grows with the minutes seen, i.e. 1 - 2 = -1 everywhere.
    assert burn_down(frame, 0.999)["remaining_ratio"].iloc[-1] == pytest.approx(-1.0)
    budgets = period_budgets(frame, 0.999, cal, "minutes")
    assert [p for p, _ in budgets] == [
        (ms("2026-10-01T00:00:00+00:00"), ms("2026-11-01T00:00:00+00:00")),
        (ms("2026-11-01T00:00:00+00:00"), ms("2026-12-01T00:00:00+00:00")),
    ]
    nov = budgets[1][1]
    assert (nov.allowed, nov.consumed) == (pytest.approx(43.2), pytest.approx(5.76))
    assert nov.sli == pytest.approx(0.998) and nov.burn_rate == pytest.approx(2.0)


def test_a_23_hour_day_has_a_23_hour_budget() -> None:
    # Berlin, 2026-03-29: 23 hours = 1380 minutes; at 99.9 % the day allows 1.38 bad minutes.
    index = minute_index("2026-03-28T23:00:00+00:00", "2026-03-29T22:00:00+00:00")
    frame = timeslice_frame(pd.Series(1.0, index=index), MIN, index=index)
    budgets = period_budgets(frame, 0.999, CalendarWindow("day", time_zone="Europe/Berlin"), "minutes")
    assert len(budgets) == 1 and budgets[0][1].allowed == pytest.approx(1.38)
    starts, ends = step_periods(frame.index, CalendarWindow("day", time_zone="Europe/Berlin"))
    assert set((ends - starts).tolist()) == {23 * HOUR}


def test_event_budget_resets_when_the_month_turns() -> None:
    # 600 requests a minute; 0.2 % of them fail in October, none in November.
    index = minute_index("2026-10-31T00:00:00+00:00", "2026-11-01T02:00:00+00:00")
    bad = np.where(index <= pd.Timestamp("2026-11-01T00:00:00Z"), 1.2, 0.0)
    frame = pd.DataFrame({"good": 600.0 - bad, "valid": 600.0, "present": True}, index=index)
    cal = CalendarWindow("month")
    left = calendar_burn_down(frame, 0.999, cal, "events")["remaining_ratio"]
    # October: 1.2 bad of 600 is 0.2 %, twice the 0.1 % allowed: 1 - 2 = -1. November: untouched.
    assert left[pd.Timestamp("2026-11-01T00:00:00Z")] == pytest.approx(-1.0)
    assert (left[left.index > pd.Timestamp("2026-11-01T00:00:00Z")] == 1.0).all()
    slo = with_calendar(_slo(EventsSLI(total="t", good="g")), cal)
    assert budget_remaining_series(slo, frame).equals(left.rename("budget_remaining"))


def _slo(sli: EventsSLI | RawSLI) -> SLO:
    return SLO("checkout", "shop", 0.999, 30 * DAY, sli, Alerting(name="Checkout"))


def _counters(start: str, end: str, failing_until: str) -> SeriesStore:
    """10 requests a second; 0.2 % of them (0.02/s) fail until ``failing_until``, none after."""
    ts = np.arange(ms(start), ms(end) + 1, 15_000, dtype=np.int64)
    seconds = (ts - ts[0]) / 1000.0
    stop = (ms(failing_until) - ts[0]) / 1000.0
    errors = 0.02 * np.minimum(seconds, stop)
    store = SeriesStore()
    store.add({"__name__": "requests_total"}, ts, 10.0 * seconds)
    store.add({"__name__": "errors_total"}, ts, errors)
    return store


EVENTS = EventsSLI(total="sum(rate(requests_total[{{.window}}]))", bad="sum(rate(errors_total[{{.window}}]))")


def test_status_of_a_calendar_month_counts_from_the_first() -> None:
    store = _counters("2026-10-30T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    backend = EmbeddedBackend(store)
    end = ms("2026-11-03T00:00:00+00:00")
    rolling = _slo(EVENTS)
    cal = with_calendar(_slo(EVENTS), CalendarWindow("month"))
    # Rolling 30 days (cut at the data's start, October 30th 00:00): four days, half of them failing
    # at 0.2 %: 0.1 % overall, the budget spent (within rate()'s extrapolation of 15 s in 4 days).
    data_start = ms("2026-10-30T00:00:00+00:00")
    r = slo_status(rolling, backend, data_start, end)
    assert r.period is None and r.window_ms == 4 * DAY
    assert r.budget.remaining_ratio == pytest.approx(0.0, abs=1e-4)
    assert "period_label" not in r.row()
    # Calendar month: only November counts: 2 days * 86400 s * 10/s = 1 728 000 requests, none
    # failed; the whole budget of 1728 requests is left and the period is 2/30 elapsed.
    c = slo_status(cal, backend, data_start, end)
    assert c.start_ms == ms("2026-11-01T00:00:00+00:00") and c.window_ms == 2 * DAY
    assert c.budget.valid == pytest.approx(1_728_000) and c.budget.allowed == pytest.approx(1728)
    assert c.budget.remaining_ratio == pytest.approx(1.0) and c.sli == pytest.approx(1.0)
    row = c.row()
    assert row["period_label"] == "November 2026 (UTC)"
    assert (row["period_start_ms"], row["period_end_ms"]) == (
        ms("2026-11-01T00:00:00+00:00"),
        ms("2026-12-01T00:00:00+00:00"),
    )
    assert row["period_elapsed"] == pytest.approx(2 / 30) and row["period_ms"] == 30 * DAY
    # At midnight on November 1st the window is October's (from the data's start, 2 days at 0.2 %).
    oct_end = ms("2026-11-01T00:00:00+00:00")
    o = slo_status(cal, backend, data_start, oct_end)
    assert o.row()["period_label"] == "October 2026 (UTC)" and o.period_elapsed == pytest.approx(1.0)
    assert o.budget.remaining_ratio == pytest.approx(-1.0) and o.state == "missed"
    assert evaluation_start(cal, end) == ms("2026-11-01T00:00:00+00:00")
    assert evaluation_start(rolling, end) == end - 30 * DAY


class ConstantRatio:
    """A backend answering every query with one constant error ratio at every step."""

    def __init__(self, value: float) -> None:
        self.value = value

    def query_range(self, expr: str, start: int, end: int, step: int) -> pd.DataFrame:
        ts = np.arange(start, end + 1, step, dtype=np.int64)
        return pd.DataFrame({"timestamp": ts, "value": np.full(ts.size, self.value)})


def test_raw_sli_status_spends_the_whole_months_budget_and_lasts_thirteen_more_days() -> None:
    # 0.2 % for November 1st and 2nd: 5.76 of 43.2 minutes spent (2/15), 37.44 left. At burn rate 2
    # (2.88 minutes a day) they last 13 days.
    slo = with_calendar(_slo(RawSLI(error_ratio="err")), CalendarWindow("month"))
    end = ms("2026-11-03T00:00:00+00:00")
    status = slo_status(slo, ConstantRatio(0.002), end - 40 * DAY, end)
    assert status.budget.allowed == pytest.approx(43.2)
    assert status.budget.remaining_ratio == pytest.approx(13 / 15)
    assert status.burn_rate_current == pytest.approx(2.0)
    assert status.time_to_exhaustion_ms == pytest.approx(13 * DAY)


def test_report_resets_the_budget_plot_and_judges_each_month() -> None:
    from sloanalysis.report.context import analyse_slo
    from sloanalysis.report.plots import burn_down_figure

    store = _counters("2026-10-30T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    slo = with_calendar(_slo(EVENTS), CalendarWindow("month"))
    start, end = ms("2026-10-30T00:00:00+00:00"), ms("2026-11-03T00:00:00+00:00")
    result = analyse_slo(slo, EmbeddedBackend(store), start, end, 5 * MIN)
    left = result.budget_remaining
    # October (0.2 % failing): twice the budget spent, -1; November (nothing failing): all left.
    assert left[pd.Timestamp("2026-10-31T12:00:00Z")] == pytest.approx(-1.0, abs=1e-3)
    assert left[pd.Timestamp("2026-11-02T00:00:00Z")] == pytest.approx(1.0)
    c = result.compliance
    assert c is not None and c.method == "periods"
    assert [(w.start_ms, w.met) for w in c.windows] == [
        (ms("2026-10-01T00:00:00+00:00"), False),
        (ms("2026-11-01T00:00:00+00:00"), True),
    ]
    fig = burn_down_figure([result], None)
    ax = fig.axes[0]
    assert "calendar month (UTC), now November 2026 (UTC)" in ax.get_title(loc="left")
    resets = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(resets) == 1  # the one boundary inside the range, November 1st
    assert [t.get_text() for t in ax.texts if t.get_text() == "November 2026"] == ["November 2026"]


OPENSLO_MONTH = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout
spec:
  service: shop
  indicator:
    metadata:
      name: checkout-requests
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: errors_total
        total:
          metricSource:
            type: Prometheus
            spec:
              query: requests_total
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar:
        startTime: "2026-01-01 00:00:00"
        timeZone: Europe/Berlin
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
"""


def test_cli_slo_names_the_calendar_period(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from reporting import write_store_run

    from sloanalysis.cli.main import main

    # Errors (0.2 %) until November 1st 00:00 Berlin = October 31st 23:00 UTC, none after.
    store = _counters("2026-10-30T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-10-31T23:00:00+00:00")
    run = write_store_run(store, tmp_path / "run")
    spec = tmp_path / "slo.yaml"
    spec.write_text(OPENSLO_MONTH, encoding="utf-8")
    assert main(["slo", str(spec), "--run", str(run), "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    # November in Berlin began at 23:00 UTC on October 31st: 49 hours before the data's end, of a
    # 30-day month (720 hours); 49 * 3600 * 10 = 1 764 000 requests, none failed.
    assert row["period_label"] == "November 2026 (Europe/Berlin)"
    assert row["window_ms"] == 49 * HOUR and row["period_elapsed"] == pytest.approx(49 / 720)
    assert row["budget_remaining_ratio"] == pytest.approx(1.0) and row["sli"] == pytest.approx(1.0)
    assert row["budget_allowed"] == pytest.approx(1764.0)
    assert main(["slo", str(spec), "--run", str(run)]) == 0
    assert "November 2026 (Europe/Berlin)" in capsys.readouterr().out
