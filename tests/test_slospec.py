"""Loading and validating SLO files in the three formats."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import pytest

from sloanalysis.errors import UserError
from sloanalysis.slo.formats import load_slo_files, load_slos, parse_slos
from sloanalysis.slo.spec import EventsSLI, LatencySLI, RawSLI, TimesliceSLI

ROOT = Path(__file__).resolve().parents[1]
DAY = 86_400_000


def test_shipped_tron_slos_match_the_seed_table() -> None:
    slos = {s.name: s for s in load_slos(ROOT / "slos" / "tron-payment.yaml")}
    assert set(slos) == {
        "availability",
        "payout-success",
        "payout-latency",
        "api-latency",
        "circuit-breaker-uptime",
    }
    expected = {
        "availability": (0.999, 30 * DAY),
        "payout-success": (0.995, DAY),
        "payout-latency": (0.95, DAY),
        "api-latency": (0.95, DAY),
        "circuit-breaker-uptime": (0.999, 30 * DAY),
    }
    for name, (objective, period) in expected.items():
        assert (slos[name].objective, slos[name].period_ms) == (objective, period)
    # Alert thresholds of the seed: < 99.5 %, < 99.0 %, P95 > 60 s, P95 > 5 s, < 99.0 %.
    t = {name: slos[name].alerting.threshold for name in slos}
    assert (t["availability"].kind, t["availability"].value) == ("sli_below", 0.995)
    assert (t["payout-success"].kind, t["payout-success"].value) == ("sli_below", 0.99)
    assert (t["payout-latency"].kind, t["payout-latency"].value) == ("latency_above", 60.0)
    assert (t["api-latency"].kind, t["api-latency"].value) == ("latency_above", 5.0)
    assert (t["circuit-breaker-uptime"].kind, t["circuit-breaker-uptime"].value) == ("sli_below", 0.99)
    assert isinstance(slos["availability"].sli, EventsSLI)
    assert isinstance(slos["circuit-breaker-uptime"].sli, TimesliceSLI)
    assert slos["circuit-breaker-uptime"].budget_unit == "minutes"
    api = slos["api-latency"].sli
    assert isinstance(api, LatencySLI) and (api.threshold, api.quantile) == (2.0, 0.95)


def test_payout_success_leaves_rejections_out() -> None:
    slo = next(s for s in load_slos(ROOT / "slos" / "tron-payment.yaml") if s.name == "payout-success")
    total = slo.sli.total_expr(300_000)  # type: ignore[union-attr]
    assert "rejected" not in total and 'status=~"confirmed|failed"' in total


def _le_regex(expr: str) -> str:
    m = re.search(r'le=~"((?:[^"\\]|\\.)*)"', expr)
    assert m, expr
    return m.group(1).replace("\\\\", "\\")  # the PromQL string literal's escaping


def test_latency_bucket_matches_both_float_spellings() -> None:
    sli = LatencySLI("slo_request_duration_seconds", 2.0, 0.95, 'job="tron-payment-api"')
    expr = sli.good_expr(300_000)
    promql_parser.parse(expr)
    regex = _le_regex(expr)
    assert re.fullmatch(regex, "2") and re.fullmatch(regex, "2.0")
    assert not re.fullmatch(regex, "20") and not re.fullmatch(regex, "2x0")
    assert "slo_request_duration_seconds_count" in sli.total_expr(300_000)


def test_own_format_selector_becomes_a_rate_template() -> None:
    text = """
version: sloanalysis/v1
service: svc
slos:
  - name: a
    objective: 0.99
    period: 7d
    sli:
      events:
        bad: sum by (job) (errors_total{job="x"})
        total: requests_total{job="x"}
"""
    (slo,) = parse_slos(text)
    assert slo.period_ms == 7 * DAY
    sli = slo.sli
    assert isinstance(sli, EventsSLI)
    assert sli.total_expr(3_600_000) == 'sum(rate(requests_total{job="x"}[1h]))'
    assert sli.bad_expr(60_000) == 'sum by (job) (rate(errors_total{job="x"}[1m]))'
    promql_parser.parse(slo.error_ratio_expr(60_000))


def test_sloth_example() -> None:
    slos = load_slos(ROOT / "slos" / "examples" / "sloth.yaml")
    assert [s.name for s in slos] == ["requests-availability", "payouts-failed"]
    a, b = slos
    assert a.objective == pytest.approx(0.999) and a.period_ms == 30 * DAY
    assert isinstance(a.sli, EventsSLI) and a.sli.bad is not None
    assert a.alerting.name == "TronApiHighErrorRate" and a.alerting.page_labels == {"severity": "critical"}
    assert b.alerting.ticket is False and b.alerting.page is True
    assert b.labels == {"team": "payments"}
    assert (
        load_slos(ROOT / "slos" / "examples" / "sloth.yaml", default_period_ms=7 * DAY)[0].period_ms
        == 7 * DAY
    )


def test_sloth_raw_sli() -> None:
    text = """
version: prometheus/v1
service: s
slos:
  - name: r
    objective: 99
    sli:
      raw:
        error_ratio_query: max_over_time(my_error_ratio[{{.window}}])
    alerting:
      name: R
"""
    (slo,) = parse_slos(text)
    assert isinstance(slo.sli, RawSLI)
    assert slo.error_ratio_expr(3_600_000) == "max_over_time(my_error_ratio[1h])"


def test_openslo_example_with_indicator_ref_and_timeslices() -> None:
    slos = {s.name: s for s in load_slos(ROOT / "slos" / "examples" / "openslo.yaml")}
    assert set(slos) == {"api-latency", "payout-minutes", "pending-payouts"}
    api = slos["api-latency"]
    assert (api.objective, api.period_ms, api.service) == (0.95, DAY, "tron-payment-api")
    assert isinstance(api.sli, EventsSLI)
    assert api.sli.good_expr(60_000).startswith("sum(rate(slo_request_duration_seconds_bucket")
    minutes = slos["payout-minutes"]
    assert minutes.objective == pytest.approx(0.995) and minutes.period_ms == 28 * DAY
    assert isinstance(minutes.sli, TimesliceSLI) and minutes.sli.slice_ms == 60_000
    assert ">= bool 0.99" in minutes.sli.indicator and "> 0" in minutes.sli.indicator
    pending = slos["pending-payouts"]
    assert pending.period_ms == 30 * DAY  # 1M
    assert isinstance(pending.sli, TimesliceSLI)
    assert pending.sli.indicator.endswith("<= bool 50.0")
    for slo in slos.values():
        promql_parser.parse(slo.error_ratio_expr(300_000))


def test_openslo_several_objectives_become_several_slos() -> None:
    text = """
apiVersion: openslo/v1
kind: SLO
metadata: {name: lat}
spec:
  service: svc
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: i}
    spec:
      thresholdMetric:
        metricSource: {type: Prometheus, spec: {query: 'max(x)'}}
  objectives:
    - {displayName: Fast, op: lt, value: 1, target: 0.9}
    - {displayName: Okay, op: lt, value: 5, targetPercent: 99}
"""
    slos = parse_slos(text)
    assert [(s.name, s.objective) for s in slos] == [("lat-fast", 0.9), ("lat-okay", 0.99)]


BAD = [
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 1.0, period: 1d, "
        "sli: {events: {good: g, total: t}}}\n",
        "slos[0].objective: objective must lie in (0, 1)",
    ),
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 0, period: 1d, "
        "sli: {events: {good: g, total: t}}}\n",
        "slos[0].objective",
    ),
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 99.9, period: 1d, "
        "sli: {events: {good: g, total: t}}}\n",
        "objective must lie in (0, 1)",
    ),
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 0.9, period: 1d, colour: red, "
        "sli: {events: {good: g, total: t}}}\n",
        "slos[0].colour: unknown field",
    ),
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 0.9, period: soon, "
        "sli: {events: {good: g, total: t}}}\n",
        "slos[0].period",
    ),
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 0.9, period: 1d, "
        "sli: {events: {good: 'rate(g[5m]', total: t}}}\n",
        "slos[0].sli.events.good: invalid PromQL",
    ),
    (
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 0.9, period: 1d, "
        "sli: {events: {good: 'g', total: t}}, alerting: {threshold: {sli_below: 0.95}}}\n",
        "slos[0].alerting.threshold.sli_below: must lie between 0 and the objective",
    ),
    (
        "version: prometheus/v1\nservice: s\nslos:\n  - {name: a, objective: 100, alerting: {name: A}, "
        "sli: {events: {error_query: 'e[{{.window}}]', total_query: 't[{{.window}}]'}}}\n",
        "objective must lie in (0, 100)",
    ),
    (
        "version: prometheus/v1\nservice: s\nslos:\n  - {name: a, objective: 99, alerting: {name: A}, "
        "sli: {events: {error_query: 'sum(rate(e[{{.window}}])', total_query: 't[{{.window}}]'}}}\n",
        "slos[0].sli.events.error_query: invalid PromQL",
    ),
    ("slos: [\n", "invalid YAML"),
    ("version: nope/v9\n", "unknown SLO format (version: 'nope/v9'); supported: version: sloanalysis/v1"),
    (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Occurrences, "
        "indicatorRef: missing, objectives: [{target: 0.9}]}\n",
        "no kind: SLI named 'missing'",
    ),
    (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Occurrences, "
        "indicator: {spec: {thresholdMetric: {metricSource: {type: Datadog, spec: {query: q}}}}}, "
        "objectives: [{target: 0.9, op: lt, value: 1}]}\n",
        "only Prometheus metric sources",
    ),
    (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Sometimes, "
        "indicatorRef: x, objectives: [{target: 0.9}]}\n",
        "spec.budgetingMethod",
    ),
]


def _own(entry: str) -> str:
    """A file of the project's format with one SLO entry (a YAML flow mapping)."""
    return f"version: sloanalysis/v1\nservice: s\nslos:\n  - {entry}\n"


_SLI = "sli: {events: {good: g, total: t}}"
_OPENSLO_SLO = (
    "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Occurrences, "
    "indicatorRef: i, objectives: [{target: 0.9}]}\n"
)

BAD += [
    # Wrong types are not coerced: a quoted number, a boolean, a list for a mapping.
    (
        _own(f"{{name: a, objective: '0.9', period: 1d, {_SLI}}}"),
        "slos[0].objective: Input should be a valid number",
    ),
    (
        _own(f"{{name: a, objective: true, period: 1d, {_SLI}}}"),
        "slos[0].objective: Input should be a valid number",
    ),
    (
        _own("{name: a, objective: 0.9, period: 1d, sli: [events]}"),
        "slos[0].sli: expected a mapping, got list",
    ),
    (
        _own(f"{{name: 7, objective: 0.9, period: 1d, {_SLI}}}"),
        "slos[0].name: Input should be a valid string",
    ),
    # Missing fields, and an unknown one listing the known ones.
    (_own(f"{{name: a, period: 1d, {_SLI}}}"), "slos[0].objective: required field is missing"),
    (
        _own(
            f"{{name: a, objective: 0.9, period: 1d, {_SLI}, "
            "alerting: {threshold: {sli_below: 0.5, fore: 1m}}}"
        ),
        "slos[0].alerting.threshold.fore: unknown field (known here: for, latency_above, sli_below, window)",
    ),
    ("version: sloanalysis/v1\nservice: s\nslos: []\n", "slos: expected a non-empty list of SLOs"),
    # Non-finite and absurd numbers.
    (
        _own(f"{{name: a, objective: .nan, period: 1d, {_SLI}}}"),
        "slos[0].objective: Input should be a finite number",
    ),
    (
        _own(f"{{name: a, objective: -.inf, period: 1d, {_SLI}}}"),
        "slos[0].objective: Input should be a finite number",
    ),
    (
        _own(f"{{name: a, objective: 0.9, period: .nan, {_SLI}}}"),
        "slos[0].period: expected a finite duration",
    ),
    (
        _own(f"{{name: a, objective: 0.9, period: .inf, {_SLI}}}"),
        "slos[0].period: expected a finite duration",
    ),
    (_own(f"{{name: a, objective: 0.9, period: 0s, {_SLI}}}"), "slos[0].period: must be positive"),
    (_own(f"{{name: a, objective: 0.9, period: -1d, {_SLI}}}"), "slos[0].period: must be positive"),
    (_own(f"{{name: a, objective: 0.9, period: 11y, {_SLI}}}"), "slos[0].period: must be at most 10 years"),
    (
        _own(f"{{name: a, objective: 0.9, period: 1d, {_SLI}, labels: {{bad-name: x}}}}"),
        "slos[0].labels.bad-name",
    ),
    # Cross-field rules.
    (
        _own(
            f"{{name: a, objective: 0.9, period: 1d, {_SLI}, alerting: {{threshold: {{latency_above: 5s}}}}}}"
        ),
        "slos[0].alerting.threshold.latency_above: latency_above needs a latency SLI",
    ),
    (
        _own(
            "{name: a, objective: 0.9, period: 1d, sli: {latency: {histogram: h, threshold: 2s}}, "
            "alerting: {threshold: {latency_above: 1s}}}"
        ),
        "slos[0].alerting.threshold.latency_above: must exceed the SLI threshold 2.0 s",
    ),
    (
        _own("{name: a, objective: 0.9, period: 1d, sli: {events: {good: g, bad: b, total: t}}}"),
        "slos[0].sli.events: give exactly one of good, bad",
    ),
    (
        _own("{name: a, objective: 0.9, period: 1d, sli: {latency: {histogram: h_bucket, threshold: 2s}}}"),
        "slos[0].sli.latency.histogram: give the histogram's base name",
    ),
    (
        _own("{name: a, objective: 0.9, period: 1d, sli: {timeslice: {indicator: up, missing: maybe}}}"),
        "slos[0].sli.timeslice.missing",
    ),
    (
        "version: prometheus/v1\nservice: s\nslos:\n  - {name: a, objective: .nan, alerting: {name: A}, "
        "sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}}\n",
        "slos[0].objective: Input should be a finite number",
    ),
    (
        "version: prometheus/v1\nservice: s\nslos:\n  - {name: a, objective: 99, "
        "sli: {raw: {error_ratio_query: 'e[{{.window}}]'}}}\n",
        "slos[0].alerting.name: required unless both alerts are disabled",
    ),
    (
        "version: prometheus/v1\nservice: s\nslos:\n  - {name: a, objective: 99, alerting: {name: A}, "
        "sli: {plugin: {id: x}}}\n",
        "slos[0].sli.plugin: Sloth plugins are not supported",
    ),
    # OpenSLO: a wrong apiVersion in the first or a later document, an unknown kind, a bad window.
    (
        _OPENSLO_SLO.replace("openslo/v1", "openslo/v9"),
        "unknown SLO format (apiVersion: 'openslo/v9', kind: 'SLO')",
    ),
    (
        _OPENSLO_SLO + "---\napiVersion: openslo/v2\nkind: SLI\n",
        "document 2: unknown SLO format (apiVersion: 'openslo/v2', kind: 'SLI')",
    ),
    (_OPENSLO_SLO + "---\napiVersion: openslo/v1\nkind: Banana\n", "document 2.kind"),
    (
        _OPENSLO_SLO.replace(
            "indicatorRef: i", "timeWindow: [{duration: 1M}, {duration: 1Q}], indicatorRef: i"
        ),
        "document 1.spec.timeWindow: expected a list with exactly one time window",
    ),
    (
        _OPENSLO_SLO.replace("indicatorRef: i", "timeWindow: [{duration: 11Y}], indicatorRef: i"),
        "document 1.spec.timeWindow[0].duration: must be at most 10 years",
    ),
    (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Occurrences, "
        "indicator: {spec: {thresholdMetric: {metricSource: {spec: {query: q}}}}}, "
        "objectives: [{target: 0.9, value: 1}]}\n",
        "document 1.spec.objectives[0].op: thresholdMetric needs op",
    ),
    (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Timeslices, "
        "indicator: {spec: {ratioMetric: {good: {metricSource: {spec: {query: g}}}, "
        "total: {metricSource: {spec: {query: t}}}}}}, objectives: [{target: 0.9}]}\n",
        "document 1.spec.objectives[0].timeSliceWindow: required field is missing for Timeslices",
    ),
    (
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: a}\nspec: {budgetingMethod: Occurrences, "
        "indicator: {spec: {ratioMetric: {good: {metricSource: {spec: {query: 'rate(g'}}}, "
        "total: {metricSource: {spec: {query: t}}}}}}, objectives: [{target: 0.9}]}\n",
        "document 1.spec.indicator.spec.ratioMetric.good: invalid PromQL",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_specs_raise_one_line_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse_slos(text, "f.yaml")
    text_of_error = str(info.value)
    assert "\n" not in text_of_error
    assert text_of_error.startswith("f.yaml")
    assert message in text_of_error


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        load_slos(tmp_path / "absent.yaml")


def test_slo_files_share_one_id_space(tmp_path: Path) -> None:
    """The same service and SLO name in two files is an error naming both; distinct ones load in order."""
    first, second, other = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"
    first.write_text(_own(f"{{name: x, objective: 0.9, period: 1d, {_SLI}}}"))
    second.write_text(first.read_text())
    other.write_text(_own(f"{{name: y, objective: 0.99, period: 7d, {_SLI}}}"))
    slos = load_slo_files([first, other])
    assert [(s.id, s.objective, s.period_ms) for s in slos] == [("s-x", 0.9, DAY), ("s-y", 0.99, 7 * DAY)]
    with pytest.raises(UserError) as info:
        load_slo_files([first, other, second])
    assert str(info.value) == f"{second}: SLO 's-x' is already defined in {first}"
