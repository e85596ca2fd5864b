"""The Dask executor: a LocalCluster on 127.0.0.1 gives the local executor's results exactly."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from simulator.capacity import DaskExecutor, ExecutorError, LocalExecutor, load_sweep, run_sweep

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """
name: dask
scenario: {scenario}
duration: 10m
seed: 9
replications: 2
set:
  incidents: []
grid:
  load.payout_rate: [0.1, 0.5]
  service.payout_workers: [2, 4]
"""


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as c:
        yield c


def test_dask_results_identical_to_local(tmp_path: Path, cluster) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.replace("{scenario}", str(ROOT / "scenarios" / "smoke.yaml")), encoding="utf-8")
    sweep = load_sweep(path)
    local = run_sweep(sweep, tmp_path / "local", LocalExecutor(1), plot=False)
    executor = DaskExecutor(cluster.scheduler_address, timeout=30)
    try:
        assert executor.workers == 2
        remote = run_sweep(sweep, tmp_path / "dask", executor, plot=False)
    finally:
        executor.close()
    pd.testing.assert_frame_equal(remote.replications, local.replications)
    pd.testing.assert_frame_equal(remote.results, local.results)


def test_unreachable_scheduler_is_a_user_error() -> None:
    started = time.monotonic()
    with pytest.raises(
        ExecutorError, match=r"--scheduler tcp://127.0.0.1:9: cannot reach the Dask scheduler"
    ):
        DaskExecutor("tcp://127.0.0.1:9", timeout=2)
    assert time.monotonic() - started < 30  # bounded, not a hang (no timing precision asserted)


def test_cli_unreachable_scheduler_exit_2(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(SWEEP.replace("{scenario}", str(ROOT / "scenarios" / "smoke.yaml")), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "capacity", str(sweep), "--out", str(tmp_path / "out"),
         "--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    last = lines[0]
    assert last.startswith("tronsim capacity: error: --scheduler tcp://127.0.0.1:9: cannot reach")
    assert not (tmp_path / "out").exists()
