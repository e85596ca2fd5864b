"""The six alerting approaches, checked against the SRE Workbook's 99.9 % / 30 days figures."""

from __future__ import annotations

from typing import Any

import promql_parser
import pytest

from sloanalysis.slo.workbook import Approach, Measured, alert_table, approaches

S, M, H, D = 1_000, 60_000, 3_600_000, 86_400_000
PERIOD = 30 * D


@pytest.fixture(scope="module")
def rows() -> dict[tuple[int, str, float], dict[str, Any]]:
    table = alert_table(0.999, PERIOD, scrape_interval_ms=15 * S, evaluation_interval_ms=30 * S)
    return {(r["approach"], r["severity"], r["error_rate"]): r for r in table}


def test_shape(rows: dict[tuple[int, str, float], dict[str, Any]]) -> None:
    # Approaches 1-4 have one alert, 5 and 6 a page and a ticket alert; four error rates each.
    assert len(rows) == (4 + 2 * 2) * 4
    assert {k[0] for k in rows} == {1, 2, 3, 4, 5, 6}


def test_burn_rate_alert_detects_a_full_outage_in_51_84_seconds(rows: dict) -> None:
    r = rows[(4, "page", 1.0)]
    # 1h * 14.4 * 0.001 / 1.0 = 0.0144 h = 51.84 s, then at most a scrape and an evaluation.
    assert r["detection_ms"] == pytest.approx(51_840)
    assert r["detection_max_ms"] == pytest.approx(51_840 + 15_000 + 30_000)
    assert r["budget_consumed"] == pytest.approx(0.02)
    assert r["burn_rate"] == pytest.approx(1000)
    # After the outage the 1h window stays above 1.44 % for 1h * (1 - 0.0144) = 59.136 min.
    assert r["reset_ms"] == pytest.approx(59.136 * M)
    assert r["max_quiet_burn_rate"] == pytest.approx(14.4)
    # 10 % errors: 1h * 0.0144 / 0.1 = 8.64 min; 1 % (burn 10 < 14.4) never fires.
    assert rows[(4, "page", 0.1)]["detection_ms"] == pytest.approx(8.64 * M)
    assert rows[(4, "page", 0.01)]["detected"] is False


def test_target_error_rate_approach(rows: dict) -> None:
    r = rows[(1, "page", 1.0)]
    # 10m window reaches 0.1 % after 10m * 0.001 = 0.6 s; budget 10m / 30d.
    assert r["detection_ms"] == pytest.approx(600)
    assert r["budget_consumed"] == pytest.approx(10 / (30 * 24 * 60))
    assert r["reset_ms"] == pytest.approx(10 * M * 0.999)
    assert r["max_quiet_burn_rate"] == pytest.approx(1.0)
    # 0.1 % errors is exactly the objective: never alerts.
    assert rows[(1, "page", 0.001)]["detected"] is False


def test_increased_window_approach(rows: dict) -> None:
    r = rows[(2, "page", 1.0)]
    # 36h window: 36h * 0.001 = 129.6 s to detect, 5 % of the budget, about 36 h to reset.
    assert "1d12h" in r["rules"]
    assert r["detection_ms"] == pytest.approx(129_600)
    assert r["budget_consumed"] == pytest.approx(0.05)
    assert r["reset_ms"] == pytest.approx(36 * H * 0.999)


def test_alert_duration_approach(rows: dict) -> None:
    r = rows[(3, "page", 1.0)]
    # 1m window > 0.1 % after 0.06 s, then for: 1h. A full outage burns 1000/720 of the budget.
    assert r["detection_ms"] == pytest.approx(H + 60)
    assert r["budget_consumed"] == pytest.approx(1000 * (H + 60) / PERIOD)
    assert r["budget_consumed"] > 1.0
    assert r["reset_ms"] == pytest.approx(M * 0.999)


def test_multiple_burn_rates(rows: dict) -> None:
    # 1 % errors (burn 10): only 6h at 6 fires, after 6h * 6 / 10 = 3.6 h, having spent 5 %.
    r = rows[(5, "page", 0.01)]
    assert r["detection_ms"] == pytest.approx(3.6 * H)
    assert r["budget_consumed"] == pytest.approx(0.05)
    assert r["max_quiet_burn_rate"] == pytest.approx(6)
    # Ticket: 1d at 3 and 3d at 1 both spend 10 %; at burn 10: 1d * 3 / 10 = 7.2 h.
    t = rows[(5, "ticket", 0.01)]
    assert t["detection_ms"] == pytest.approx(7.2 * H)
    assert t["budget_consumed"] == pytest.approx(0.10)
    assert t["max_quiet_burn_rate"] == pytest.approx(1)
    # Long windows reset slowly: 6h * (1 - 6/1000) after a full outage.
    assert rows[(5, "page", 1.0)]["reset_ms"] == pytest.approx(6 * H * (1 - 0.006))


def test_multiwindow_resets_with_the_short_window(rows: dict) -> None:
    # Same detection as approach 5, but a pair clears when its short window does:
    # max(5m * (1 - 0.0144), 30m * (1 - 0.006)) after a full outage.
    r = rows[(6, "page", 1.0)]
    assert r["detection_ms"] == pytest.approx(51_840)
    assert r["reset_ms"] == pytest.approx(30 * M * 0.994)
    # At 1 % only the 6h/30m pair fires: 30m * (1 - 6/10) = 12 min.
    assert rows[(6, "page", 0.01)]["reset_ms"] == pytest.approx(12 * M)


def test_other_periods_scale() -> None:
    # 24h at 99.5 %: the first page pair is 5m at 5.76 (see test_rulegen); a full outage
    # (burn 200) is seen after 5m * 5.76 / 200 = 8.64 s, having spent 2 %.
    table = alert_table(0.995, D)
    r = next(x for x in table if x["approach"] == 4 and x["error_rate"] == 1.0)
    assert r["detection_ms"] == pytest.approx(8_640)
    assert r["budget_consumed"] == pytest.approx(0.02)
    assert next(x for x in table if x["approach"] == 2)["rules"].startswith("1h12m")  # 5 % of 24 h


def test_simulate_hook_adds_measured_columns() -> None:
    calls: list[tuple[int, str, float]] = []

    def simulate(approach: Approach, severity: str, error_rate: float) -> Measured:
        calls.append((approach.number, severity, error_rate))
        return Measured(detection_ms=1.0, budget_consumed=None, reset_ms=2.0)

    table = alert_table(0.999, PERIOD, error_rates=(1.0,), simulate=simulate)  # type: ignore[arg-type]
    assert len(calls) == len(table) == 8
    assert all(r["sim_detection_ms"] == 1.0 and r["sim_reset_ms"] == 2.0 for r in table)


def test_approaches_render_valid_promql() -> None:
    for a in approaches(PERIOD):
        for rule in a.alert_rules(lambda w: f"rate(errors_total[{w // 1000}s])", 0.999, "Svc"):
            promql_parser.parse(rule["expr"])
    third = approaches(PERIOD)[2].alert_rules(lambda w: "x", 0.999, "Svc")
    assert third[0]["for"] == "1h"


def test_objective_out_of_range() -> None:
    with pytest.raises(ValueError):
        alert_table(1.0, PERIOD)
