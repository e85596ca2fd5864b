"""Capacity sweeps: statistics by hand, sweep validation, resume, outputs and the notebook."""

from __future__ import annotations

import importlib.util
import io
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.capacity import LocalExecutor, SweepError, load_sweep, run_sweep
from simulator.capacity.metrics import replication_metrics
from simulator.capacity.stats import crossing, knee, mean_ci, t975
from simulator.export import write_run
from simulator.model import PayoutRecords, simulate
from simulator.scenario import load_scenario, with_overrides
from simulator.service import PAYOUT_STATUS

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"

TINY = """
name: tiny
scenario: {scenario}
duration: 15m
warmup: 1m
seed: 3
replications: 2
set:
  incidents: []
grid:
  load.payout_rate: [0.1, 0.4]
  service.payout_workers: [2, 6]
"""


def _write_sweep(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("{scenario}", str(SMOKE)), encoding="utf-8")
    return path


# -- statistics, checked against closed forms ----------------------------------------------------
def test_t_quantiles_match_closed_forms() -> None:
    p = 0.975
    # df=1 is the Cauchy distribution; df=2 and df=4 have closed-form quantiles.
    assert t975(1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-7)
    assert t975(2) == pytest.approx((2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p))), rel=1e-7)
    alpha = 4 * p * (1 - p)
    q = math.cos(math.acos(math.sqrt(alpha)) / 3) / math.sqrt(alpha)
    assert t975(4) == pytest.approx(2 * math.sqrt(q - 1), rel=1e-7)
    # Large df: tends to the normal quantile; the table and the expansion join smoothly.
    assert t975(10**9) == pytest.approx(1.959963985, abs=1e-6)
    assert t975(30) > t975(31) > t975(60) > 1.96
    assert t975(31) == pytest.approx(2.039513446, abs=1e-6)  # published value for 31 df


def test_mean_ci_by_hand() -> None:
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, math.nan])
    half = 3.18244631 * math.sqrt(5 / 3) / 2  # t(3) * sd / sqrt(n), sd^2 = 5/3
    assert (mean, lo, hi) == pytest.approx((2.5, 2.5 - half, 2.5 + half))
    assert mean_ci([7.0])[0] == 7.0 and math.isnan(mean_ci([7.0])[1])


def test_replication_metrics_by_hand() -> None:
    s = PAYOUT_STATUS
    rec = PayoutRecords(
        submitted=np.array([5.0, 20.0, 30.0, 40.0, 50.0, 95.0]),
        queue_wait=np.array([0.0, 0.0, 4.0, np.nan, 2.0, 1.0]),
        processing=np.array([10.0, 6.0, 12.0, 0.1, 30.0, 5.0]),
        status=np.array(
            [s["confirmed"], s["confirmed"], s["failed"], s["rejected"], s["confirmed"], s["pending"]]
        ),
    )
    m = replication_metrics(rec, {"open": 3.0, "half_open": 1.5, "closed": 95.5}, duration=100.0, warmup=10.0)
    # Inside the window (submitted >= 10): payouts 2..6; finished: 2,3,4,5; confirmed: 2 and 5.
    assert m["success_rate"] == pytest.approx(2 / 4)
    # Confirmations completed after the warm-up: at 15 (5+10), 26 and 80 -> 3 over 90 s.
    assert m["throughput"] == pytest.approx(3 / 90)
    # Processing times of processed and pending payouts in the window: 6, 12, 30, 5.
    assert m["processing_p50"] == pytest.approx(9.0)
    # Waits of payouts that asked for a worker: 0, 4, 2, 1.
    assert m["queue_wait_mean"] == pytest.approx(7 / 4)
    assert m["p_wait"] == pytest.approx(3 / 4)
    assert m["breaker_open_s"] == 4.5
    assert m["payouts"] == 5 and m["pending_at_end"] == 1


def test_crossing_and_knee_by_hand() -> None:
    x = np.array([1.0, 2.0, 3.0])
    assert crossing(x, np.array([10.0, 20.0, 40.0]), 30.0, True) == (2.5, "interpolated")
    assert crossing(x, np.array([0.999, 0.997, 0.990]), 0.995, False) == pytest.approx(
        (2 + 2 / 7, "interpolated")
    )
    assert crossing(x, np.array([40.0, 50.0, 60.0]), 30.0, True) == (1.0, "below grid")
    assert crossing(x, np.array([1.0, 2.0, 3.0]), 30.0, True) == (3.0, "above grid")
    # Normalised x = 0, .25, .5, .75, 1; y = 0, .01, .03, .25, 1: x - y peaks at x = 3 (0.5).
    xs = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    assert knee(xs, np.array([1.0, 1.1, 1.3, 3.5, 11.0])) == 3.0
    assert math.isnan(knee(xs, np.array([4.0, 4.1, 4.0, 4.2, 4.1])))  # flat: noise, no knee


# -- the per-payout records do not change the simulation ---------------------------------------
def test_collect_payouts_keeps_samples_and_counts(tmp_path: Path) -> None:
    sc = with_overrides(load_scenario(SMOKE), duration=1800.0, incidents=[])
    plain = write_run(simulate(sc), tmp_path / "plain")
    result = simulate(sc, collect_payouts=True)
    collected = write_run(result, tmp_path / "collected")
    assert (plain / "samples.parquet").read_bytes() == (collected / "samples.parquet").read_bytes()
    rec = result.payouts
    assert rec is not None
    for status, code in PAYOUT_STATUS.items():
        if status != "pending":
            assert np.count_nonzero(rec.status == code) == result.stats.get(f"payouts_{status}", 0)
    assert len(rec.status) == result.stats["payouts_submitted"]  # every payout once (none in the DB insert)
    finished = rec.status != PAYOUT_STATUS["pending"]
    assert np.all(rec.submitted[finished] + rec.processing[finished] <= sc.duration + 1e-9)
    assert np.all(rec.queue_wait[~np.isnan(rec.queue_wait)] >= 0)


# -- sweep files ---------------------------------------------------------------------------------
def test_grid_expansion_labels_and_seeds(tmp_path: Path) -> None:
    text = TINY.replace(
        "service.payout_workers: [2, 6]",
        "network.latency:\n    fast: {broadcast: {median: 0.1}}\n    slow: {broadcast: {median: 2.0}}",
    )
    sweep = load_sweep(_write_sweep(tmp_path, text))
    assert [(p.x, p.labels["network.latency"]) for p in sweep.points] == [
        (0.1, "fast"),
        (0.1, "slow"),
        (0.4, "fast"),
        (0.4, "slow"),
    ]
    slow = sweep.points[1].scenario.network.latency
    assert slow["broadcast"].median == 2.0 and slow["get_balance"].median == 0.12  # merged, not replaced
    seeds = [s for p in sweep.points for s in p.seeds]
    assert len(set(seeds)) == len(seeds)
    again = load_sweep(_write_sweep(tmp_path, text, "again.yaml"))
    assert [p.seeds for p in again.points] == [p.seeds for p in sweep.points]
    assert [p.key for p in again.points] == [p.key for p in sweep.points]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("grid:\n  load.payout_rate: [0.1, 0.4]\n  service.payout_workers: [2, 6]", "grid: {}"),
            "grid: empty",
        ),
        (
            ("service.payout_workers: [2, 6]", "service.payout_workers: []"),
            "grid.service.payout_workers: no values",
        ),
        (
            ("service.payout_workers: [2, 6]", "service.payout_wrkers: [2, 6]"),
            "grid.service.payout_wrkers: the scenario has no parameter 'service.payout_wrkers'",
        ),
        (("load.payout_rate: [0.1, 0.4]", "load.payout_rate: [0.1, 9.0]"), "point 2 (load.payout_rate=9.0"),
        (("replications: 2", "replications: 1"), "replications: Input should be greater than or equal to 2"),
        (("seed: 3", "seeed: 3"), "seeed: unknown field"),
        (("warmup: 1m", "warmup: 20m"), "warmup: must be shorter than the run"),
    ],
)
def test_bad_sweeps_name_the_field(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = _write_sweep(tmp_path, TINY.replace(*change))
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("[0.1, 0.4]", "[0.1, .inf]"), "grid.load.payout_rate[1]: must be a finite number, got inf"),
        (("[0.1, 0.4]", "[.nan, 0.4]"), "grid.load.payout_rate[0]: must be a finite number, got nan"),
        (("[0.1, 0.4]", "['-Infinity', 0.4]"), "grid.load.payout_rate[0]: must be a finite number"),
        (("incidents: []", "incidents: []\n  load.api_rate: .inf"), "set.load.api_rate: must be a finite"),
        (
            ("service.payout_workers: [2, 6]", "network.latency: {slow: {broadcast: {median: .inf}}}"),
            "grid.network.latency.slow.broadcast.median: must be a finite number",
        ),
    ],
)
def test_non_finite_values_are_refused(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    path = _write_sweep(tmp_path, TINY.replace(*change))
    with pytest.raises(SweepError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_sweep(path)


def test_size_limits_refuse_huge_sweeps_before_work(tmp_path: Path) -> None:
    # 8 axes of 10 values: 10^8 points, refused from the counts alone (nothing is expanded).
    names = ("payout_workers", "db_pool", "hourly_limit", "daily_limit", "db_timeout", "request_timeout",
             "process.restart_seconds", "process.memory_limit_mb")  # fmt: skip
    axes = "\n".join(f"  service.{name}: {list(range(1, 11))}" for name in names)
    huge = TINY.split("grid:")[0] + "grid:\n" + axes + "\n"
    path = _write_sweep(tmp_path, huge)
    started = time.monotonic()
    with pytest.raises(SweepError, match=r"grid: 100000000 points \(10 x 10 x 10 x 10 x 10 x 10 x 10 x 10\)"):
        load_sweep(path)
    with pytest.raises(SweepError, match=r"replications: 1000000000 exceeds the limit of 1000 per point"):
        load_sweep(_write_sweep(tmp_path, TINY.replace("replications: 2", "replications: 1000000000")))
    assert time.monotonic() - started < 30  # refused up front, not after filling memory
    # At the limit is fine; one past it is not; raising the limit lets it through.
    tiny = _write_sweep(tmp_path, TINY)  # 2 x 2 = 4 points, 2 replications
    assert len(load_sweep(tiny, max_points=4, max_replications=2).points) == 4
    with pytest.raises(
        SweepError, match=r"grid: 4 points \(2 x 2\) exceed the limit of 3 \(raise it with --max-points\)"
    ):
        load_sweep(tiny, max_points=3)
    with pytest.raises(SweepError, match="raise it with --max-replications"):
        load_sweep(tiny, max_replications=1)


def test_cli_limits_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main as tronsim

    path = _write_sweep(tmp_path, TINY)
    out = tmp_path / "out"
    assert tronsim(["capacity", str(path), "--out", str(out), "--workers", "1", "--max-points", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    limit = "grid: 4 points (2 x 2) exceed the limit of 3 (raise it with --max-points)"
    assert err == [f"tronsim capacity: error: {path}: {limit}"]
    assert not out.exists()
    with pytest.raises(SystemExit) as info:  # argparse: a limit must be a positive whole number
        tronsim(["capacity", str(path), "--out", str(out), "--max-replications", "0"])
    assert info.value.code == 2 and "--max-replications: must be at least 1" in capsys.readouterr().err


def test_cli_bad_input_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main as tronsim

    path = _write_sweep(tmp_path, TINY.replace("service.payout_workers", "service.nonsense"))
    assert tronsim(["capacity", str(path), "--out", str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "service.nonsense" in err[0]
    assert not (tmp_path / "out").exists()  # nothing written for a sweep that cannot run


# -- running, resuming, outputs ------------------------------------------------------------------
class _Interrupt(Exception):
    pass


def test_interrupted_sweep_resumes_with_identical_results(tmp_path: Path) -> None:
    sweep = load_sweep(_write_sweep(tmp_path, TINY))
    executor = LocalExecutor(1)
    whole = run_sweep(sweep, tmp_path / "whole", executor, plot=False)
    assert whole.reused == 0

    seen: list[int] = []

    def stop_after_two(point: object) -> None:
        seen.append(1)
        if len(seen) == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        run_sweep(sweep, tmp_path / "resumed", executor, on_point=stop_after_two)
    assert len(list((tmp_path / "resumed" / "points").glob("*.parquet"))) == 2
    assert not (tmp_path / "resumed" / "results.parquet").exists()
    resumed = run_sweep(sweep, tmp_path / "resumed", executor)
    assert resumed.reused == 2
    pd.testing.assert_frame_equal(resumed.results, whole.results)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "resumed" / "results.parquet"),
        pd.read_parquet(tmp_path / "whole" / "results.parquet"),
    )
    # Same sweep, two local worker processes: the same numbers.
    two = LocalExecutor(2, preload=["simulator.capacity.run"])
    try:
        parallel = run_sweep(sweep, tmp_path / "parallel", two, plot=False)
    finally:
        two.close()
    pd.testing.assert_frame_equal(parallel.results, whole.results)

    out = tmp_path / "resumed"
    assert (out / "capacity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reused_points"] == 2 and len(summary["sustainable"]) == 2 * 2  # 2 configs x 2 SLOs
    reps = pd.read_parquet(out / "replications.parquet")
    assert len(reps) == 4 * 2 and list(reps["rep"]) == [0, 1] * 4
    # A replication's figures are those of simulating its scenario with its seed.
    point = sweep.points[3]
    direct = simulate(point.scenario.model_copy(update={"seed": point.seeds[1]}), collect_payouts=True)
    assert direct.payouts is not None
    assert reps.iloc[7]["payouts"] == np.count_nonzero(direct.payouts.submitted >= 60.0)


def test_cli_capacity_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main as tronsim

    path = _write_sweep(tmp_path, TINY.replace("[0.1, 0.4]", "[0.2]"))
    out = tmp_path / "out"
    assert tronsim(["capacity", str(path), "--out", str(out), "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "processing_p95 <= 30" in text and "reused 0 finished points" in text
    assert tronsim(["capacity", str(path), "--out", str(out), "--workers", "1", "--format", "json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["reused_points"] == 2 and len(data["points"]) == 2
    assert "reusing 2 of 2 finished points" in captured.err


@pytest.mark.skipif(
    importlib.util.find_spec("papermill") is None or importlib.util.find_spec("ipykernel") is None,
    reason="papermill and ipykernel are dev dependencies",
)
def test_notebook_executes_headless(tmp_path: Path) -> None:
    import papermill

    out = tmp_path / "capacity_planning.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "capacity_planning.ipynb"),
        str(out),
        parameters={
            "sweep_path": str(ROOT / "sweeps" / "capacity.yaml"),
            "out_dir": str(tmp_path / "nb"),
            "tiny": True,
        },
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
        stdout_file=io.StringIO(),
    )
    assert (tmp_path / "nb" / "results.parquet").exists()
    assert "max_rate" in out.read_text()
