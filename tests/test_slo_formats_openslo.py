"""OpenSLO v1 calendar windows, RatioTimeslices, the published examples, and bad input in any
format (one clear line, exit 2)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sloanalysis.cli.main import main
from sloanalysis.errors import UserError
from sloanalysis.slo.formats import load_slos, parse_slos
from sloanalysis.slo.rulegen import generate_rules
from sloanalysis.slo.spec import TimesliceSLI

SHARED = Path(__file__).resolve().parents[2] / "shared" / "slo-formats" / "openslo-examples"
EXAMPLES = sorted(SHARED.rglob("*.yaml")) if SHARED.is_dir() else []
D = 86_400_000

_SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {{name: a}}
spec:
  service: s
  budgetingMethod: {method}
  timeWindow: [{window}]
  indicator:
    spec:
      ratioMetric:
        good: {{metricSource: {{type: Prometheus, spec: {{query: 'ok_total'}}}}}}
        total: {{metricSource: {{type: Prometheus, spec: {{query: 'all_total'}}}}}}
  objectives: [{{target: 0.99{extra}}}]
"""


def _openslo(
    method: str = "Occurrences", window: str = "{duration: 28d, isRolling: true}", extra: str = ""
) -> str:
    return _SLO.format(method=method, window=window, extra=extra)


@pytest.mark.skipif(not EXAMPLES, reason="../shared/slo-formats not present")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_published_examples_are_rejected_naming_their_placeholder_source(path: Path) -> None:
    # Their metric sources are ``type: Any`` placeholders: never silently read as Prometheus.
    with pytest.raises(UserError) as exc:
        load_slos(path)
    assert "\n" not in str(exc.value)
    assert "metricSource.type: only Prometheus metric sources are supported, got 'Any'" in str(exc.value)


def test_calendar_month_window_in_a_time_zone() -> None:
    window = (
        "{duration: 1M, isRolling: false,"
        " calendar: {startTime: '2024-01-01 00:00:00', timeZone: Europe/Berlin}}"
    )
    (slo,) = parse_slos(_openslo(window=window))
    assert slo.calendar is not None
    assert (slo.calendar.unit, slo.calendar.count, slo.calendar.time_zone) == ("month", 1, "Europe/Berlin")
    assert slo.calendar.start == datetime(2024, 1, 1)
    assert slo.period_ms == 30 * D  # nominal month for the burn-rate windows


def test_rolling_window_has_no_calendar() -> None:
    (slo,) = parse_slos(_openslo())
    assert slo.calendar is None and slo.period_ms == 28 * D


def test_own_format_calendar_window() -> None:
    (slo,) = parse_slos(
        "version: sloanalysis/v1\nservice: s\nslos:\n  - name: a\n    objective: 0.99\n"
        "    window: {calendar: week, time_zone: Europe/Berlin}\n"
        "    sli: {events: {good: ok_total, total: all_total}}\n"
    )
    assert slo.calendar is not None and slo.calendar.unit == "week"
    assert slo.period_ms == 7 * D


def test_ratio_timeslices_average_the_slices_success_ratios() -> None:
    (slo,) = parse_slos(_openslo("RatioTimeslices", extra=", timeSliceWindow: 1m"))
    assert isinstance(slo.sli, TimesliceSLI)
    assert slo.sli.slice_ms == 60_000
    assert "sum(rate(ok_total[1m]))" in slo.sli.indicator and ">=" not in slo.sli.indicator


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _openslo(window="{duration: 1m, isRolling: true}"),
            "period 1m is shorter than the shortest alert window 5m",
        ),
        (
            _openslo(window="{duration: 1m, isRolling: false, calendar: {timeZone: UTC}}"),
            "timeWindow[0].duration: calendar window duration '1m'",
        ),
        (
            _openslo(window="{duration: 1M, calendar: {timeZone: UTC}}"),
            "calendar: a calendar is only read with isRolling: false",
        ),
        (
            _openslo(window="{duration: 1M, isRolling: false, calendar: {timeZone: Mars/Base}}"),
            "unknown time zone 'Mars/Base'",
        ),
        (_openslo("RatioTimeslices"), "timeSliceWindow: required field is missing"),
        (
            "apiVersion: sloth.slok.dev/v2\nkind: X\n",
            "unknown SLO format (apiVersion: 'sloth.slok.dev/v2', kind: 'X'); supported:",
        ),
        (
            "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: a}\n"
            "spec: {target: '99', window: 1m,"
            " indicator: {ratio: {errors: {metric: e_total}, total: {metric: t_total}}}}\n",
            "period 1m is shorter than the shortest alert window 5m",
        ),
    ],
)
def test_bad_input_is_one_line(text: str, message: str) -> None:
    with pytest.raises(UserError) as exc:
        parse_slos(text, "f.yaml")
    assert "\n" not in str(exc.value)
    assert message in str(exc.value)


def test_unknown_format_names_every_supported_one() -> None:
    with pytest.raises(UserError) as exc:
        parse_slos("apiVersion: nope/v1\nkind: SLO\n", "f.yaml")
    for name in (
        "sloanalysis/v1",
        "prometheus/v1",
        "sloth.slok.dev/v1",
        "openslo/v1alpha",
        "pyrra.dev/v1alpha1",
        "openslo/v1",
    ):
        assert name in str(exc.value)


def test_sloth_style_has_no_window_for_an_unknown_period() -> None:
    (slo,) = parse_slos(_openslo(window="{duration: 7d}"))
    with pytest.raises(UserError, match="Sloth has no alert windows for the period 1w"):
        generate_rules([slo], style="sloth")


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("apiVersion: x/v1\nkind: Y\n", []),
        (_openslo(window="{duration: 1m}"), []),
        (_openslo(window="{duration: 7d}"), ["--style", "sloth"]),
        (
            "version: prometheus/v1\nservice: s\nslo_plugins: {chain: [{id: x}]}\nslos: []\n",
            [],
        ),
    ],
)
def test_cli_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, args: list[str]
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(text)
    assert main(["generate-rules", str(spec), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
