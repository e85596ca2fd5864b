"""``make bench``: every benchmark, each printing ratios against a baseline measured in the same run.

The query and backtest benchmarks need the 30-day reference run with its OpenMetrics file and
backfilled blocks; they are made once under ``runs/`` (about 3 minutes) and reused afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIOS = ROOT / "scenarios"
RUN_30D = ROOT / "runs" / "reference-30d"
BLOCKS_30D = ROOT / "runs" / "reference-30d-blocks"


def _ensure_30d_run() -> None:
    if not (RUN_30D / "metrics.om").is_file():
        print("== making runs/reference-30d (once)", flush=True)
        tronsim = str(Path(sys.executable).with_name("tronsim"))
        scenario = str(SCENARIOS / "reference-30d.yaml")
        subprocess.check_call([tronsim, "run", scenario, "--out", str(RUN_30D), "--openmetrics"])


def main() -> int:
    _ensure_30d_run()
    runs = [
        ["bench_simulator.py", str(SCENARIOS / "reference.yaml"), str(SCENARIOS / "reference-30d.yaml")],
        ["bench_query.py", str(RUN_30D), "--blocks", str(BLOCKS_30D)],
        ["bench_native_histograms.py"],
        ["bench_backtest.py", str(RUN_30D), "--blocks", str(BLOCKS_30D)],
        ["bench_rules.py"],
        ["bench_capacity.py"],
        ["bench_alert_validation.py"],
        ["bench_live.py"],
    ]  # fmt: skip
    status = 0
    for script, *args in runs:
        print(f"== {script}", flush=True)
        status |= subprocess.call([sys.executable, str(HERE / script), *args])
    return status


if __name__ == "__main__":
    sys.exit(main())
