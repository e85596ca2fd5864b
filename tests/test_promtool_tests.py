"""promtool rule unit tests: the project's files pass under the real promtool and test-rules alike,
a failing file fails under both, and a regression test written from a backtest passes under both."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloanalysis.cli.main import main
from sloanalysis.durations import format_duration_ms
from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.model import load_rules
from sloanalysis.rules.promtool import encode_series, run_test_files, write_regression_test
from sloanalysis.sources.notation import expand_values
from sloanalysis.store import STALE_NAN, SeriesStore

RULES_DIR = Path(__file__).parent / "rules"
PASSING = ["tron-payment-test.yml", "recording-test.yml"]
CORRECTED = Path(__file__).parents[1] / "monitoring" / "rules" / "tron-payment.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120, check=False)


def ours(path: Path, *, prometheus2: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = run_test_files([path], out, err, prometheus2=prometheus2)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("name", PASSING)
@pytest.mark.parametrize("prometheus2", [False, True])
def test_project_files_pass_under_test_rules(name: str, prometheus2: bool) -> None:
    rc, out, err = ours(RULES_DIR / name, prometheus2=prometheus2)
    assert (rc, err) == (0, "")
    assert out == f"Unit Testing:  {RULES_DIR / name}\n  SUCCESS\n\n"


@pytest.mark.prometheus
@pytest.mark.parametrize("name", PASSING)
def test_project_files_pass_under_real_promtool(name: str) -> None:
    res = promtool("test", "rules", str(RULES_DIR / name))
    assert res.returncode == 0, res.stderr


@pytest.mark.prometheus
def test_failing_file_fails_identically() -> None:
    path = RULES_DIR / "failing-test.yml"
    real = promtool("test", "rules", str(path))
    rc, out, err = ours(path)
    assert real.returncode == rc == 1
    assert err == real.stderr  # promtool's own words, byte for byte
    assert out == real.stdout
    assert "2E+00" in err and "3E+00" in err  # got 2/s, expected 3/s


def test_cli_exit_status() -> None:
    assert main(["test-rules", str(RULES_DIR / "recording-test.yml")]) == 0
    assert main(["test-rules", str(RULES_DIR / "failing-test.yml")]) == 1


def test_malformed_file_is_a_failure(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("rule_files: [x.yml]\nbogus: 1\n")
    rc, _, err = ours(bad)
    assert rc == 1 and "bogus" in err


@pytest.mark.parametrize(("ms", "text"), [(0, "0s"), (90_000, "1m30s"), (604_800_000, "1w"), (500, "500ms")])
def test_go_duration(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text


def test_encode_series_round_trips() -> None:
    idx = np.array([0, 1, 2, 3, 5, 35, 36])
    vals = np.array([1.0, 3.0, 5.0, 7.0, 7.0, STALE_NAN, 0.5])
    text = encode_series(idx, vals)
    assert text == "1+2x3 _ 7 _x29 stale 0.5"
    expanded = expand_values(text)
    got = [(i, v) for i, v in enumerate(expanded) if v is not None]
    assert [i for i, _ in got] == idx.tolist()
    assert np.array_equal(np.array([v for _, v in got]).view(np.uint64), vals.view(np.uint64))


def _incident_store() -> SeriesStore:
    """A breaker that is open (1) from 20m to 32m, scraped every 15 s at +3.5 s, 60 minutes."""
    start = 1_767_700_000_000 - 1_767_700_000_000 % 60_000
    ts = start + 3_500 + 15_000 * np.arange(240)
    minutes = (ts - start) / 60_000
    vals = np.where((minutes >= 20) & (minutes < 32), 1.0, 0.0)
    store = SeriesStore()
    store.add({"__name__": "tron_circuit_breaker_status", "job": "tron-payment-api"}, ts, vals)
    return store


@pytest.mark.prometheus
def test_regression_test_passes_under_both_runners(tmp_path: Path) -> None:
    store = _incident_store()
    lo, hi = store.time_range()  # type: ignore[misc]
    start = lo - 3_500
    evaluation = evaluate_rules(load_rules(CORRECTED), store, start, hi)
    incident = pd.Series(
        {
            "id": "outage-x",
            "kind": "tron_outage",
            "start": pd.Timestamp(start + 20 * 60_000, unit="ms", tz="UTC"),
            "end": pd.Timestamp(start + 32 * 60_000, unit="ms", tz="UTC"),
            "expected_alerts": ("CircuitBreakerOpen",),
        }
    )
    rules_copy = tmp_path / "rules" / "tron-payment.yml"
    rules_copy.parent.mkdir()
    shutil.copy(CORRECTED, rules_copy)
    out = tmp_path / "tests" / "outage.yml"
    out.parent.mkdir()
    summary = write_regression_test([rules_copy], store, incident, evaluation, out)
    assert summary["differs_from_backtest"] == 0
    text = out.read_text()
    assert "../rules/tron-payment.yml" in text
    real = promtool("test", "rules", str(out))
    assert real.returncode == 0, real.stderr
    for p2 in (False, True):
        rc, _, err = ours(out, prometheus2=p2)
        assert rc == 0, err
    # It pins a firing alert and a quiet time.
    assert "exp_alerts: []" in text and "is open, rejecting payouts" in text
