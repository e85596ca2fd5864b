"""Compliance over the whole range (issue [8], deliverable 4), worked by hand.

The store (:func:`reporting.week_store`): one ``web`` job, counters sampled every 15 s at
hh:mm:05/:20/:35/:50 for seven days from ``T0``: 25 requests per interval (100 a minute), none
bad, except on day 3 (index 2) from 06:00 to 12:00, where 5 % of them are ``code="500"`` (the
intervals whose *end* sample falls in that span). The SLO: 99 % over 1 day.

By hand:

- the day-3 period ``(T0 + 2d, T0 + 3d]`` read with ``increase(x[1d])`` at its end: the first and
  last samples are 00:00:05 and 23:59:50, so 5,759 intervals of 25 requests, of which the 1,440
  intervals of the bad six hours carry 1.25 bad requests each: error ratio 1,800 / 143,975 =
  72 / 5,759, SLI ``1 - 72/5759`` (98.75 %), budget left ``1 - (72/5759) / 0.01`` (-25.02 %). Every
  other day is clean (100 % left), the last one included: met at the end of the range.
- the per-minute frame counts the three intervals inside each minute, so the 360 bad minutes hold
  5 % errors: a trailing day that holds all of them has an error ratio of 360 x 5 % / 1,440 =
  1.25 %, i.e. 25 % of the budget overspent (-25 %).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from reporting import DAY, DAYS, HOUR, MIN, T0, week_store, write_store_run, write_web_spec

from sloanalysis.cli.main import main
from sloanalysis.query import EmbeddedBackend
from sloanalysis.report.compliance import complete_periods, compliance
from sloanalysis.report.context import analyse_slo
from sloanalysis.report.gates import slo_checks
from sloanalysis.slo.budget import measure
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.slo.status import slo_status
from sloanalysis.store import SeriesStore

DAY3_LEFT = 1 - (72 / 5759) / 0.01  # the day-3 period, by hand (module docstring)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_web_spec(tmp_path_factory.mktemp("spec"))


@pytest.fixture(scope="module")
def store() -> SeriesStore:
    return week_store()


def _slo(spec_file: Path):  # type: ignore[no-untyped-def]
    return load_slo_files([str(spec_file)], 30 * DAY)[0]


def test_complete_periods_count_back_from_the_end() -> None:
    assert complete_periods(0, 7 * DAY, DAY) == [(k * DAY, (k + 1) * DAY) for k in range(7)]
    # 2.5 days: two whole days back from the end, the first half day is no complete period.
    assert complete_periods(0, 5 * DAY // 2, DAY) == [(DAY // 2, 3 * DAY // 2), (3 * DAY // 2, 5 * DAY // 2)]
    assert complete_periods(0, DAY - 1, DAY) == []


def test_seven_days_every_period_and_only_day_three_is_missed(spec_file: Path, store: SeriesStore) -> None:
    slo, backend = _slo(spec_file), EmbeddedBackend(store)
    end = T0 + DAYS * DAY
    result = analyse_slo(slo, backend, T0, end, MIN)
    c = result.compliance
    assert c is not None and c.method == "periods"
    assert [(w.start_ms, w.end_ms) for w in c.windows] == [
        (T0 + k * DAY, T0 + (k + 1) * DAY) for k in range(7)
    ]
    assert [w.met for w in c.windows] == [True, True, False, True, True, True, True]
    day3 = c.windows[2]
    assert day3.sli == pytest.approx(1 - 72 / 5759, rel=1e-12)
    assert day3.budget_remaining_ratio == pytest.approx(DAY3_LEFT, rel=1e-9)
    assert [w.budget_remaining_ratio for i, w in enumerate(c.windows) if i != 2] == pytest.approx([1.0] * 6)
    assert c.worst == day3
    # The table's row (the end) says met; the last period is that very window.
    assert result.status.state == "met" and c.windows[-1].sli == pytest.approx(result.status.sli, abs=0)
    # The burn-down's rolling budget holds the table's worst number: the per-minute frame gives -25 %.
    assert float(result.budget_remaining.min()) == pytest.approx(-0.25, rel=1e-9)


def test_the_default_gate_fails_a_miss_mid_range_and_gate_at_end_passes(
    spec_file: Path, store: SeriesStore
) -> None:
    slo, backend = _slo(spec_file), EmbeddedBackend(store)
    row = analyse_slo(slo, backend, T0, T0 + DAYS * DAY, MIN).row
    [ranged] = slo_checks([row])
    assert ranged.status == "failed"
    assert "missed in 1 of 7 periods of 1d" in ranged.message
    assert "2024-05-08 00:00 UTC to 2024-05-09 00:00 UTC" in ranged.message
    assert "-25.02%" in ranged.message
    [at_end] = slo_checks([row], gate_at="end")
    assert at_end.status == "passed" and "met" in at_end.message


def test_a_range_shorter_than_two_periods_takes_the_worst_rolling_window(
    spec_file: Path, store: SeriesStore
) -> None:
    # (T0 + 2d, T0 + 3.6d]: 1.6 days. The trailing days ending from T0 + 3d (the first that lies
    # inside the range) to T0 + 3d 06:00 hold all 360 bad minutes: -25 %. The last one, from day 3
    # 14:24, holds none: met at the end.
    slo, backend = _slo(spec_file), EmbeddedBackend(store)
    start, end = T0 + 2 * DAY, T0 + 2 * DAY + 36 * HOUR + 144 * MIN
    status = slo_status(slo, backend, start, end, MIN)
    frame = measure(slo, backend, start, end, MIN)
    c = compliance(status, frame, backend, start)
    assert c.method == "rolling"
    worst = c.worst
    assert worst is not None and worst.met is False
    assert worst.budget_remaining_ratio == pytest.approx(-0.25, rel=1e-9)
    assert T0 + 3 * DAY <= worst.end_ms <= T0 + 3 * DAY + 6 * HOUR
    assert worst.end_ms - worst.start_ms == DAY
    assert status.state == "met"
    row = {**status.row(), "compliance": c.as_dict()}
    assert [ch.status for ch in slo_checks([row])] == ["failed"]
    assert "over a rolling 1d window" in slo_checks([row])[0].message
    assert [ch.status for ch in slo_checks([row], gate_at="end")] == ["passed"]


def test_a_range_within_one_period_is_judged_on_the_table_s_window(
    spec_file: Path, store: SeriesStore
) -> None:
    slo, backend = _slo(spec_file), EmbeddedBackend(store)
    start, end = T0 + 2 * DAY, T0 + 2 * DAY + 18 * HOUR  # holds the bad hours; shorter than a day
    status = slo_status(slo, backend, start, end, MIN)
    c = compliance(status, measure(slo, backend, start, end, MIN), backend, start)
    assert c.method == "rolling" and len(c.windows) == 1
    assert c.windows[0].sli == status.sli and c.windows[0].met is False


def test_report_exit_status_with_and_without_gate_at_end(
    spec_file: Path, store: SeriesStore, tmp_path: Path
) -> None:
    run = write_store_run(store, tmp_path / "week")
    out = tmp_path / "r"
    argv = ["report", "--run", str(run), "--slos", str(spec_file), "--notebook", "slo_report", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 1
    failures = [f.get("message", "") for f in ET.parse(out / "junit.xml").getroot().iter("failure")]
    assert len(failures) == 1 and "web-availability missed in 1 of 7 periods" in failures[0]
    summary_md = (out / "summary.md").read_text(encoding="utf-8")
    assert (
        "### Compliance over the range" in summary_md
        and "| web-availability | 7 periods of 1d | 1 of 7 |" in summary_md
    )
    html = (out / "slo_report.html").read_text(encoding="utf-8")
    assert "Compliance over the range" in html and "SLO report: web" in html
    assert main([*argv, "--out", str(out), "--gate-at", "end"]) == 0
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["gates"]["gate_at"] == "end"
