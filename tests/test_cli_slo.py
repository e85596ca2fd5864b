"""The SLO commands through the real CLI: outputs, and bad input as one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from reporting import smoke_run

from sloanalysis.cli.main import main

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
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "budget left" in lines[0] and len(lines) == 2 + 5
    for line in lines[2:]:
        # SLI, met, budget left, amount, burn and exhaustion: none is known, none shows 100 % or never.
        assert line.count("no data") == 6, line
    assert main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert all(r["met"] is None and r["budget_remaining_ratio"] is None for r in rows)
