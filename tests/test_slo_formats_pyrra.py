"""Pyrra's published examples (../shared/slo-formats/pyrra-examples) and Pyrra's windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloanalysis.slo.formats import load_slos, parse_slos
from sloanalysis.slo.rulegen import generate_rules
from sloanalysis.slo.spec import EventsSLI
from sloanalysis.slo.styles.pyrra import pyrra_windows

SHARED = Path(__file__).resolve().parents[2] / "shared" / "slo-formats" / "pyrra-examples"
EXAMPLES = sorted(SHARED.glob("*.yaml")) if SHARED.is_dir() else []
M, H, D = 60_000, 3_600_000, 86_400_000

# Pyrra's Windows(): long/short/for as fractions of 28 days rounded to the minute, halves away
# from zero, worked by hand. 14 days: 14d/8064 = 150 s -> 3m; 14d/2688 = 450 s -> 8m.
PYRRA_28D = [
    ("critical", 1 * H, 5 * M, 2 * M, 14),
    ("critical", 6 * H, 30 * M, 15 * M, 7),
    ("warning", 1 * D, 2 * H, 1 * H, 2),
    ("warning", 4 * D, 6 * H, 3 * H, 1),
]
PYRRA_14D = [
    ("critical", 30 * M, 3 * M, 1 * M, 14),
    ("critical", 3 * H, 15 * M, 8 * M, 7),
    ("warning", 12 * H, 1 * H, 30 * M, 2),
    ("warning", 2 * D, 3 * H, 90 * M, 1),
]


@pytest.mark.skipif(not EXAMPLES, reason="../shared/slo-formats not present")
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_pyrra_example_loads_with_its_period_and_pyrra_windows(path: Path) -> None:
    (slo,) = load_slos(path)
    assert slo.origin == "pyrra.dev/v1alpha1"
    assert isinstance(slo.sli, EventsSLI)
    expected = {28 * D: PYRRA_28D, 14 * D: PYRRA_14D}[slo.period_ms]
    rules = generate_rules([slo])
    burn_group = rules.groups[-1]  # after Pyrra's -increase group (its absent alerts)
    alerts = [r for r in burn_group["rules"] if "alert" in r]
    got = [(a["labels"]["severity"], a["labels"]["long"], a["labels"]["short"], a["for"]) for a in alerts]
    from sloanalysis.durations import format_duration_ms as f

    assert got == [(s, f(lo), f(sh), f(fo)) for s, lo, sh, fo, _ in expected]
    for alert, (*_, factor) in zip(alerts, expected, strict=True):
        assert f"({factor} * (1 - {slo.objective!r}))" in alert["expr"]


@pytest.mark.parametrize(("period", "expected"), [(28 * D, PYRRA_28D), (14 * D, PYRRA_14D)])
def test_pyrra_windows_factors_and_for(period: int, expected: list[tuple[str, int, int, int, int]]) -> None:
    got = [(w.severity, w.long_ms, w.short_ms, w.for_ms, w.factor) for w in pyrra_windows(period)]
    assert got == [(s, lo, sh, fo, float(fa)) for s, lo, sh, fo, fa in expected]


def test_ratio_with_grouping_and_labels_as_pyrra_reads_them() -> None:
    (slo,) = parse_slos(
        """apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata: {name: ops, namespace: mon, labels: {pyrra.dev/team: a, other: b}}
spec:
  target: "99.5"
  window: 4w
  indicator:
    ratio:
      errors: {metric: 'ops_errors_total{job="x",code=~"5.."}'}
      total: {metric: 'ops_total{job="x",code=~".*"}'}
      grouping: [controller]
"""
    )
    assert slo.objective == pytest.approx(0.995)
    assert slo.labels == {"team": "a", "job": "x"}
    assert slo.record_prefix == "ops"
    assert slo.sli.error_ratio_expr(300_000) == (
        '(sum by (controller) (rate(ops_errors_total{job="x",code=~"5.."}[5m])))\n/\n'
        '(sum by (controller) (rate(ops_total{job="x",code=~".*"}[5m])))'
    )
    names = [r.get("record") for g in generate_rules([slo]).groups for r in g["rules"]]
    assert "ops:burnrate5m" in names and "ops:burnrate4d" in names


def test_bool_gauge_counts_samples() -> None:
    (slo,) = parse_slos(
        "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: up}\n"
        "spec: {target: '99', window: 2w, indicator: {boolGauge: {metric: 'up{job=\"a\"}'}}}\n"
    )
    assert isinstance(slo.sli, EventsSLI)
    assert slo.sli.per_second is False
    assert slo.sli.total_expr(60_000) == 'sum(count_over_time(up{job="a"}[1m]))'
    assert slo.sli.good_expr(60_000) == 'sum(sum_over_time(up{job="a"}[1m]))'


def test_latency_native_counts_the_fraction_under_the_threshold() -> None:
    (slo,) = parse_slos(
        "apiVersion: pyrra.dev/v1alpha1\nkind: ServiceLevelObjective\nmetadata: {name: lat}\n"
        "spec: {target: '99', window: 4w, alerting: {disabled: true},"
        " indicator: {latencyNative: {latency: 250ms,"
        " total: {metric: 'http_duration_seconds{job=\"a\"}'}}}}\n"
    )
    assert isinstance(slo.sli, EventsSLI)
    hist = 'sum(rate(http_duration_seconds{job="a"}[5m]))'
    assert slo.sli.good_expr(300_000) == f"histogram_fraction(0, 0.25, {hist}) * histogram_count({hist})"
    assert slo.sli.total_expr(300_000) == f"histogram_count({hist})"
    assert not slo.alerting.page and not slo.alerting.ticket
    assert all("alert" not in r for g in generate_rules([slo]).groups for r in g["rules"])


@pytest.mark.prometheus
@pytest.mark.skipif(not EXAMPLES, reason="../shared/slo-formats not present")
def test_promtool_accepts_every_pyrra_style_output(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from sloanalysis.slo.rulegen import dump_rules

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    files = []
    for path in EXAMPLES:
        out = tmp_path / path.name
        out.write_text(dump_rules(generate_rules(load_slos(path)), source=path.name), encoding="utf-8")
        files.append(str(out))
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
