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


# -- YAML as Go's yaml.v2 reads promtool files; promtool 3 defaults ------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # yaml.v2's resolve(): Go's strconv.ParseInt(s, 0, 64) after dropping underscores, then floats
        ("0x10", ("!!int", 16)),
        ("017", ("!!int", 15)),  # a leading 0 is octal
        ("0o17", ("!!int", 15)),
        ("0b11", ("!!int", 3)),
        ("1_0", ("!!int", 10)),
        ("09", ("!!float", 9.0)),  # not octal, but a float
        ("1e3", ("!!float", 1000.0)),
        ("yes", ("!!bool", True)),  # YAML 1.1 booleans stay in yaml.v2
        ("off", ("!!bool", False)),
        ("0x10y", ("!!str", "0x10y")),
    ],
)
def test_go_resolve_reads_scalars_as_yaml_v2(text: str, expected: tuple[str, object]) -> None:
    from sloanalysis.yamlload import go_resolve, load_yaml

    doc = load_yaml(f"v: {text}\nq: '{text}'\n", "t.yml", schema="go")
    assert doc["v"] == text  # a string field gets the text
    assert go_resolve(doc["v"]) == expected
    assert go_resolve(doc["q"]) == ("!!str", text)  # quoted: always a string


def test_go_schema_reads_the_first_document_only() -> None:
    from sloanalysis.yamlload import load_yaml

    assert load_yaml("a: 1\n---\nb: [\n", "t.yml", schema="go") == {"a": "1"}
    assert load_yaml("", "t.yml", schema="go") is None


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "r.yml").write_text("groups:\n- name: g\n  rules:\n  - record: x\n    expr: up * 2\n")
    path = tmp_path / "t.yml"
    path.write_text(text)
    return path


def test_default_interval_is_the_evaluation_interval_under_promtool_3(tmp_path: Path) -> None:
    # promtool 3: samples 1 2 3 at 0s, 30s, 60s, so up is 3 at 1m (2.42 would keep 1 at time 0).
    path = _write(
        tmp_path,
        "rule_files: [r.yml]\nevaluation_interval: 30s\ntests:\n- input_series:\n"
        "  - {series: up, values: 1 2 3}\n  promql_expr_test:\n"
        "  - {expr: up, eval_time: 1m, exp_samples: [{labels: up, value: 3}]}\n",
    )
    assert ours(path) == (0, f"Unit Testing:  {path}\n  SUCCESS\n\n", "")
    rc, _, err = ours(path, prometheus2=True)
    assert rc == 1 and 'exp: {__name__="up"} 3E+00\n        got: {__name__="up"} 1E+00' in err


def test_fuzzy_compare_is_promtool_3_only(tmp_path: Path) -> None:
    # 0.1 + 0.2 is the float right after 0.3: equal only under fuzzy_compare.
    path = _write(
        tmp_path,
        "fuzzy_compare: true\ntests:\n- interval: 1m\n  promql_expr_test:\n"
        "  - {expr: 0.1 + 0.2, eval_time: 0m, exp_samples: [{value: 0.3}]}\n",
    )
    assert ours(path)[0] == 0
    rc, _, err = ours(path, prometheus2=True)
    assert (rc, err) == (
        1,
        "  FAILED:\nyaml: unmarshal errors:\n"
        "  line 1: field fuzzy_compare not found in type main.unitTestFile\n",
    )
    path.write_text(path.read_text().replace("true", "false"))
    assert ours(path)[0] == 1


def test_start_timestamp_is_rejected_as_promtool_3_before_it_does(tmp_path: Path) -> None:
    path = _write(tmp_path, "tests:\n- interval: 1m\n  start_timestamp: 0\n")
    rc, _, err = ours(path)
    assert rc == 1
    assert "line 3: field start_timestamp not found in type main.testGroup" in err
