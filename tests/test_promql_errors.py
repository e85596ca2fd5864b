"""Bad PromQL through ``sloanalysis query``: Prometheus's own error text, one line, exit 2.

The expected messages are Prometheus's (its parser's and engine's wording, with the position of
a syntax error as ``line:column``); the last test puts the same expressions to a real Prometheus
and checks that it rejects each of them with that very text.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sloanalysis.cli import main as cli
from sloanalysis.store import SeriesStore

T0 = 1_700_000_000_000
STEP = 15_000
N = 41  # ten minutes of scrapes

# Expression, then Prometheus's error text for it (as its API reports it; checked against a real
# Prometheus in the last test). Positions are line:column of the token Prometheus points at.
DUPLICATE = (
    'found duplicate series for the match group {router="a"} on the right hand-side of the '
    'operation: [{__name__="req_total", router="a", status="fail"}, '
    '{__name__="req_total", router="a", status="ok"}];'
    "many-to-many matching not allowed: matching labels must be unique on one side"
)
CASES = [
    # Syntax errors name the position of the offending token.
    ("rate(req_total[5m]", "1:19: parse error: unclosed left parenthesis"),
    ("req_total[5m", "1:13: parse error: unclosed left bracket"),
    ("req_total offset", "1:17: parse error: unexpected end of input in offset, expected duration"),
    # Unknown functions; wrong argument types (at the argument) and counts (at the call).
    ("foo(req_total)", '1:1: parse error: unknown function with name "foo"'),
    (
        "rate(req_total)",
        '1:6: parse error: expected type range vector in call to function "rate", got instant vector',
    ),
    (
        'histogram_quantile("0.9", req_total)',
        '1:20: parse error: expected type scalar in call to function "histogram_quantile", got string',
    ),
    ("abs(req_total, 1)", '1:1: parse error: expected 1 argument(s) in call to "abs", got 2'),
    (
        "topk(req_total, 1)",
        "1:17: parse error: expected type instant vector in aggregation expression, got scalar",
    ),
    (
        "count_values(1, req_total)",
        "1:14: parse error: expected type string in aggregation parameter, got scalar",
    ),
    # Vector matching: several series on the "one" side, or an implicit many-to-one match.
    ("req_total + on(router) req_total", DUPLICATE),
    (
        "req_total * on(router) limit_usd",
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
    ),
]
# Prometheus 2.42 (the Debian server) names the two duplicate series latest first; 3.x sorts them.
DUPLICATE_2X = DUPLICATE.replace('status="fail"}, ', "#").replace('status="ok"}];', 'status="fail"}];')
DUPLICATE_2X = DUPLICATE_2X.replace("#", 'status="ok"}, ')


def _store() -> SeriesStore:
    ts = T0 + STEP * np.arange(N, dtype=np.int64)
    store = SeriesStore()
    for router, status, per_scrape in (("a", "ok", 3.0), ("a", "fail", 1.0), ("b", "ok", 2.0)):
        labels = {"__name__": "req_total", "router": router, "status": status}
        store.add(labels, ts, per_scrape * np.arange(N, dtype=np.float64))
    for router in ("a", "b"):
        store.add({"__name__": "limit_usd", "router": router}, ts, np.full(N, 100.0))
    return store


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("run")
    _store().to_parquet(root / "samples.parquet")
    (root / "incidents.csv").write_text("id,kind,start,end,expected_alerts,params\n")
    (root / "run.json").write_text(json.dumps({}))
    return root


def _query_args(run_dir: Path, expr: str) -> list[str]:
    # Evaluation steps 7 s off the scrape grid, so Prometheus 2.x and 3.x read the same samples.
    start, end = (T0 + 300_000 + 7_000) / 1000, (T0 + 540_000 + 7_000) / 1000
    return ["query", str(run_dir), expr, "--start", str(start), "--end", str(end), "--step", "60s"]


@pytest.mark.parametrize(("expr", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_expression_is_one_line_with_prometheus_text(
    run_dir: Path, capsys: pytest.CaptureFixture[str], expr: str, message: str
) -> None:
    assert cli.main(_query_args(run_dir, expr)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"sloanalysis query: error: {message}\n"


def test_good_expression_on_the_same_data_succeeds(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The fixture is not broken: the grouped version of the failing match works (3 series).
    expr = "req_total * on(router) group_left limit_usd"
    assert cli.main([*_query_args(run_dir, expr), "--format", "csv"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 1 + 3 * 5  # header, 3 series x 5 steps


def test_process_exit_code_and_no_traceback(run_dir: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sloanalysis.cli",
            *_query_args(run_dir, "req_total + on(router) req_total"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"sloanalysis query: error: {DUPLICATE}\n"


@pytest.mark.prometheus
def test_a_real_prometheus_rejects_them_with_the_same_text(
    prometheus_from_store: object, capsys: pytest.CaptureFixture[str]
) -> None:
    start = prometheus_from_store  # the fixture returns a context-manager factory
    with start(_store()) as url:  # type: ignore[operator]
        for expr, message in CASES:
            args = _query_args(Path("unused"), expr)
            args = ["query", "--prometheus", url, expr, *args[3:]]
            assert cli.main(args) == 2, expr
            err = capsys.readouterr().err
            assert err.count("\n") == 1, err
            # The CLI wraps the server's answer: "Prometheus at URL rejected 'EXPR': <text>".
            expected = DUPLICATE_2X if message == DUPLICATE else message
            assert err.rstrip("\n").endswith(f": {expected}"), (expr, err)
