"""``sloanalysis lint`` exit status: 0 clean, 1 errors found, 2 bad input (one line, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.cli import main as tronsim
from sloanalysis.cli.main import main

ROOT = Path(__file__).parents[1]
SEED = ["--rules", str(ROOT / "monitoring/seed/alerting-rules.yml")]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("catalog") / "catalog.json"
    assert tronsim(["catalog", "--out", str(path)]) == 0
    return str(path)


def test_seed_has_errors_corrected_is_clean(catalog: str, capsys: pytest.CaptureFixture[str]) -> None:
    cat = ["--catalog", catalog]
    assert main(["lint", *SEED, "--dashboard", str(ROOT / "monitoring/seed/dashboard.json"), *cat]) == 1
    out = capsys.readouterr().out
    assert "one-to-one-ratio" in out and "impossible-threshold" in out
    fixed = ["--rules", str(ROOT / "monitoring/rules/tron-payment.yml")]
    assert main(["lint", *fixed, "--dashboard", str(ROOT / "monitoring/dashboard.json"), *cat]) == 0
    assert capsys.readouterr().out.strip() == "0 error(s), 0 warning(s)"
    assert main(["lint", *SEED, "--format", "json", *cat]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert {"severity", "where", "check", "message", "expr"} <= set(rows[0])


def test_without_a_catalog_existence_is_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "r.yml"
    rules.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: no_such_metric > 1\n    for: 5m\n"
    )
    assert main(["lint", "--rules", str(rules)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "0 error(s), 0 warning(s)"
    assert captured.err.count("\n") == 1 and "not checked" in captured.err
    # the structural checks still run: the seed's ratio of a counter over itself is an error
    assert main(["lint", *SEED]) == 1
    assert "one-to-one-ratio" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.yml", "groups: [\n", "invalid YAML"),
        ("nogroups.yml", "rules: []\n", "'groups'"),
        ("norule.yml", "groups:\n- name: g\n  rules:\n  - expr: up\n", "one of 'record' or 'alert'"),
        ("badfor.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: soon\n", "for"),
        ("board.json", '{"panels": [', "invalid JSON"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, catalog: str, capsys: pytest.CaptureFixture[str], name: str, text: str, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    flag = "--dashboard" if name.endswith(".json") else "--rules"
    assert main(["lint", flag, str(path), "--catalog", catalog]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and str(path) in err


def test_missing_files_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--rules", str(tmp_path / "nope.yml")]) == 2
    assert main(["lint"]) == 2
    rules = str(ROOT / "monitoring/rules/tron-payment.yml")
    assert main(["lint", "--rules", rules, "--run", str(tmp_path / "norun")]) == 2
    assert main(["lint", "--rules", rules, "--catalog", str(tmp_path / "nocatalog.json")]) == 2
    with pytest.raises(SystemExit):  # argparse: --run and --catalog exclude each other
        main(["lint", "--rules", rules, "--run", "r", "--catalog", "c"])
