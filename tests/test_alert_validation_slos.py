"""``tronsim validate-alerts --slos FILE``: budget consumed before detection measured against the
user's SLO instead of the default (availability 99.9 % over 30 days), named in every output, and an
SLO the simulation cannot measure refused in one line before any work.

Hand-worked answer: the ``error_step`` kind steps the failed fraction of a constant request rate
to the incident's severity ``e`` at the incident's start, so at detection, ``t`` seconds later,
the errors spent are ``e * rate * t`` of a budget of ``(1 - objective) * rate * period``: the
budget consumed is ``e * t / ((1 - objective) * period)`` whatever the rate. Same detection times,
a period 30 times shorter: 30 times the budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main

STEP_SCENARIO = {
    "name": "step",
    "start": "2026-01-05T00:00:00Z",
    "duration": "1h",
    "scrape_interval": "30s",
    "scrape_offset": "3s",
    "load": {"api_rate": 10, "payout_rate": 0.1},
}
RULES = """
groups:
  - name: known
    rules:
      - alert: MustFire
        expr: >-
          (1 - sum(rate(slo_successful_requests_total[5m])) / sum(rate(slo_total_requests_total[5m])))
          > 0.5
        labels: {severity: page}
"""
FAMILY = {
    "kind": "error_step",
    "severity": {"choice": [0.6, 0.8]},
    "duration": {"fixed": "30m"},
    "quiet": "30m",
    "length": "2h",
}


def _slo_file(objective: float = 0.999, period: str = "1d", job: str = "tron-payment-api") -> str:
    return f"""
version: sloanalysis/v1
service: tron-payment-api
slos:
  - name: availability
    objective: {objective}
    period: {period}
    sli:
      events:
        good: slo_successful_requests_total{{job="{job}"}}
        total: slo_total_requests_total{{job="{job}"}}
    alerting:
      name: AvailabilityBurn
"""


LATENCY_SLO = """
version: sloanalysis/v1
service: tron-payment-api
slos:
  - name: latency
    objective: 0.99
    period: 7d
    sli:
      latency:
        histogram: slo_request_duration_seconds
        threshold: 0.5
    alerting:
      name: LatencyBurn
"""


def _inputs(tmp_path: Path) -> list[str]:
    files = {"step.yaml": json.dumps(STEP_SCENARIO), "family.yaml": json.dumps(FAMILY), "r.yml": RULES}
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return [str(tmp_path / "step.yaml"), str(tmp_path / "family.yaml"), "--rules", str(tmp_path / "r.yml")]


def _run(tmp_path: Path, out: str, *extra: str) -> dict:
    args = ["validate-alerts", *_inputs(tmp_path), "-n", "3", "--workers", "1", "--no-plot", "-q"]
    assert main([*args, "--out", str(tmp_path / out), *extra]) == 0
    return json.loads((tmp_path / out / "validation.json").read_text(encoding="utf-8"))


def _pairs(tmp_path: Path, out: str) -> list[dict]:
    return [
        json.loads(p.read_text(encoding="utf-8"))["result"]["variants"]["rules"]["pairs"][0]
        for p in sorted((tmp_path / out / "replications").glob("r*.json"))
    ]


def test_budget_is_measured_against_the_given_slo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(_slo_file(0.999, "1d"), encoding="utf-8")
    default = _run(tmp_path, "default")
    assert "availability 99.9% / 30d" in capsys.readouterr().out
    mine = _run(tmp_path, "mine", "--slos", str(slo))
    printed = capsys.readouterr().out
    assert "budget before detection: tron-payment-api-availability: objective 99.9 % over 1 d" in printed

    assert default["budget_slo"]["default"] is True and default["budget_slo"]["period_ms"] == 30 * 86_400_000
    assert mine["budget_slo"] == {
        "name": "tron-payment-api-availability",
        "objective": 0.999,
        "period_ms": 86_400_000,
        "default": False,
        "description": "tron-payment-api-availability: objective 99.9 % over 1 d",
    }
    report = (tmp_path / "mine" / "report.md").read_text(encoding="utf-8")
    assert "measured against tron-payment-api-availability" in report

    # Each detected incident: e * t / (0.001 * 1 day), t its detection time (fluid counters: the
    # error ratio over the incident so far is exactly e, up to the window's scrape alignment).
    for p in _pairs(tmp_path, "mine"):
        assert p["detected"]
        expected = p["incident_severity"] * (p["detection_ms"] / 1000) / (0.001 * 86_400)
        assert p["budget"] == pytest.approx(expected, rel=0.05)
    # The same detections against 30 days: exactly a thirtieth.
    for mine_p, default_p in zip(_pairs(tmp_path, "mine"), _pairs(tmp_path, "default"), strict=True):
        assert mine_p["detection_ms"] == default_p["detection_ms"]
        assert mine_p["budget"] == pytest.approx(30 * default_p["budget"], rel=1e-9)


def test_a_changed_slo_recomputes_the_replications(tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(_slo_file(0.999, "1d"), encoding="utf-8")
    _run(tmp_path, "out", "--slos", str(slo))
    slo.write_text(_slo_file(0.99, "1d"), encoding="utf-8")
    doc = _run(tmp_path, "out", "--slos", str(slo))
    assert doc["reused_replications"] == 0 and doc["budget_slo"]["objective"] == 0.99
    again = _run(tmp_path, "out", "--slos", str(slo))
    assert again["reused_replications"] == 3


@pytest.mark.parametrize(
    ("slo_text", "extra", "message"),
    [
        (LATENCY_SLO, [], "its SLI reads slo_request_duration_seconds_bucket, "
         "slo_request_duration_seconds_count, which the error_step kind does not export"),
        (_slo_file(job="payments"), [], "its SLI selects job='payments', but the scenario's target is"),
        (_slo_file(), ["--slo", "latency"], "--slo: no SLO named 'latency'"),
        (None, ["--slo", "availability"], "--slo: needs --slos FILE"),
    ],
)  # fmt: skip
def test_an_slo_the_simulation_cannot_measure_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], slo_text: str | None, extra: list[str], message: str
) -> None:
    args = ["validate-alerts", *_inputs(tmp_path), "-n", "2", "--out", str(tmp_path / "o"), *extra]
    if slo_text is not None:
        (tmp_path / "slo.yaml").write_text(slo_text, encoding="utf-8")
        args += ["--slos", str(tmp_path / "slo.yaml")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("tronsim validate-alerts: error: ") and message in err[0], err[0]
    assert not (tmp_path / "o").exists()
