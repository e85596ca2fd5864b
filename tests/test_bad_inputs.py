"""Bad input a user would type, per subcommand: one line on stderr naming what is wrong, exit 2,
no traceback, and no hang (each case is bounded by a timeout)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = simulate(load_scenario(ROOT / "scenarios" / "smoke.yaml"))
    return write_run(result, tmp_path_factory.mktemp("bad") / "smoke")


def _fails_cleanly(module: str, args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0], lines[0]


DEEP = "(" * 20_000 + "up" + ")" * 20_000

QUERY_CASES = [
    (["--step", "nan"], "up", "invalid duration 'nan'"),
    (["--step", "0"], "up", "step must be positive"),
    (["--step", "1e400"], "up", "invalid duration"),
    (["--start", "nan"], "up", "invalid time 'nan'"),
    (["--start=-99999999999"], "up", "outside the supported range"),
    (["--at", "1e308"], "up", "invalid time '1e308'"),
    (["--start", "9999-01-01T00:00:00Z", "--end", "9999-01-02T00:00:00Z"], "up", "invalid time"),
    (["--step", "1ms"], "up", "more than the limit of 5,000,000"),
    (["--step", "1ms", "--max-steps", "0"], "up", "--max-steps must be at least 1"),
    (["--step", "1h"], "up[30d:1ms]", "subquery 30d:1ms needs"),
    (["--step", "1h"], DEEP, "nested 20000 levels deep"),
    (["--step", "1h"], "up" + "+up" * 3000, "nested too deeply"),
    (["--step", "1h"], "sum(", "parse error"),
    (["--step", "1h"], "rate(up)", "expected type range vector"),
]


@pytest.mark.parametrize(("options", "expr", "needle"), QUERY_CASES, ids=[c[2][:30] for c in QUERY_CASES])
def test_query(run_dir: Path, options: list[str], expr: str, needle: str) -> None:
    _fails_cleanly("sloanalysis.cli", ["query", str(run_dir), expr, *options], needle)


def test_query_missing_run(tmp_path: Path) -> None:
    _fails_cleanly("sloanalysis.cli", ["query", str(tmp_path / "nope"), "up"], "nope")


def test_query_unreadable_run(run_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "run"
    bad.mkdir()
    for f in run_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes() if f.name != "samples.parquet" else b"not parquet")
    _fails_cleanly("sloanalysis.cli", ["query", str(bad), "up"], "samples.parquet")


SMOKE = (ROOT / "scenarios" / "smoke.yaml").read_text()
SCENARIO_CASES = {
    "infinite rate": (("api_rate: 3.0", "api_rate: .inf"), "load.api_rate: Input should be a finite number"),
    "nan rate": (("api_rate: 3.0", "api_rate: .nan"), "load.api_rate"),
    "requests beyond a run": (
        ("api_rate: 3.0", "api_rate: 1e7"),
        "more than the 2,000,000,000 one run may simulate",
    ),
    "40 years": (
        ("start: 2026-01-06T10:00:00Z\nduration: 2h", "start: 1980-01-01T00:00:00Z\nduration: 40y"),
        "duration: at most 400 days",
    ),
    "scrape every millisecond": (
        ("scrape_interval: 15s", "scrape_interval: 1ms\nscrape_offset: 0s"),
        "scrape_interval: at least 1s",
    ),
    "duplicate key": (("seed: 7", "seed: 7\nseed: 8"), ":9:1: duplicate key 'seed' (first given on line 8)"),
    "deep nesting": (
        ("seed: 7", "seed: 7\nx: " + "[" * 1000 + "]" * 1000),
        "nested more than 64 levels deep",
    ),
    "infinite amount": (("maximum: 100.0", "maximum: .inf"), "load.amounts.maximum"),
    "bad yaml": (("seed: 7", "seed: [7"), "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_CASES))
@pytest.mark.parametrize("command", ["validate", "run"])
def test_scenario(case: str, command: str, tmp_path: Path) -> None:
    (old, new), needle = SCENARIO_CASES[case]
    assert old in SMOKE
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMOKE.replace(old, new, 1))
    out = tmp_path / "out"
    args = [command, str(bad)] + (["--out", str(out)] if command == "run" else [])
    _fails_cleanly("simulator.cli", args, needle)
    assert not out.exists()


def _corrupt(table: pa.Table, name: str) -> pa.Table:
    n = table.num_rows
    ts_at, series_at = table.schema.get_field_index("timestamp_ms"), table.schema.get_field_index("series")
    if name == "string timestamps":
        return table.set_column(ts_at, "timestamp_ms", pa.array(["1"] * n))
    if name == "null timestamps":
        return table.set_column(ts_at, "timestamp_ms", pa.array([None] * n, pa.int64()))
    if name == "timestamps in year 146 million":
        return table.set_column(ts_at, "timestamp_ms", pa.array([1 << 62] * n, pa.int64()))
    if name == "labels not an object":
        return table.set_column(series_at, "series", pa.array(["[1, 2]"] * n).dictionary_encode())
    if name == "labels not JSON":
        return table.set_column(series_at, "series", pa.array(["{bad"] * n).dictionary_encode())
    assert name == "no value column"
    return table.drop(["value"])


PARQUET_CASES = {
    "string timestamps": "column 'timestamp_ms' must be int64, got string",
    "null timestamps": "column 'timestamp_ms' has",
    "timestamps in year 146 million": "is outside years 1677 to 2262",
    "labels not an object": "is not a JSON object of string labels",
    "labels not JSON": "is not a JSON label set",
    "no value column": "cannot read series Parquet",
}


@pytest.mark.parametrize("case", sorted(PARQUET_CASES))
def test_corrupt_samples(run_dir: Path, tmp_path: Path, case: str) -> None:
    bad = tmp_path / "run"
    shutil.copytree(run_dir, bad)
    pq.write_table(_corrupt(pq.read_table(run_dir / "samples.parquet"), case), bad / "samples.parquet")
    _fails_cleanly("sloanalysis.cli", ["query", str(bad), "up", "--step", "1h"], PARQUET_CASES[case])


RULES = str(ROOT / "monitoring" / "rules" / "tron-payment.yml")
RULE_CASES = {
    "evaluation every millisecond": (
        ["backtest", "--rules", RULES, "--interval", "1ms"],
        "evaluations at a 1ms interval, more than the limit of 1,300,000",
    ),
    "interval not a number": (["backtest", "--rules", RULES, "--interval", "nan"], "--interval"),
    "a grid of 10,000 settings": (
        ["tune", "--rules", RULES, "--alert", "HighFailureRate", "--grid",
         "threshold=" + ",".join(map(str, range(100))) + ";for=" + ",".join(f"{m}m" for m in range(100))],
        "10,000 settings, more than the limit of 1,000",
    ),
    "a threshold of nan": (
        ["tune", "--rules", RULES, "--alert", "HighFailureRate", "--grid", "threshold=nan"],
        "threshold values must be finite",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_rules_commands(run_dir: Path, case: str) -> None:
    args, needle = RULE_CASES[case]
    _fails_cleanly("sloanalysis.cli", [*args, str(run_dir)], needle)


def test_serve_refuses_a_public_address(tmp_path: Path) -> None:
    scenario = str(ROOT / "scenarios" / "live.yaml")
    _fails_cleanly(
        "simulator.cli", ["serve", scenario, "--host", "0.0.0.0", "--port", "0"], "not a loopback address"
    )
