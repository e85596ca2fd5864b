"""A real promtool backfills a smoke run and a real Prometheus returns exactly the simulated values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from prometheus_api_client import PrometheusConnect
from promserver import backfill, running_prometheus

from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario
from sloanalysis.store import SeriesStore, is_stale

SMOKE = Path(__file__).resolve().parents[1] / "scenarios" / "smoke.yaml"
pytestmark = pytest.mark.prometheus


def _one(store: SeriesStore, name: str, **labels: str):
    hits = [
        s for s in store if dict(s.labels)["__name__"] == name and labels.items() <= dict(s.labels).items()
    ]
    assert len(hits) == 1
    return hits[0]


def test_backfilled_smoke_run_answers_exactly(tmp_path: Path) -> None:
    result = simulate(load_scenario(SMOKE))
    run = write_run(result, tmp_path / "run", openmetrics=True)
    store = SeriesStore.from_parquet(run / "samples.parquet")
    blocks = backfill(run / "metrics.om", tmp_path / "blocks")
    crash = next(i for i in result.incidents if i["kind"] == "service_crash")
    with running_prometheus(blocks) as url:
        prom = PrometheusConnect(url=url, disable_ssl=True)

        def instant(expr: str, at_ms: int) -> dict[tuple[tuple[str, str], ...], float]:
            out = prom.custom_query(expr, params={"time": f"{at_ms / 1000:.3f}"})
            return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in out}

        # Chosen series at chosen instants: exactly the simulated values.
        chosen = [
            _one(store, "slo_total_requests_total"),
            _one(
                store, "tron_payment_requests_total", router_type="v0", priority="normal", status="confirmed"
            ),
            _one(
                store,
                "tron_payout_processing_duration_seconds_bucket",
                router_type="kyc",
                status="confirmed",
                le="5.0",
            ),
            _one(store, "tron_memory_usage_bytes"),
            _one(store, "tron_hourly_limit_usage_usdt"),
            _one(store, "tron_circuit_breaker_status"),
        ]
        for series in chosen:
            live = ~is_stale(series.values)
            ts, vs = series.timestamps[live], series.values[live]
            for i in np.linspace(0, ts.size - 1, 7).astype(int):
                got = instant(series.name, int(ts[i]))
                assert got[series.labels] == vs[i], (series.name, int(ts[i]))

        # The crash: up is 0 inside the window; raw samples show the gap and the counter reset.
        up = _one(store, "up")
        inside = (up.timestamps >= crash["start_ms"]) & (up.timestamps < crash["end_ms"])
        for t in up.timestamps[inside][:3]:
            assert instant("up", int(t))[up.labels] == 0.0
        total = _one(store, "slo_total_requests_total")
        end = int(total.timestamps[total.timestamps >= crash["end_ms"]][3])
        raw = prom.custom_query("slo_total_requests_total[15m]", params={"time": f"{end / 1000:.3f}"})
        got_ts = np.array([round(float(t) * 1000) for t, _ in raw[0]["values"]], dtype=np.int64)
        got_vs = np.array([float(v) for _, v in raw[0]["values"]])
        # Prometheus 2.42 closes range selectors on the left (3.x would exclude the first sample).
        window = (total.timestamps >= end - 15 * 60_000) & (total.timestamps <= end) & ~is_stale(total.values)
        np.testing.assert_array_equal(got_ts, total.timestamps[window])
        np.testing.assert_array_equal(got_vs, total.values[window])
        gaps = np.diff(got_ts)
        assert gaps.max() >= crash["end_ms"] - crash["start_ms"]  # no samples while down
        assert np.any(np.diff(got_vs) < 0)  # the reset after the restart
        # A counter reset is what rate() must see through: increase over the window is positive.
        inc = instant("increase(slo_total_requests_total[15m])", end)
        assert next(iter(inc.values())) > 0
