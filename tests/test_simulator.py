"""The simulation as a whole: reproducibility, exported values, incidents and scrape semantics."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main as tronsim
from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario, with_overrides
from sloanalysis.store import SeriesStore, is_stale

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"


@pytest.fixture(scope="module")
def smoke_result():
    return simulate(load_scenario(SMOKE))


def _series(store: SeriesStore, name: str, **labels: str):
    matches = [
        s
        for s in store
        if dict(s.labels).get("__name__") == name and labels.items() <= dict(s.labels).items()
    ]
    assert len(matches) == 1, (name, labels, len(matches))
    return matches[0]


def test_same_seed_byte_identical_other_seed_different(tmp_path: Path) -> None:
    sc = with_overrides(load_scenario(SMOKE), duration=1800.0, incidents=[])
    paths = []
    for i, seed in enumerate((11, 11, 12)):
        out = write_run(simulate(with_overrides(sc, seed=seed)), tmp_path / f"r{i}")
        paths.append((out / "samples.parquet").read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def test_final_samples_equal_the_registry_at_the_end(smoke_result, tmp_path: Path) -> None:
    out = write_run(smoke_result, tmp_path / "run")
    store = SeriesStore.from_parquet(out / "samples.parquet")
    final = smoke_result.final_samples
    assert final, "the smoke run must end with the service up"
    checked = 0
    for series in store:
        labels = dict(series.labels)
        if labels["__name__"] == "up":
            continue
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("job", "instance")))
        assert series.values[-1] == final[key], key
        checked += 1
    assert checked == len(final)


def test_crash_resets_counters_marks_stale_and_up_zero(smoke_result) -> None:
    sc = smoke_result.scenario
    crash = next(i for i in smoke_result.incidents if i["kind"] == "service_crash")
    store = smoke_result.store
    up = _series(store, "up")
    down = (up.timestamps >= crash["start_ms"]) & (up.timestamps < crash["end_ms"])
    assert down.any() and np.all(up.values[down] == 0.0)
    assert np.all(up.values[~down] == 1.0)
    total = _series(store, "slo_total_requests_total")
    # Exactly one stale marker: at the first failed scrape.
    stale = is_stale(total.values)
    assert stale.sum() == 1
    first_failed = up.timestamps[down][0]
    assert total.timestamps[stale][0] == first_failed
    # No samples while down, and the counter restarts from a small value after the restart.
    inside = (total.timestamps > first_failed) & (total.timestamps < crash["end_ms"])
    assert not inside.any()
    before = total.values[total.timestamps < first_failed][-1]
    after = total.values[total.timestamps >= crash["end_ms"]][0]
    assert before > 10_000 and after < before / 100
    # Scrapes are every scrape_interval, offset from the start.
    assert np.all(np.diff(up.timestamps) == round(sc.scrape_interval * 1000))
    assert up.timestamps[0] == sc.start_ms + round(sc.scrape_offset * 1000)


def test_outage_opens_breaker_and_fails_payouts(smoke_result) -> None:
    outage = next(i for i in smoke_result.incidents if i["kind"] == "tron_outage")
    opened = [t for t in smoke_result.transitions if t["to"] == "open" and t["reason"] == "failures"]
    assert opened
    first_open_ms = opened[0]["epoch"] * 1000
    assert outage["start_ms"] <= first_open_ms < outage["start_ms"] + 120_000
    status = _series(smoke_result.store, "tron_circuit_breaker_status")
    inside = (status.timestamps > first_open_ms) & (status.timestamps < outage["end_ms"])
    assert set(np.unique(status.values[inside])) <= {1.0, 2.0}
    errors = [
        s
        for s in smoke_result.store
        if dict(s.labels)["__name__"] == "tron_network_errors_total"
        and dict(s.labels)["error_type"] == "node_unavailable"
    ]
    assert sum(s.values[s.timestamps < outage["start_ms"]].max() for s in errors) == 0.0
    # The breaker opens on the fifth consecutive failure of the money path (balance, broadcast).
    money_path = [s for s in errors if dict(s.labels)["operation"] in ("get_balance", "broadcast")]
    assert sum(s.values[s.timestamps <= first_open_ms + 15_000].max() for s in money_path) >= 5


def test_credential_stuffing_drives_unauthorized_rate(smoke_result) -> None:
    inc = next(i for i in smoke_result.incidents if i["kind"] == "credential_stuffing")
    auth = _series(smoke_result.store, "tron_authentication_failures_total", failure_type="unauthorized")
    t, v = auth.timestamps, auth.values
    inside = (t >= inc["start_ms"]) & (t <= inc["end_ms"])
    rate = (v[inside][-1] - v[inside][0]) / ((t[inside][-1] - t[inside][0]) / 1000)
    expected = inc["params"]["rate"] + 3.0 * 0.005  # the burst plus normal unauthenticated traffic
    assert math.isclose(rate, expected, rel_tol=0.1)


def test_payout_counters_are_consistent(smoke_result) -> None:
    stats = smoke_result.stats
    assert stats["payouts_submitted"] == sum(
        stats.get(f"payouts_{s}", 0) for s in ("confirmed", "failed", "rejected")
    )
    # Limits: usage never exceeds the configured limits.
    sc = smoke_result.scenario
    for name, limit in (
        ("tron_hourly_limit_usage_usdt", sc.service.hourly_limit),
        ("tron_daily_limit_usage_usdt", sc.service.daily_limit),
    ):
        s = _series(smoke_result.store, name)
        vals = s.values[~is_stale(s.values)]
        assert vals.max() <= limit


BAD_SCENARIOS = {
    "unknown field": (
        "load:\n  api_rate: 1\n  payout_rate: 0.1\nduration: 1h\nspeed: 3\n",
        "speed: unknown field",
    ),
    "wrong type": ("load:\n  api_rate: fast\n  payout_rate: 0.1\nduration: 1h\n", "load.api_rate"),
    "negative duration": ("load:\n  api_rate: 1\n  payout_rate: 0.1\nduration: -1h\n", "duration"),
    "incident outside": (
        "load:\n  api_rate: 1\n  payout_rate: 0.1\nduration: 1h\n"
        "incidents:\n  - {kind: tron_outage, start: 50m, duration: 20m}\n",
        "incidents[0]: window 3000s..4200s lies outside the run",
    ),
    "start in future": (
        "start: 2999-01-01T00:00:00Z\nload:\n  api_rate: 1\n  payout_rate: 0.1\nduration: 1h\n",
        "start: the run must end in the past",
    ),
    "bad yaml": ("load: [\n", "invalid YAML"),
    "unknown incident param": (
        "load:\n  api_rate: 1\n  payout_rate: 0.1\nduration: 1h\n"
        "incidents:\n  - {kind: tron_outage, start: 5m, duration: 2m, params: {speed: 2}}\n",
        "incidents[0].params.speed: unknown parameter",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENARIOS))
def test_bad_scenarios_one_line_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, fragment = BAD_SCENARIOS[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    out = tmp_path / "out"
    assert tronsim(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and fragment in err, err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]  # nothing half-written


def test_unreadable_file_and_unwritable_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert tronsim(["validate", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: cannot read" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert tronsim(["run", str(SMOKE), "--duration", "10m", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write the run directory" in err


def test_cli_run_writes_a_complete_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert tronsim(["run", str(SMOKE), "--out", str(out), "--duration", "40m", "--logs", "--seed", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".tronsim-run",  # the marker that lets a later run replace it
        "events.jsonl",
        "incidents.csv",
        "run.json",
        "samples.parquet",
    ]
    import json

    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    names = {e["event"] for e in events}
    assert {"payout_request_created", "payout_successful", "circuit_breaker_event"} <= names
    assert all(e["timestamp"].startswith("2026-01-06T1") for e in events)
    meta = json.loads((out / "run.json").read_text())
    assert meta["seed"] == 3 and meta["counts"]["series"] == 207
    assert "payouts confirmed" in capsys.readouterr().out
