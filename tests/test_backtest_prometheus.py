"""Backtest vs a real Prometheus 2.42 on the backfilled smoke run.

A live server evaluates rules in real time, not over the past, so the reference is
``promtool tsdb create-blocks-from rules`` against a server holding the run. promtool evaluates
every rule (alerting ones too) as a range query at the group's evaluation times
(``Group.EvalTimestamp``: the per-group hash offset) and writes the raw result under the rule's
name; it keeps no ``for``/``ALERTS`` state. So what is comparable, and compared here exactly:

- recording rules: every sample's timestamp and labels exactly, values to 1e-12 relative
  (a few of them differ in the last bits: the order of float additions in ``sum``);
- alerting rules: the times at which each alert's condition held, i.e. the samples of
  ``ALERTS_FOR_STATE`` (written while an alert is pending or firing, which is exactly while its
  expression returns it), and the evaluation times themselves (hash offset, to the millisecond).

The ``for``/``keep_firing_for`` state machine on top is checked by hand in test_alerting.py.
promtool skips evaluation times in the last second of each 2-hour block (it truncates the block
end to whole seconds); those are left out of the comparison.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from promserver import PROMTOOL, backfill, running_prometheus

from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.model import AlertingRule, RecordingRule, RuleGroup, load_rules
from sloanalysis.sources.openmetrics import read_openmetrics
from sloanalysis.sources.prometheus import fetch_samples
from sloanalysis.store import SeriesStore, is_stale

REPO = Path(__file__).resolve().parents[1]
BLOCK_MS = 2 * 3_600_000
pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SeriesStore]:
    out = tmp_path_factory.mktemp("smoke") / "run"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator.cli",
            "run",
            str(REPO / "scenarios/smoke.yaml"),
            "--out",
            str(out),
            "--openmetrics",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    blocks = backfill(out / "metrics.om", out.parent / "blocks")
    return blocks, read_openmetrics(out / "metrics.om")


def _promtool_rules(url: str, rule_file: Path, start_s: int, end_s: int, out: Path, interval: str) -> None:
    subprocess.run(
        [
            PROMTOOL,
            "tsdb",
            "create-blocks-from",
            "rules",
            f"--url={url}",
            f"--start={start_s}",
            f"--end={end_s}",
            f"--eval-interval={interval}",
            f"--output-dir={out}",
            "--quiet",
            str(rule_file),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def _compare(groups: list[RuleGroup], rule_file: Path, blocks: Path, store: SeriesStore, tmp: Path) -> int:
    lo, hi = store.time_range()  # type: ignore[misc]
    start_s, end_s = lo // 1000 + 60, hi // 1000 - 60
    out = tmp / "rule-blocks"
    with running_prometheus(blocks) as url:
        _promtool_rules(url, rule_file, start_s, end_s, out, "15s")
    names = [r.name for g in groups for r in g.rules]
    with running_prometheus(out) as url2:
        theirs = fetch_samples(
            url2, f'{{__name__=~"{"|".join(names)}"}}', start_s * 1000, end_s * 1000, lookback_ms=0
        )
    # the evaluation grid: promtool's timestamps against the group hash offset
    stamps = np.unique(np.concatenate([s.timestamps for s in theirs]))
    ours = evaluate_rules(
        groups,
        store,
        start_s * 1000,
        end_s * 1000,
        default_interval_ms=15_000,
        prometheus2=True,
        eval_offset="hash",
    )
    grid = ours.eval_times(groups[0].name)
    assert abs(int(stamps[0] % 15_000) - int(grid[0] % 15_000)) <= 1  # round vs truncation of ns
    exact = evaluate_rules(
        groups,
        store,
        start_s * 1000,
        end_s * 1000,
        default_interval_ms=15_000,
        prometheus2=True,
        eval_offset=int(stamps[0] % 15_000),
    )
    keep = lambda ts: (ts % BLOCK_MS) < BLOCK_MS - 1000  # noqa: E731
    compared = 0
    for g in groups:
        for r in g.rules:
            mine: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
            if isinstance(r, RecordingRule):
                for s in exact.series.select([]):
                    if s.name == r.record:
                        m = ~is_stale(s.values)
                        mine[s.labels] = (s.timestamps[m], s.values[m])
            else:
                for s in exact.series:
                    d = dict(s.labels)
                    if d.get("__name__") == "ALERTS_FOR_STATE" and d.get("alertname") == r.name:
                        m = ~is_stale(s.values)
                        d.pop("__name__")
                        mine[tuple(sorted(d.items()))] = (s.timestamps[m], s.values[m])
            got: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
            for s in theirs:
                if s.name != r.name:
                    continue
                d = dict(s.labels)
                if isinstance(r, AlertingRule):
                    d.pop("__name__")
                    d["alertname"] = r.name
                got[tuple(sorted(d.items()))] = (s.timestamps, s.values)
            assert set(got) == set(mine), r.name
            for key, (ts, vs) in got.items():
                mts, mvs = mine[key]
                assert ts[keep(ts)].tolist() == mts[keep(mts)].tolist(), (r.name, key)
                if isinstance(r, RecordingRule):
                    # same samples; values agree to float summation order (a few ulps)
                    np.testing.assert_allclose(vs[keep(ts)], mvs[keep(mts)], rtol=1e-12, atol=1e-15)
                compared += int(keep(ts).sum())
    return compared


def test_seed_alert_conditions_match_promtool(smoke: tuple[Path, SeriesStore], tmp_path: Path) -> None:
    blocks, store = smoke
    rule_file = REPO / "monitoring/seed/alerting-rules.yml"
    if not rule_file.exists():
        pytest.skip("monitoring/seed/alerting-rules.yml not present")
    groups = load_rules(rule_file)
    assert _compare(groups, rule_file, blocks, store, tmp_path) > 0


def test_generated_recording_rules_match_promtool(smoke: tuple[Path, SeriesStore], tmp_path: Path) -> None:
    blocks, store = smoke
    gen = tmp_path / "generated.yml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sloanalysis.cli",
            "generate-rules",
            str(REPO / "slos/tron-payment.yaml"),
            "--out",
            str(gen),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    # promtool reads recorded inputs from the server, which has none: compare the first layer,
    # the recording rules over raw metrics (every window of every SLO).
    records = {r.record for g in load_rules(gen) for r in g.rules if isinstance(r, RecordingRule)}
    first = [
        RecordingRule(r.record, r.expr, r.labels)
        for g in load_rules(gen)
        for r in g.rules
        if isinstance(r, RecordingRule) and not any(name in r.expr for name in records)
    ]
    from sloanalysis.rules.model import dump_rule_groups

    layer = tmp_path / "layer1.yml"
    layer.write_text(dump_rule_groups([RuleGroup("layer1", None, tuple(first))]))
    groups = load_rules(layer)
    assert _compare(groups, layer, blocks, store, tmp_path) > 0


def test_backtest_from_prometheus_matches_the_run(
    smoke: tuple[Path, SeriesStore], capsys: pytest.CaptureFixture[str]
) -> None:
    """``backtest --prometheus`` fetches what the rules (and the budget SLI) read from the server
    holding the run: the same firing intervals and scores as ``backtest RUN`` over the same span."""
    import json

    from sloanalysis.cli.main import main

    blocks, store = smoke
    run = blocks.parent / "run"
    lo, hi = store.time_range()  # type: ignore[misc]
    # whole seconds, 15 minutes in (the seed's windows are 5m), so both sides hold every read sample
    start_s, end_s = lo // 1000 + 900, hi // 1000
    common = ["backtest", "--rules", str(REPO / "monitoring/seed/alerting-rules.yml")]
    span = ["--start", str(start_s), "--end", str(end_s), "--format", "json"]
    assert main([*common, str(run), *span]) == 0
    local = json.loads(capsys.readouterr().out)
    with running_prometheus(blocks) as url:
        remote_args = ["--prometheus", url, "--incidents", str(run / "incidents.csv")]
        assert main([*common, *remote_args, *span]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert local["firing"], "the seed's rules fire on the smoke run"
    assert remote["firing"] == local["firing"]
    assert remote["scores"] == local["scores"]
    assert any(r["budget_before_detection"] for r in remote["scores"])
