"""The SLO commands through the real CLI: outputs, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pandas as pd
import pytest
import yaml
from reporting import smoke_run
from test_coverage import _store

from sloanalysis.cli.main import main
from sloanalysis.sources.rundir import load_run

ROOT = Path(__file__).resolve().parents[1]
TRON = str(ROOT / "slos" / "tron-payment.yaml")


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def test_generate_rules_to_stdout_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate-rules", TRON]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    names = {g["name"] for g in doc["groups"]}
    assert "sloanalysis-alerts-tron-payment-api-availability" in names
    out = tmp_path / "rules.json"
    assert main(["generate-rules", TRON, "--out", str(out), "--format", "json"]) == 0
    assert json.loads(out.read_text())["groups"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_generate_rules_bad_inputs_leave_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rules.yaml"
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: sloanalysis/v1\nservice: s\nslos: [\n", encoding="utf-8")
    _one_line_error(capsys, ["generate-rules", str(bad), "--out", str(out)], "bad.yaml", "invalid YAML")
    assert not out.exists()
    bad.write_text(
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 1.5, period: 1d,"
        " sli: {events: {good: g, total: t}}}\n",
        encoding="utf-8",
    )
    _one_line_error(capsys, ["generate-rules", str(bad)], "slos[0].objective", "(0, 1)")
    bad.write_text(
        "version: sloanalysis/v1\nservice: s\nslos:\n  - {name: a, objective: 0.9, period: 1d, owner: me,"
        " sli: {events: {good: g, total: t}}}\n",
        encoding="utf-8",
    )
    _one_line_error(capsys, ["generate-rules", str(bad)], "slos[0].owner", "unknown field")
    _one_line_error(capsys, ["generate-rules", str(tmp_path / "nope.yaml")], "no such file")


def test_same_slo_in_two_files(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, ["generate-rules", TRON, TRON], "already defined")


def test_alert_table_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alert-table", "--objective", "0.999", "--period", "30d", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 32
    r = next(x for x in rows if x["approach"] == 4 and x["error_rate"] == 1.0)
    assert r["detection_ms"] == pytest.approx(51_840)


def test_alert_table_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alert-table", "--objective", "0.999"]) == 0
    out = capsys.readouterr().out
    assert "51.8s" in out and "multiwindow, multi-burn-rate" in out


@pytest.mark.parametrize("objective", ["1.5", "0", "1", "99.9", "abc"])
def test_alert_table_objective_outside_0_1(objective: str, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, ["alert-table", "--objective", objective], "--objective")


def test_alert_table_simulate_rejects_bad_objective(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, ["alert-table", "--objective", "1.5", "--simulate"], "objective")


def test_slo_bad_spec_and_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: sloanalysis/v1\nservice: s\n", encoding="utf-8")
    _one_line_error(capsys, ["slo", str(bad), "--run", str(tmp_path)], "bad.yaml", "slos")
    _one_line_error(capsys, ["slo", TRON, "--run", str(tmp_path / "no-such-run")])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_run(tmp_path_factory.getbasetemp())


def test_slo_table_over_the_smoke_run(smoke: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["slo", TRON, "--run", str(smoke), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [s["name"] for s in yaml.safe_load(Path(TRON).read_text(encoding="utf-8"))["slos"]]
    assert [r["slo"] for r in rows] == names
    for r in rows:
        # Two hours of data, shorter than every period: each SLO is evaluated over all of it.
        assert r["window_ms"] < r["period_ms"] and r["window_ms"] > 7_000_000
        # Budget left is 1 - (bad / allowed) = 1 - (1 - SLI) / (1 - objective).
        expected = 1 - (1 - r["sli"]) / (1 - r["objective"])
        assert r["budget_remaining_ratio"] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert r["met"] == (r["sli"] >= r["objective"])


def test_slo_table_says_no_data_for_a_range_without_samples(
    smoke: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "slo",
        TRON,
        "--run",
        str(smoke),
        "--start",
        "2020-01-01T00:00:00Z",
        "--end",
        "2020-01-02T00:00:00Z",
    ]
    # No SLO has any data at all: exit 2, one line per SLO on stderr with where the data is.
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert "budget left" in lines[0] and "coverage" in lines[0] and len(lines) == 2 + 5
    for line in lines[2:]:
        # SLI, coverage, state, budget left, amount, burn and exhaustion: none is known, none
        # shows 100 % or never.
        assert line.count("no data") == 7, line
    first, last = load_run(smoke).store.time_range() or (0, 0)
    where = f"its series have data from {_instant(first)} to {_instant(last)}"
    err = captured.err.splitlines()
    assert len(err) == 5
    for line, name in zip(err, _names(), strict=True):
        assert line == f"slo {name}: no data in 2020-01-01T00:00Z .. 2020-01-02T00:00Z; {where}"
    assert main([*argv, "--format", "json"]) == 2
    rows = json.loads(capsys.readouterr().out)
    assert all(r["met"] is None and r["budget_remaining_ratio"] is None for r in rows)
    assert all(r["state"] == "no data" and r["coverage"] is None for r in rows)
    assert all((r["data_start_ms"], r["data_end_ms"]) == (first, last) for r in rows)


def _names() -> list[str]:
    return [s["name"] for s in yaml.safe_load(Path(TRON).read_text(encoding="utf-8"))["slos"]]


def _instant(ms: int) -> str:
    ts = pd.Timestamp(ms, unit="ms", tz="UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ" if ts.second else "%Y-%m-%dT%H:%MZ")


def test_slo_coverage_column_over_the_smoke_run(smoke: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two hours of data in a four-hour window: at most half of the steps have data (exit 1);
    # a least coverage of 0.4 accepts it (exit 0).
    first, last = load_run(smoke).store.time_range() or (0, 0)
    start = str((last - 4 * 3_600_000) / 1000)
    argv = ["slo", TRON, "--run", str(smoke), "--start", start, "--format", "json"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert all(0.45 < r["coverage"] <= 0.5 and r["state"] == "low coverage" for r in rows)
    for line in captured.err.splitlines():
        assert "low coverage in" in line and "of the steps have data, under 90%" in line, line
        assert line.endswith(f"its series have data from {_instant(first)} to {_instant(last)}")
    assert main([*argv, "--min-coverage", "0.4"]) == 0
    assert capsys.readouterr().err == ""
    _one_line_error(capsys, [*argv, "--min-coverage", "1.5"], "--min-coverage")


SHOP = """\
version: sloanalysis/v1
service: shop
slos:
  - name: checkout
    objective: 0.95
    period: 1d
    sli:
      events:
        good: http_requests_total{code="200"}
        total: http_requests_total
  - name: search
    objective: 0.95
    period: 1d
    sli:
      events:
        good: search_requests_total{code="200"}
        total: search_requests_total
"""


@pytest.mark.prometheus
def test_slo_exit_status_through_a_real_prometheus(
    tmp_path: Path,
    prometheus_from_store: Callable[..., AbstractContextManager[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # tests/test_coverage.py's series: checkout has 80 % coverage over the ten hours (a 2-hour gap),
    # search has no series at all.
    spec = tmp_path / "shop.yaml"
    spec.write_text(SHOP, encoding="utf-8")
    with prometheus_from_store(_store()) as url:
        argv = ["slo", str(spec), "--prometheus", url, "--start", "2026-01-01T00:00:00Z"]
        assert main([*argv, "--end", "2026-01-01T10:00:00Z", "--format", "json"]) == 1
        captured = capsys.readouterr()
        checkout, search = json.loads(captured.out)
        assert checkout["coverage"] == pytest.approx(0.8) and checkout["state"] == "low coverage"
        assert checkout["sli"] == pytest.approx(0.99, abs=1e-9)
        assert search["state"] == "no data" and search["coverage"] is None
        err = captured.err.splitlines()
        assert err[0].startswith(
            "slo checkout: low coverage in 2026-01-01T00:00Z .. 2026-01-01T10:00Z: 80% of the steps have data"
        )
        assert re.search(
            r"its series have data from 2026-01-01T00:00(:\d\dZ|Z) to 2026-01-01T10:00Z$", err[0]
        )
        range_ = "2026-01-01T00:00Z .. 2026-01-01T10:00Z"
        assert err[1] == f"slo search: no data in {range_}; its queries select no series at all"
        # Nothing in the range for either SLO: exit 2.
        assert (
            main(
                [
                    "slo",
                    str(spec),
                    "--prometheus",
                    url,
                    "--start",
                    "2025-06-01T00:00:00Z",
                    "--end",
                    "2025-06-01T06:00:00Z",
                ]
            )
            == 2
        )
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith(
            "slo checkout: no data in 2025-06-01T00:00Z .. 2025-06-01T06:00Z; its series"
        )
        # The last six hours are covered in full: checkout is fine, search still has no data (exit 1).
        assert main([*argv[:-1], "2026-01-01T04:00:00Z", "--end", "2026-01-01T10:00:00Z"]) == 1
        out = capsys.readouterr()
        assert "slo checkout" not in out.err and "slo search: no data" in out.err
