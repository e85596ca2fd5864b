"""The report and ``sloanalysis slo`` for calendar SLOs and for specs in Sloth's or Pyrra's style
(issue [11]): compliance named by calendar periods, the time to exhaustion capped where the
budget resets, and burn-rate windows and factors of the spec's own tool.

Every expected figure is worked by hand in the comments (99.9 % objective: a budget of 0.1 %).
"""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from reporting import write_store_run

from sloanalysis.cli.main import main
from sloanalysis.query import EmbeddedBackend
from sloanalysis.report.compliance import describe_windows, window_label
from sloanalysis.report.context import analyse_slo, rule_windows_ms
from sloanalysis.report.gates import slo_checks
from sloanalysis.report.model import SLOResult
from sloanalysis.report.plots import alert_thresholds, burn_down_figure, burn_rate_figure
from sloanalysis.report.wording import time_left
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.formats import parse_slos
from sloanalysis.slo.spec import SLO, Alerting, EventsSLI, RawSLI
from sloanalysis.slo.status import slo_status
from sloanalysis.slo.workbook import alert_table
from sloanalysis.store import SeriesStore

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR

EVENTS = EventsSLI(total="sum(rate(requests_total[{{.window}}]))", bad="sum(rate(errors_total[{{.window}}]))")


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _slo(sli: EventsSLI | RawSLI, cal: CalendarWindow | None = None) -> SLO:
    return SLO("checkout", "shop", 0.999, 30 * DAY, sli, Alerting(name="Checkout"), calendar=cal)


def _counters(start: str, end: str, failing_until: str) -> SeriesStore:
    """10 requests a second, scraped every minute; 0.2 % of them fail until ``failing_until``."""
    ts = np.arange(ms(start), ms(end) + 1, MIN, dtype=np.int64)
    seconds = (ts - ts[0]) / 1000.0
    errors = 0.02 * np.minimum(seconds, (ms(failing_until) - ts[0]) / 1000.0)
    store = SeriesStore()
    store.add({"__name__": "requests_total"}, ts, 10.0 * seconds)
    store.add({"__name__": "errors_total"}, ts, errors)
    return store


def _analyse(cal: CalendarWindow, start: str, end: str, failing_until: str) -> SLOResult:
    store = _counters(start, end, failing_until)
    return analyse_slo(_slo(EVENTS, cal), EmbeddedBackend(store), ms(start), ms(end), HOUR)


# -- compliance by calendar period ---------------------------------------------------------------


def test_months_are_named_and_judged_as_periods() -> None:
    # October (0.2 % failing: twice the budget) is missed; November (nothing failing) is met, and
    # goes on after the range's end (November 3rd): "so far".
    result = _analyse(
        CalendarWindow("month"),
        "2026-10-01T00:00:00+00:00",
        "2026-11-03T00:00:00+00:00",
        "2026-11-01T00:00:00+00:00",
    )
    c = result.compliance
    assert c is not None
    assert describe_windows(c) == "October 2026, November 2026 (so far)"
    assert [(window_label(c, w), w.met) for w in c.windows] == [
        ("October 2026", False),
        ("November 2026 (so far)", True),
    ]
    assert c.worst is not None and window_label(c, c.worst) == "October 2026"
    assert c.as_dict()["assessed"] == "October 2026, November 2026 (so far)"
    (check,) = [k for k in slo_checks([result.row]) if "periods" in k.message]
    assert check.status == "failed"
    assert "missed in 1 of 2 calendar periods (October 2026, November 2026 (so far))" in check.message
    assert "worst October 2026" in check.message
    assert "periods of 30 days" not in check.message
    title = burn_down_figure([result], None).axes[0].get_title(loc="left")
    assert "missed at the end" not in title and "missed in 1 of 2 calendar periods" in title


def test_a_range_starting_inside_a_month_says_from_when() -> None:
    result = _analyse(
        CalendarWindow("month"),
        "2026-10-30T00:00:00+00:00",
        "2026-11-03T00:00:00+00:00",
        "2026-11-01T00:00:00+00:00",
    )
    assert result.compliance is not None
    assert describe_windows(result.compliance) == (
        "October 2026 (from 2026-10-30 00:00 UTC), November 2026 (so far)"
    )


def test_a_zone_is_named_and_many_periods_are_summed_up() -> None:
    # Days in Berlin: midnight there is 23:00 UTC (CET, after October 25th), so the range
    # 2026-10-28 00:00 to 2026-11-02 00:00 UTC (01:00 in Berlin at both ends) touches the Berlin
    # days October 28th (from an hour in) to November 2nd (its first hour only): 6 days.
    result = _analyse(
        CalendarWindow("day", time_zone="Europe/Berlin"),
        "2026-10-28T00:00:00+00:00",
        "2026-11-02T00:00:00+00:00",
        "2026-10-29T00:00:00+00:00",
    )
    assert result.compliance is not None
    assert describe_windows(result.compliance) == (
        "6 calendar periods of day, 2026-10-28 (from 2026-10-28 00:00 UTC) to 2026-11-02 (so far),"
        " Europe/Berlin time"
    )


# -- time to exhaustion, capped where the budget resets ------------------------------------------


class ConstantRatio:
    """A backend answering every query with one constant error ratio at every step."""

    def __init__(self, value: float) -> None:
        self.value = value

    def query_range(self, expr: str, start: int, end: int, step: int) -> pd.DataFrame:
        ts = np.arange(start, end + 1, step, dtype=np.int64)
        return pd.DataFrame({"timestamp": ts, "value": np.full(ts.size, self.value)})


def test_exhaustion_after_the_period_ends_is_not_before_the_period_ends() -> None:
    # 0.05 % failing (burn rate 0.5) for November 1st to 25th: 0.0005 * 24 days * 1440 = 17.28 of
    # the month's 43.2 minutes spent, 0.6 left; at burn 0.5 they would last 0.6 * 30 d / 0.5 =
    # 36 days, but November ends in 6: the budget resets before it can run out.
    slo = _slo(RawSLI(error_ratio="err"), CalendarWindow("month"))
    end = ms("2026-11-25T00:00:00+00:00")
    status = slo_status(slo, ConstantRatio(0.0005), end - 40 * DAY, end)
    assert status.budget.remaining_ratio == pytest.approx(0.6)
    assert status.burn_rate_current == pytest.approx(0.5)
    assert status.time_to_exhaustion_ms == pytest.approx(6 * DAY)
    row = status.row()
    assert row["period_left_ms"] == 6 * DAY
    assert time_left(row) == "not before the period ends (in 6d)"


def test_exhaustion_within_the_period_and_rolling_slos_keep_their_figure() -> None:
    # 0.2 % (burn 2) for November 1st and 2nd: 5.76 of 43.2 minutes spent (2/15), 13/15 left,
    # lasting 13/15 * 30 d / 2 = 13 days: before November ends (28 days left).
    cal = _slo(RawSLI(error_ratio="err"), CalendarWindow("month"))
    end = ms("2026-11-03T00:00:00+00:00")
    status = slo_status(cal, ConstantRatio(0.002), end - 40 * DAY, end)
    assert status.time_to_exhaustion_ms == pytest.approx(13 * DAY)
    assert time_left(status.row()) == "13d"
    # Rolling 30 days at burn 0.5 throughout: half the budget of the trailing 30 days is spent,
    # 0.5 left, lasting 0.5 * 30 d / 0.5 = 30 days: no period end to cap it.
    rolling = slo_status(_slo(RawSLI(error_ratio="err")), ConstantRatio(0.0005), end - 40 * DAY, end)
    assert rolling.time_to_exhaustion_ms == pytest.approx(30 * DAY)
    assert "period_left_ms" not in rolling.row() and time_left(rolling.row()) == "30d"
    assert time_left({"time_to_exhaustion_ms": None}) == "no data"


OPENSLO_MONTH = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout}
spec:
  service: shop
  indicator:
    spec:
      ratioMetric:
        bad: {metricSource: {type: Prometheus, spec: {query: errors_total}}}
        total: {metricSource: {type: Prometheus, spec: {query: requests_total}}}
  timeWindow:
    - duration: 1M
      isRolling: false
      calendar: {startTime: "2026-01-01 00:00:00", timeZone: UTC}
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""


def test_cli_slo_says_not_before_the_period_ends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing fails in November: the burn rate is 0, the budget outlasts the month, which ends
    # 28 days after the data's end (November 3rd 00:00 UTC).
    store = _counters("2026-10-30T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-10-31T00:00:00+00:00")
    run = write_store_run(store, tmp_path / "run")
    spec = tmp_path / "slo.yaml"
    spec.write_text(OPENSLO_MONTH, encoding="utf-8")
    assert main(["slo", str(spec), "--run", str(run), "--step", "5m", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["period_left_ms"] == 28 * DAY and row["time_to_exhaustion_ms"] == 28 * DAY
    assert main(["slo", str(spec), "--run", str(run), "--step", "5m"]) == 0
    assert "not before the period ends (in 28d)" in capsys.readouterr().out


# -- burn-rate windows of the spec's own style -----------------------------------------------------

SLOTH_28D = textwrap.dedent(
    """\
    version: prometheus/v1
    service: shop
    slos:
      - name: checkout
        objective: 99.9
        sli:
          events:
            error_query: sum(rate(errors_total[{{.window}}]))
            total_query: sum(rate(requests_total[{{.window}}]))
        alerting: {name: Checkout}
    """
)


def test_report_of_a_sloth_spec_uses_sloths_windows_and_factors() -> None:
    # Sloth keeps 1h/5m, 6h/30m, 1d/2h, 3d/6h and scales the factors to 28 days: budget shares
    # 2 %, 5 %, 10 %, 10 % of 28 days spent in the long window: 0.02 * 672 h / 1 h = 13.44,
    # 0.05 * 672 / 6 = 5.6, 0.1 * 28 / 1 = 2.8, 0.1 * 28 / 3 = 0.9333.
    (slo,) = parse_slos(SLOTH_28D, default_period_ms=28 * DAY)
    pairs = [(w.severity, w.long_ms, w.short_ms, round(w.factor, 4)) for w in alert_thresholds(slo)]
    assert pairs == [
        ("page", HOUR, 5 * MIN, 13.44),
        ("page", 6 * HOUR, 30 * MIN, 5.6),
        ("ticket", DAY, 2 * HOUR, 2.8),
        ("ticket", 3 * DAY, 6 * HOUR, 0.9333),
    ]
    assert rule_windows_ms(slo) == [HOUR, 6 * HOUR, DAY, 3 * DAY]
    store = _counters("2026-10-28T00:00:00+00:00", "2026-11-03T00:00:00+00:00", "2026-10-29T00:00:00+00:00")
    start, end = ms("2026-10-28T00:00:00+00:00"), ms("2026-11-03T00:00:00+00:00")
    result = analyse_slo(slo, EmbeddedBackend(store), start, end, 5 * MIN)
    assert list(result.burn_rates.columns) == ["1h", "6h", "1d", "3d"]
    labels = burn_rate_figure([result], None).axes[0].get_legend_handles_labels()[1]
    assert "page 1h/5m: 13.44× (2% of the budget in 1h)" in labels


def test_alert_table_in_sloth_and_pyrra_style() -> None:
    # Sloth, 28 days, error rate 1.38 % (burn 13.8): the 1h/5m pair at 13.44 pages after
    # 1 h * 13.44 / 13.8 = 58.43 minutes (the "59 minutes").
    from sloanalysis.slo.rulegen import style_windows

    rows = alert_table(0.999, 28 * DAY, error_rates=(0.0138,), windows=style_windows(28 * DAY, "sloth"))
    (mwmb,) = [r for r in rows if r["approach"] == 6 and r["severity"] == "page"]
    assert mwmb["rules"] == "1h/5m > 13.44x; 6h/30m > 5.6x"
    assert mwmb["detection_ms"] == pytest.approx(HOUR * 13.44 / 13.8)
    # Pyrra, 28 days, error rate 2 % (burn 20): 1h/5m at 14 for 2m: 1 h * 14 / 20 + 2 m = 44 m.
    rows = alert_table(0.999, 28 * DAY, error_rates=(0.02,), windows=style_windows(28 * DAY, "pyrra"))
    (mwmb,) = [r for r in rows if r["approach"] == 6 and r["severity"] == "page"]
    assert mwmb["rules"] == "1h/5m > 14x for 2m; 6h/30m > 7x for 15m"
    assert mwmb["detection_ms"] == pytest.approx(44 * MIN)


def test_cli_alert_table_style(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["alert-table", "--objective", "0.999", "--period", "28d", "--error-rates", "0.0138"]
    assert main([*args, "--style", "sloth", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["rules"] for r in rows if r["approach"] == 6} == {
        "1h/5m > 13.44x; 6h/30m > 5.6x",
        "1d/2h > 2.8x; 3d/6h > 0.933333x",
    }
