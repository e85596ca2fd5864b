"""OpenSLO's published examples (../shared/slo-formats/openslo-examples) with their placeholder
metric sources (``type: Any``, ``query: Any``) replaced, in a copy, by Prometheus ones: each then
loads with the meaning OpenSLO v1 gives it (issue [11]).

What OpenSLO says, by hand, per example:

- ``budgeting-method/occurences-slo.yaml``: a ``thresholdMetric`` (a latency) with ``op: lt``,
  ``value: 500``, ``Occurrences``, target 0.99 over a rolling 2w: each evaluation is one
  occurrence, good when the query is under 500.
- ``budgeting-method/ratio-timeslices.yaml``: ``ratioMetric`` good/total, ``RatioTimeslices``
  with ``timeSliceWindow: 1m``, target 0.99, rolling 2w: the SLI is the average of the one-minute
  slices' success ratios.
- ``treat-low-traffic-as-equally-important/timeslices-slo.yaml``: ``Timeslices``, target 0.9995,
  a slice good when its ratio reaches ``timeSliceTarget`` 0.95 over ``timeSliceWindow`` 1m; a
  calendar week (``isRolling: false``, ``duration: 1w``) from 2022-01-01 12:00 (a Saturday) in
  America/New_York: weeks run Saturday noon to Saturday noon, New York time, so the week around
  the end of daylight saving time (Sunday 2026-11-01) runs from 2026-10-31 16:00 UTC (EDT,
  UTC-4) to 2026-11-07 17:00 UTC (EST, UTC-5): 7 days and an hour.
- ``budgeting-method/timeslices-slo.yaml``: ``duration: 1m`` with ``isRolling: false``. In OpenSLO
  ``m`` is a minute (a month is ``M``): no calendar unit, so rejected in one line naming the
  duration (the example's comment says "1 month"; the spec's unit is what counts).
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from sloanalysis.errors import UserError
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.formats import load_slos
from sloanalysis.slo.rulegen import dump_rules, generate_rules
from sloanalysis.slo.spec import TimesliceSLI

SHARED = Path(__file__).resolve().parents[2] / "shared" / "slo-formats" / "openslo-examples"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/slo-formats not present")
D, MIN = 86_400_000, 60_000

QUERIES = {
    "good": 'http_requests_total{handler="/",code=~"2.."}',
    "total": 'http_requests_total{handler="/"}',
    "thresholdMetric": (
        "histogram_quantile(0.99, sum by (le) (rate(search_duration_milliseconds_bucket[5m])))"
    ),
}


def _with_prometheus_sources(node: Any) -> Any:
    """``node`` with every placeholder metric source (``type: Any``) replaced by a Prometheus one
    whose query suits the field holding it (``good``, ``total`` or ``thresholdMetric``)."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            source = v.get("metricSource") if isinstance(v, dict) else None
            if isinstance(source, dict) and source.get("type") == "Any":
                v = {**v, "metricSource": {"type": "Prometheus", "spec": {"query": QUERIES[k]}}}
            out[k] = _with_prometheus_sources(v)
        return out
    if isinstance(node, list):
        return [_with_prometheus_sources(v) for v in node]
    return node


def _load(tmp_path: Path, relative: str) -> list[Any]:
    source = SHARED / relative
    docs = list(yaml.safe_load_all(source.read_text()))
    fixed = [_with_prometheus_sources(d) for d in docs]
    assert "Any" not in yaml.safe_dump_all(fixed)  # no placeholder left
    copy = tmp_path / source.name
    copy.write_text(yaml.safe_dump_all(fixed, sort_keys=False))
    return load_slos(copy)


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_occurrences_threshold_metric_over_a_rolling_fortnight(tmp_path: Path) -> None:
    (slo,) = _load(tmp_path, "budgeting-method/occurences-slo.yaml")
    assert (slo.name, slo.service, slo.objective) == ("search-slo", "web-shop", 0.99)
    assert slo.period_ms == 14 * D and slo.calendar is None
    assert isinstance(slo.sli, TimesliceSLI)
    assert slo.sli.indicator == f"({QUERIES['thresholdMetric']}) < bool 500.0"
    assert slo.sli.slice_ms == MIN  # one occurrence per evaluation


def test_ratio_timeslices_average_one_minute_success_ratios(tmp_path: Path) -> None:
    (slo,) = _load(tmp_path, "budgeting-method/ratio-timeslices.yaml")
    assert (slo.name, slo.objective, slo.period_ms, slo.calendar) == ("main-page", 0.99, 14 * D, None)
    assert isinstance(slo.sli, TimesliceSLI) and slo.sli.slice_ms == MIN
    # worth the slice's success ratio (no timeSliceTarget comparison), over one-minute rates
    assert ">= bool" not in slo.sli.indicator
    assert 'rate(http_requests_total{handler="/",code=~"2.."}[1m])' in slo.sli.indicator
    assert 'rate(http_requests_total{handler="/"}[1m])' in slo.sli.indicator


def test_timeslices_over_a_calendar_week_in_new_york(tmp_path: Path) -> None:
    (slo,) = _load(tmp_path, "treat-low-traffic-as-equally-important/timeslices-slo.yaml")
    assert (slo.name, slo.service, slo.objective) == ("service-availability", "web-availability", 0.9995)
    assert slo.calendar == CalendarWindow("week", 1, "America/New_York", datetime(2022, 1, 1, 12, 0))
    assert slo.period_ms == 7 * D  # the nominal week of the burn-rate windows
    start, end = slo.calendar.period_containing(_ms("2026-11-03T00:00:00+00:00"))
    assert (start, end) == (_ms("2026-10-31T16:00:00+00:00"), _ms("2026-11-07T17:00:00+00:00"))
    assert isinstance(slo.sli, TimesliceSLI) and slo.sli.slice_ms == MIN
    assert ">= bool 0.95" in slo.sli.indicator  # a slice is good at a 95 % ratio or more
    assert "[1m]" in slo.sli.indicator


def test_a_one_minute_calendar_window_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(UserError) as exc:
        _load(tmp_path, "budgeting-method/timeslices-slo.yaml")
    message = str(exc.value)
    assert "\n" not in message
    assert "timeWindow" in message and "duration" in message and "'1m'" in message


@pytest.mark.parametrize(
    "relative",
    [
        "budgeting-method/occurences-slo.yaml",
        "budgeting-method/ratio-timeslices.yaml",
        "treat-low-traffic-as-equally-important/timeslices-slo.yaml",
    ],
)
def test_rules_of_the_fixed_examples_pass_promtool(tmp_path: Path, relative: str) -> None:
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).is_file():
        pytest.skip("promtool not installed")
    out = tmp_path / "rules.yml"
    out.write_text(dump_rules(generate_rules(_load(tmp_path, relative))))
    result = subprocess.run(
        [promtool, "check", "rules", str(out)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
