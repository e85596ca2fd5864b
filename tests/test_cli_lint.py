"""``sloanalysis lint`` exit status: 0 clean, 1 errors found, 2 bad input (one line, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sloanalysis.cli.main import main

ROOT = Path(__file__).parents[1]


def test_seed_has_errors_corrected_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    seed = ["--rules", str(ROOT / "monitoring/seed/alerting-rules.yml")]
    assert main(["lint", *seed, "--dashboard", str(ROOT / "monitoring/seed/dashboard.json")]) == 1
    assert "one-to-one-ratio" in capsys.readouterr().out
    fixed = ["--rules", str(ROOT / "monitoring/rules/tron-payment.yml")]
    assert main(["lint", *fixed, "--dashboard", str(ROOT / "monitoring/dashboard.json")]) == 0
    assert capsys.readouterr().out.strip() == "0 error(s), 0 warning(s)"
    assert main(["lint", *seed, "--format", "json"]) == 1
    rows = json.loads(capsys.readouterr().out)
    assert {"severity", "where", "check", "message", "expr"} <= set(rows[0])


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.yml", "groups: [\n", "invalid YAML"),
        ("nogroups.yml", "rules: []\n", "'groups'"),
        ("norule.yml", "groups:\n- name: g\n  rules:\n  - expr: up\n", "exactly one of"),
        ("badfor.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: soon\n", "for"),
        ("board.json", '{"panels": [', "invalid JSON"),
    ],
)
def test_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str, needle: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    flag = "--dashboard" if name.endswith(".json") else "--rules"
    assert main(["lint", flag, str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and str(path) in err


def test_missing_files_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--rules", str(tmp_path / "nope.yml")]) == 2
    assert main(["lint"]) == 2
    rules = str(ROOT / "monitoring/rules/tron-payment.yml")
    assert main(["lint", "--rules", rules, "--run", str(tmp_path / "norun")]) == 2
