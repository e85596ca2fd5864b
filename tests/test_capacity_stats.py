"""Capacity statistics: bounded intervals, a sustainable rate robust to noise, whole labels, the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.capacity import load_sweep
from simulator.capacity.figures import axis_label, capacity_figure, config_legend
from simulator.capacity.metrics import METRICS
from simulator.capacity.stats import (
    aggregate,
    config_ids,
    crossing,
    measure_interval,
    monotone_fit,
    proportion_interval,
    replication_warning,
    sustainable,
    sustainable_load,
)
from simulator.capacity.sweep import Slo
from sloanalysis.intervals import wilson_interval

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
T1 = math.tan(math.pi * 0.475)  # Student t 0.975 quantile, one degree of freedom (Cauchy)

SWEEP = """
name: labels
scenario: {scenario}
duration: 10m
warmup: 1m
seed: 5
replications: 2
set:
  incidents: []
grid:
  load.payout_rate: [0.2]
  service.payout_workers: [4, 8]
  network.confirmation_depth: {on_chain: 1, solidified: 19}
"""


def _expit(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


# -- the monotone fit ----------------------------------------------------------------------------
def test_monotone_fit_pools_violators_by_hand() -> None:
    assert monotone_fit(np.array([1.0, 3.0, 2.0, 4.0]), increasing=True) == pytest.approx([1, 2.5, 2.5, 4])
    # Weights 1 and 3 on the violating pair: (3*1 + 2*3) / 4 = 2.25.
    fit = monotone_fit(np.array([1.0, 3.0, 2.0, 4.0]), np.array([1.0, 1.0, 3.0, 1.0]), increasing=True)
    assert fit == pytest.approx([1, 2.25, 2.25, 4])
    assert monotone_fit(np.array([3.0, 1.0, 2.0]), increasing=False) == pytest.approx([3, 1.5, 1.5])
    fit = monotone_fit(np.array([1.0, math.nan, 0.5]), increasing=True)
    assert math.isnan(fit[1]) and fit[[0, 2]] == pytest.approx([0.75, 0.75])


# -- the sustainable rate ------------------------------------------------------------------------
X = np.array([0.1, 0.3, 0.6, 0.9, 1.2])
# The issue: 4 workers on-chain, success 0.9959, 0.9953, 0.9955 at 0.3, 0.6, 0.9 payouts/s; the
# 0.1 point reads 0.9931 from a few hundred payouts. Finished payouts grow with the rate.
SUCCESS = np.array([0.9931, 0.9959, 0.9953, 0.9955, 0.90])
FINISHED = np.array([330.0, 990.0, 1980.0, 2970.0, 3960.0])


def test_first_crossing_of_the_noisy_curve_was_below_the_grid() -> None:
    assert crossing(X, SUCCESS, 0.995, False) == (0.1, "below grid")  # the issue's complaint


def test_noisy_success_curve_keeps_the_slo_up_to_its_real_break() -> None:
    # Pooling by finished payouts: 0.1 and 0.3 -> 1313.664/1320 = 0.995200; with 0.6 ->
    # 3284.358/3300 = 0.995260; with 0.9 -> 6240.993/6270 = 0.995374 >= 0.995; 1.2 stays 0.90.
    pooled = (SUCCESS[:4] * FINISHED[:4]).sum() / FINISHED[:4].sum()
    assert pooled == pytest.approx(0.995374, abs=1e-6)
    crossing_at = 0.9 + (0.995 - pooled) * 0.3 / (0.90 - pooled)
    lo_curve = np.array([0.9818, 0.993, 0.994, 0.9945, 0.85])  # bad side: never pools above 0.995
    hi_curve = np.array([1.0, 0.998, 0.997, 0.997, 0.95])  # good side: fails first at 1.2
    limit = sustainable_load(X, (SUCCESS, lo_curve, hi_curve), 0.995, False, FINISHED)
    assert limit["bound"] == "interpolated"
    assert limit["max_rate"] == pytest.approx(crossing_at) and limit["max_rate"] > 0.9
    assert (limit["max_rate_lo"], limit["max_rate_hi"]) == (0.0, 1.2)


def test_processing_time_limit_and_its_bracket_by_hand() -> None:
    est = np.array([5.0, 12.0, 8.0, 40.0, 90.0])  # 12 then 8: noise, pooled to 10 and 10
    worse = np.array([6.0, 14.0, 35.0, 60.0, 120.0])  # breaks 30 s at 0.6: keeps up to 0.3
    better = np.array([4.0, 6.0, 7.0, 25.0, 70.0])  # breaks first at 1.2
    limit = sustainable_load(X, (est, worse, better), 30.0, True)
    assert limit["max_rate"] == pytest.approx(0.6 + (30 - 10) * 0.3 / (40 - 10))  # 0.8
    assert (limit["max_rate_lo"], limit["max_rate_hi"], limit["bound"]) == (0.3, 1.2, "interpolated")
    # Every point keeps the SLO even on the optimistic side: no upper end inside the grid.
    fine = sustainable_load(X, (est / 10, worse / 10, better / 10), 30.0, True)
    assert fine["bound"] == "above grid" and fine["max_rate"] == 1.2 and math.isnan(fine["max_rate_hi"])
    assert fine["max_rate_lo"] == 1.2
    # No point keeps it: below the grid, nothing assured.
    bad = sustainable_load(X, (est + 100, worse + 100, better + 100), 30.0, True)
    assert (bad["bound"], bad["max_rate"], bad["max_rate_lo"], bad["max_rate_hi"]) == (
        "below grid",
        0.1,
        0.0,
        0.1,
    )


def test_sustainable_over_a_results_frame() -> None:
    frame = pd.DataFrame(
        {
            "config": "service.payout_workers=4, network.confirmation_depth=on_chain",
            "config_id": "C1",
            "x": X,
            "success_rate": SUCCESS,
            "success_rate_lo": SUCCESS - 0.01,
            "success_rate_hi": np.minimum(SUCCESS + 0.01, 1.0),
            "finished": FINISHED,
            "processing_p95": [5.0, 6.0, 8.0, 14.0, 40.0],
            "processing_p95_lo": [4.0, 5.0, 6.0, 10.0, 30.5],
            "processing_p95_hi": [6.0, 7.0, 10.0, 20.0, 50.0],
        }
    )
    limits = sustainable(frame, Slo(processing_p95=30.0, success_rate=0.995)).set_index("slo")
    success = limits.loc["success_rate >= 0.995"]
    assert success["bound"] == "interpolated" and success["max_rate"] > 0.9
    p95 = limits.loc["processing_p95 <= 30"]
    assert p95["max_rate"] == pytest.approx(0.9 + 16 * 0.3 / 26)  # 14 s at 0.9, 40 s at 1.2
    assert p95["config_id"] == "C1"


# -- intervals inside their bounds ---------------------------------------------------------------
def test_proportion_interval_of_two_replications_by_hand() -> None:
    est, lo, hi = proportion_interval([995, 1000], [1000, 1000])
    assert est == pytest.approx(1995 / 2000)
    # Logit t: empirical logits log(995.5/5.5) and log(1000.5/0.5); t(1) * |difference| / 2.
    a, b = math.log(995.5 / 5.5), math.log(1000.5 / 0.5)
    mid, half = (a + b) / 2, T1 * abs(a - b) / 2
    wilson = wilson_interval(1995, 2000)
    assert lo == pytest.approx(min(_expit(mid - half), wilson[0]))
    assert hi == pytest.approx(max(_expit(mid + half), wilson[1]))
    assert 0.0 <= lo <= est <= hi <= 1.0
    # All 800 confirmed in both: equal logits give the point 800.5/801, inside Wilson's
    # interval for 1600 of 1600, which decides both ends (the upper one 1 exactly).
    est, lo, hi = proportion_interval([800, 800], [800, 800])
    assert est == 1.0 and hi == 1.0 and lo == pytest.approx(wilson_interval(1600, 1600)[0])
    assert lo < 800.5 / 801
    assert all(math.isnan(v) for v in proportion_interval([0, 0], [0, 0]))


def test_the_issue_s_negative_ends_are_gone() -> None:
    # Two replications: P95 283 [-459, 1030] and throughput 0.0975 [-0.0402, 0.235] before.
    reps = pd.DataFrame({"processing_p95": [20.0, 546.0], "throughput": [0.08666, 0.10834]})
    mean, lo, hi = measure_interval("processing_p95", reps)
    assert (mean, lo) == (283.0, 0.0) and hi == pytest.approx(283 + T1 * 263)
    mean, lo, hi = measure_interval("throughput", reps)
    assert lo == 0.0 and mean == pytest.approx(0.0975) and hi == pytest.approx(0.0975 + T1 * 0.01084)


def test_aggregate_of_two_replications_stays_in_bounds(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.replace("{scenario}", str(SMOKE)), encoding="utf-8")
    sweep = load_sweep(path)
    rng = np.random.default_rng(12)
    rows = []
    for point in sweep.points:
        for rep in range(2):
            row = {m: float(rng.exponential(5.0)) for m in METRICS}  # wildly spread, never negative
            row["finished"] = float(rng.integers(0, 400))
            row["confirmed"] = float(rng.integers(0, int(row["finished"]) + 1))
            row["asked"] = float(rng.integers(1, 400))
            row["waited"] = float(rng.integers(0, int(row["asked"]) + 1))
            rows.append({"point": point.index, "rep": rep, **row})
    results = aggregate(sweep.points, sweep.params, pd.DataFrame(rows))
    for metric in METRICS:
        assert (results[f"{metric}_lo"] >= 0).all(), metric
        assert (results[f"{metric}_lo"] <= results[metric] + 1e-12).all(), metric
        assert (results[metric] <= results[f"{metric}_hi"] + 1e-12).all(), metric
    for metric in ("success_rate", "p_wait"):
        assert (results[f"{metric}_hi"] <= 1.0).all()


def test_warning_under_five_replications() -> None:
    assert replication_warning(5) is None and replication_warning(30) is None
    text = replication_warning(2)
    assert text is not None and "only 2 replications" in text and "5" in text


# -- labels and the figure -----------------------------------------------------------------------
def test_configuration_labels_stay_whole_and_distinct(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.replace("{scenario}", str(SMOKE)), encoding="utf-8")
    configs = list(dict.fromkeys(p.config for p in load_sweep(path).points))
    assert configs == [
        "service.payout_workers=4, network.confirmation_depth=on_chain",
        "service.payout_workers=4, network.confirmation_depth=solidified",
        "service.payout_workers=8, network.confirmation_depth=on_chain",
        "service.payout_workers=8, network.confirmation_depth=solidified",
    ]
    assert list(config_ids(configs).values()) == ["C1", "C2", "C3", "C4"]
    legend = config_legend(configs, width=40)  # wrapped, not cut: every word is still there
    assert [" ".join(text.split()) for text in legend] == [f"C{i}: {c}" for i, c in enumerate(configs, 1)]


def _figure_frame() -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for cid, workers, scale in (("C1", 4, 1.0), ("C2", 8, 0.5)):
        for x, p95 in zip(X, (2.0, 3.0, 5.0, 20.0, 80.0), strict=True):
            row = {"config": f"service.payout_workers={workers}", "config_id": cid, "x": x, "finished": 100.0}
            values = {
                "processing_p50": p95 / 2,
                "processing_p95": p95 * scale,
                "processing_p99": p95 * 2,
                "success_rate": 0.999,
                "throughput": x * 0.99,
            }
            for m, v in values.items():
                hi = min(v * 1.1, 1.0) if m == "success_rate" else v * 1.1
                row |= {m: v, f"{m}_lo": v * 0.9, f"{m}_hi": hi}
            rows.append(row)
    results = pd.DataFrame(rows)
    return results, sustainable(results, Slo())


def test_figure_has_unit_markers_and_three_panels() -> None:
    results, limits = _figure_frame()
    fig = capacity_figure(
        results, x_label="load.payout_rate", slo_seconds=30.0, slo_success=0.995, limits=limits
    )
    axes = fig.get_axes()
    assert len(axes) == 3
    assert axes[-1].get_xlabel() == "load.payout_rate (payouts/s)" == axis_label("load.payout_rate")
    assert "success" in axes[1].get_ylabel() and "throughput" in axes[2].get_ylabel()
    rate = limits.groupby("config", sort=False)["max_rate"].min()
    vertical = [float(line.get_xdata()[0]) for line in axes[0].get_lines() if len(set(line.get_xdata())) == 1]
    for v in rate:
        assert any(v == pytest.approx(w) for w in vertical)
    knee_markers = [
        line for line in axes[0].get_lines() if line.get_marker() == "v" and len(line.get_xdata())
    ]
    assert knee_markers  # the P95 curve bends at 0.9
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["C1: service.payout_workers=4", "C2: service.payout_workers=8"]


def test_cli_prints_warning_once_and_full_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simulator.cli import main as tronsim

    path = tmp_path / "s.yaml"
    path.write_text(SWEEP.replace("{scenario}", str(SMOKE)), encoding="utf-8")
    out = tmp_path / "out"
    assert tronsim(["capacity", str(path), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("only 2 replications") == 1
    for config in ("service.payout_workers=4, network.confirmation_depth=on_chain",
                   "service.payout_workers=8, network.confirmation_depth=solidified"):  # fmt: skip
        assert config in captured.out
    assert "load.payout_rate (payouts/s)" in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["warnings"]) == 1 and set(summary["configs"]) == {"C1", "C2", "C3", "C4"}
    assert tronsim(["capacity", str(path), "--out", str(out), "--workers", "1", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "only 2 replications" in data["warnings"][0]
    assert all(0.0 <= row["success_rate_lo"] <= row["success_rate_hi"] <= 1.0 for row in data["points"])


def test_pooled_proportion_interval_covers_a_known_success_rate() -> None:
    # 200 seeded sweeps of 3 replications of 400 payouts at a true success rate of 0.99: the
    # hull of two 95 % intervals covers at least as often as either (here 90 % or more).
    rng = np.random.default_rng(1412)
    true_p, hits = 0.99, 0
    for _ in range(200):
        k = rng.binomial(400, true_p, size=3)
        _, lo, hi = proportion_interval(k, [400, 400, 400])
        hits += lo <= true_p <= hi
    assert hits >= 180
