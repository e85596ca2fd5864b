"""``sloanalysis backtest`` / ``tune`` end to end on a tiny run directory; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sloanalysis.cli.main import main
from sloanalysis.store import SeriesStore

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    ts = T0 + np.arange(0, 120 * MIN, 15_000)
    st = SeriesStore()
    st.add(
        {"__name__": "x", "job": "a"}, ts, np.where((ts >= T0 + 20 * MIN) & (ts < T0 + 30 * MIN), 10.0, 0.0)
    )
    d = tmp_path / "run"
    d.mkdir()
    st.to_parquet(d / "samples.parquet")
    (d / "run.json").write_text("{}")
    (d / "incidents.csv").write_text(
        "id,kind,start,end,expected_alerts,params\ni1,k,2026-01-01T00:20:00Z,2026-01-01T00:30:00Z,High,{}\n"
    )
    return d


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    p = tmp_path / "rules.yml"
    p.write_text("groups:\n- name: g\n  rules:\n  - alert: High\n    expr: x > 5\n    for: 2m\n")
    return p


def test_backtest_json(run_dir: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", "--rules", str(rules), str(run_dir), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (firing,) = doc["firing"]
    # true from the 20-min evaluation; for 2m -> firing at 22 min, resolved at the 30-min evaluation
    assert firing["firing_at_ms"] == T0 + 22 * MIN and firing["resolved_at_ms"] == T0 + 30 * MIN
    high = next(r for r in doc["scores"] if r["alert"] == "High")
    assert high["detected"] == 1 and high["detection_ms"] == 2 * MIN and high["false_positives"] == 0


def test_tune_table(run_dir: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "tune",
                "--rules",
                str(rules),
                "--alert",
                "High",
                "--grid",
                "threshold=5,20;for=0m,2m",
                str(run_dir),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Pareto front" in out


@pytest.mark.parametrize(
    ("argv_tail", "needle"),
    [
        (["--alert", "Nope", "--grid", "threshold=1"], "no alerting rule named 'Nope'"),
        (["--alert", "High", "--grid", "bogus=1"], "--grid"),
    ],
)
def test_tune_bad_input(
    run_dir: Path, rules: Path, argv_tail: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tune", "--rules", str(rules), *argv_tail, str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_backtest_bad_input(
    run_dir: Path, tmp_path: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x >\n")
    assert main(["backtest", "--rules", str(bad), str(run_dir)]) == 2
    assert 'bad.yml: 5:11: group "g", rule 1, "A": could not parse expression' in capsys.readouterr().err
    # a range longer than the data
    assert main(["backtest", "--rules", str(rules), str(run_dir), "--start", "2025-12-31T00:00:00Z"]) == 2
    err = capsys.readouterr().err
    assert "longer than the data" in err and err.count("\n") == 1
