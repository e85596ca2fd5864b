"""Pyrra's ``-increase`` group and ``SLOMetricAbsent`` alerts (issue [11]), against Pyrra's own
generation logic (pyrra-dev/pyrra ``slo/rules.go`` ``IncreaseRules``, ``slo/slo.go``
``AbsentDuration``) worked by hand for the published examples in ../shared/slo-formats/pyrra-examples.

By hand, ``slo-kubelet-request-errors.yaml`` (ratio, 2w, target 99 %, errors and total both
``rest_client_requests_total``):

- grouping: no ``grouping``; the labels only the errors selector names: {__name__, job, code} less
  the total's {__name__, job} = {code}; no regex matcher on the total. So ``sum by (code)``.
- labels: ``slo`` plus the total's equality matchers (``job="kubelet"``), less the grouping.
- record ``rest_client_requests:increase2w`` (``_total`` trimmed), window 2w; the errors metric is
  the same, so no second record and no second absent alert.
- interval: 2w is not under 14 days but is under 21: 90 s, ``1m30s``.
- absent ``for``: the fastest pair for 2w is 30m/3m, factor 14, ``for`` 2w / 20160 = 1 minute:
  14 * 0.01 * 1800 s = 252 s (Go truncates the float to whole seconds), + 60 s = 312 s, rounded to
  the minute: 5m.

``slo-prometheus-rule-evaluation-failures.yaml`` (2w, 99.99 %, errors and total differ, both
``{job="prometheus-k8s"}``): no label only the errors name, so ``sum(...)``; two records, each
followed by its absent alert; ``for``: 14 * (1 - 0.9999) * 1800 s = 2.52 s -> 2 s, + 60 s = 62 s,
rounded: 1m.

``caddy-response-latency.yaml`` (latency, 4w, 90 %): the success bucket adds only ``le`` (never a
grouping label); the total's regex matcher ``code!~"5.."`` groups by ``code``. Labels ``handler``,
``job``, ``slo`` (the success record and alert add ``le: "0.05"``). Matchers print sorted. Both
records share the name ``caddy_http_response_duration_seconds:increase4w`` (``_count`` and
``_bucket`` trimmed). Interval: 4w = 28 days, under 35: 150 s, ``2m30s``. Absent ``for``: pair
1h/5m, factor 14, ``for`` 2m: 14 * 0.1 * 3600 s = 5039.99... s -> 5039 s, + 120 s = 5159 s =
85.98 minutes -> 86m = ``1h26m``.
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sloanalysis.slo.formats import load_slos, parse_slos
from sloanalysis.slo.rulegen import dump_rules, generate_rules

SHARED = Path(__file__).resolve().parents[2] / "shared" / "slo-formats" / "pyrra-examples"
needs_examples = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/slo-formats not present")


def _groups(name: str, style: Any = None) -> list[dict[str, Any]]:
    return generate_rules(load_slos(SHARED / name), style=style).groups


@needs_examples
def test_kubelet_ratio_increase_group_as_pyrra_generates_it() -> None:
    increase, burn = _groups("slo-kubelet-request-errors.yaml")
    assert burn["name"] == "kubelet-request-errors"
    labels = {"job": "kubelet", "slo": "kubelet-request-errors"}
    assert increase == {
        "name": "kubelet-request-errors-increase",
        "interval": "1m30s",
        "rules": [
            {
                "record": "rest_client_requests:increase2w",
                "expr": 'sum by (code) (increase(rest_client_requests_total{job="kubelet"}[2w]))',
                "labels": labels,
            },
            {
                "alert": "SLOMetricAbsent",
                "expr": 'absent(rest_client_requests_total{job="kubelet"}) == 1',
                "for": "5m",
                "labels": {**labels, "severity": "critical"},
            },
        ],
    }


@needs_examples
def test_two_metrics_give_two_records_each_with_its_absent_alert() -> None:
    increase, _ = _groups("slo-prometheus-rule-evaluation-failures.yaml")
    labels = {"job": "prometheus-k8s", "slo": "prometheus-rule-evaluation-failures"}
    got = [(r.get("record") or r["alert"], r["expr"], r.get("for"), r["labels"]) for r in increase["rules"]]
    total = 'prometheus_rule_evaluations_total{job="prometheus-k8s"}'
    failures = 'prometheus_rule_evaluation_failures_total{job="prometheus-k8s"}'
    absent_labels = {**labels, "severity": "critical"}
    assert got == [
        ("prometheus_rule_evaluations:increase2w", f"sum(increase({total}[2w]))", None, labels),
        ("SLOMetricAbsent", f"absent({total}) == 1", "1m", absent_labels),
        ("prometheus_rule_evaluation_failures:increase2w", f"sum(increase({failures}[2w]))", None, labels),
        ("SLOMetricAbsent", f"absent({failures}) == 1", "1m", absent_labels),
    ]


@needs_examples
def test_latency_records_total_and_success_bucket_with_le() -> None:
    increase, _ = _groups("caddy-response-latency.yaml")
    assert (increase["name"], increase["interval"]) == ("caddy-response-latency-increase", "2m30s")
    labels = {"handler": "subroute", "job": "caddy", "slo": "caddy-response-latency"}
    count = 'caddy_http_response_duration_seconds_count{code!~"5..",handler="subroute",job="caddy"}'
    bucket = (
        'caddy_http_response_duration_seconds_bucket{code!~"5..",handler="subroute",job="caddy",le="0.05"}'
    )
    name = "caddy_http_response_duration_seconds:increase4w"
    got = [(r.get("record") or r["alert"], r["expr"], r.get("for"), r["labels"]) for r in increase["rules"]]
    assert got == [
        (name, f"sum by (code) (increase({count}[4w]))", None, labels),
        (name, f"sum by (code) (increase({bucket}[4w]))", None, {**labels, "le": "0.05"}),
        ("SLOMetricAbsent", f"absent({count}) == 1", "1h26m", {**labels, "severity": "critical"}),
        (
            "SLOMetricAbsent",
            f"absent({bucket}) == 1",
            "1h26m",
            {**labels, "le": "0.05", "severity": "critical"},
        ),
    ]


def test_absent_false_drops_the_absent_alerts_and_other_inputs_have_no_increase_group() -> None:
    (slo,) = parse_slos(
        textwrap.dedent(
            """\
            apiVersion: pyrra.dev/v1alpha1
            kind: ServiceLevelObjective
            metadata: {name: api}
            spec:
              target: "99.5"
              window: 4w
              alerting: {absent: false}
              indicator:
                ratio:
                  errors: {metric: 'http_requests_total{job="api",code=~"5.."}'}
                  total: {metric: 'http_requests_total{job="api"}'}
            """
        )
    )
    increase, _ = generate_rules([slo]).groups
    assert [r.get("alert") for r in increase["rules"]] == [None]
    # A Sloth spec written in Pyrra's style has no Pyrra selectors: the burn-rate group only.
    (sloth,) = parse_slos(
        textwrap.dedent(
            """\
            version: prometheus/v1
            service: svc
            slos:
              - name: avail
                objective: 99.9
                sli:
                  events:
                    error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
                    total_query: sum(rate(http_requests_total[{{.window}}]))
                alerting: {name: SvcAvail}
            """
        )
    )
    assert [g["name"] for g in generate_rules([sloth], style="pyrra").groups] == ["avail"]


def _promtool() -> str:
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(path).is_file():
        pytest.skip("promtool not installed")
    return path


@needs_examples
def test_promtool_checks_every_pyrra_example_output(tmp_path: Path) -> None:
    """Every example's rules pass ``promtool check rules``. Where the errors and total metrics
    differ, Pyrra writes two ``SLOMetricAbsent`` alerts with equal labels (different expressions),
    which promtool's duplicate-rules lint reports for Pyrra's own output too: those files are
    checked without that lint."""
    for path in sorted(SHARED.glob("*.yaml")):
        out = tmp_path / f"{path.stem}.rules.yml"
        rules = generate_rules(load_slos(path))
        out.write_text(dump_rules(rules))
        absents = [r["expr"] for r in rules.groups[0]["rules"] if r.get("alert") == "SLOMetricAbsent"]
        lint = ["--lint=none"] if len(absents) > 1 else []
        result = subprocess.run(
            [_promtool(), "check", "rules", *lint, str(out)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"


@needs_examples
def test_promtool_evaluates_the_increase_record_and_the_absent_alert(tmp_path: Path) -> None:
    """With the real rule evaluation: a counter at 1 request a second from 0 for 20 minutes has
    increased by 1,200 (no extrapolation: the first sample is 0 and the last is at the
    evaluation); with the total series absent, ``SLOMetricAbsent`` fires once it has been pending
    its ``for`` of 5m (first evaluation at 0, firing from 5m)."""
    rules = tmp_path / "kubelet.rules.yml"
    rules.write_text(dump_rules(generate_rules(load_slos(SHARED / "slo-kubelet-request-errors.yaml"))))
    recorded = 'rest_client_requests:increase2w{code="200",job="kubelet",slo="kubelet-request-errors"}'
    tests = tmp_path / "kubelet.test.yml"
    tests.write_text(
        textwrap.dedent(
            f"""\
            rule_files: [{rules}]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  - series: 'rest_client_requests_total{{job="kubelet",code="200"}}'
                    values: '0+60x20'
                promql_expr_test:
                  - expr: rest_client_requests:increase2w
                    eval_time: 20m
                    exp_samples:
                      - labels: '{recorded}'
                        value: 1200
                alert_rule_test:
                  - alertname: SLOMetricAbsent
                    eval_time: 20m
              - interval: 1m
                input_series:
                  - series: 'other_metric'
                    values: '1x10'
                alert_rule_test:
                  - alertname: SLOMetricAbsent
                    eval_time: 4m
                  - alertname: SLOMetricAbsent
                    eval_time: 5m
                    exp_alerts:
                      - exp_labels:
                          job: kubelet
                          slo: kubelet-request-errors
                          severity: critical
            """
        )
    )
    result = subprocess.run(
        [_promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
