"""The M/M/c preset against queueing theory: Erlang C at utilisations 0.5, 0.8 and 0.95."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from simulator.capacity import LocalExecutor, load_sweep, run_sweep
from simulator.model import simulate
from simulator.scenario import ScenarioError, load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parents[1]


def erlang_c(c: int, offered: float) -> float:
    """P(wait) in M/M/c with offered load a = lambda / mu (< c): Erlang's C formula."""
    top = offered**c / math.factorial(c) * c / (c - offered)
    return top / (sum(offered**k / math.factorial(k) for k in range(c)) + top)


def mean_wait(c: int, arrival_rate: float, service_mean: float) -> float:
    """Mean wait in queue: C(c, a) / (c mu - lambda)."""
    return erlang_c(c, arrival_rate * service_mean) / (c / service_mean - arrival_rate)


def test_erlang_c_reduces_to_textbook_cases() -> None:
    assert erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho
    assert mean_wait(1, 0.7, 1.0) == pytest.approx(0.7 / 0.3)  # rho / (mu - lambda)
    # M/M/2 at a = 1: a^2/2! * 2/(2-1) = 1 over 1 + 1 + 1, so P(wait) = 1/3.
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)


def test_mmc_preset_matches_erlang_c(tmp_path: Path) -> None:
    sweep = load_sweep(ROOT / "sweeps" / "mmc.yaml")
    base = load_scenario(ROOT / "scenarios" / "mmc.yaml")
    c, service_mean = base.service.payout_workers, base.network.service_mean
    assert (c, service_mean) == (4, 1.0)
    executor = LocalExecutor(2, preload=["simulator.capacity.run"])
    try:
        result = run_sweep(sweep, tmp_path / "mmc", executor, plot=False)
    finally:
        executor.close()
    rhos = []
    for row in result.results.itertuples():
        rhos.append(round(row.x * service_mean / c, 2))
        p_wait = erlang_c(c, row.x * service_mean)
        wq = mean_wait(c, row.x, service_mean)
        assert row.p_wait_lo <= p_wait <= row.p_wait_hi, (row.x, p_wait, row.p_wait_lo, row.p_wait_hi)
        assert row.queue_wait_mean_lo <= wq <= row.queue_wait_mean_hi, (row.x, wq)
        assert row.success_rate == 1.0 and row.breaker_open_s == 0.0  # nothing fails, nothing trips
        # Little's law on the queue's throughput: completions match arrivals.
        assert row.throughput == pytest.approx(row.x, rel=0.02)
    assert rhos == [0.5, 0.8, 0.95]


def test_mmc_mode_refuses_what_breaks_the_model() -> None:
    data = load_scenario(ROOT / "scenarios" / "mmc.yaml").model_dump()
    for path, value, message in (
        (("load", "bursts"), {"per_day": 2.0, "multiplier": 3.0, "duration": 600.0}, "bursts.per_day 0"),
        (("service", "queue_discipline"), "priority", "queue_discipline fifo"),
        (("load", "diurnal"), {"amplitude": 0.5, "peak_hour": 14.0, "weekend_factor": 1.0}, "amplitude 0"),
    ):
        bad = {**data, path[0]: {**data[path[0]], path[1]: value}}
        with pytest.raises(ScenarioError, match=message):
            scenario_from_dict(bad, source="mmc")
    bad = {**data, "incidents": [{"kind": "tron_outage", "start": 60.0, "duration": 60.0}]}
    with pytest.raises(ScenarioError, match="incidents are not allowed"):
        scenario_from_dict(bad, source="mmc")


def test_mmc_run_has_no_failures_or_rejections() -> None:
    sc = load_scenario(ROOT / "scenarios" / "mmc.yaml")
    result = simulate(sc.model_copy(update={"duration": 1800.0}), collect_payouts=True)
    assert result.stats["payouts_confirmed"] > 0
    assert "payouts_failed" not in result.stats and "payouts_rejected" not in result.stats
    assert set(result.stats) <= {"requests_arrived", "payouts_submitted", "payouts_confirmed", "http_202"}
