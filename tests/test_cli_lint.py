"""``sloanalysis lint`` exit status: 0 clean, 1 errors found, 2 bad input (one line, no traceback)."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from reporting import smoke_run

from simulator.cli import main as tronsim
from sloanalysis.cli.main import main
from sloanalysis.store import SeriesStore

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
        ("nogroups.yml", "rules: []\n", "line 1: field rules not found in type rulefmt.RuleGroups"),
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


# -- any service: generated rules, a run directory and a real Prometheus as catalogs ---------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_run(tmp_path_factory.getbasetemp())


@pytest.mark.parametrize("spec", ["slos/tron-payment.yaml", "slos/examples/sloth.yaml"])
def test_generated_rules_lint_clean(
    spec: str, smoke: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "generated.yml"
    assert main(["generate-rules", str(ROOT / spec), "--out", str(out)]) == 0
    assert main(["lint", "--rules", str(out), "--run", str(smoke)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 error(s)")


def test_committed_generated_rules_lint_clean(smoke: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = str(ROOT / "monitoring/rules/slo-generated.yml")
    assert main(["lint", "--rules", rules, "--run", str(smoke)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("0 error(s)")


SHOP_RULES = """\
groups:
- name: shop
  rules:
  - record: shop:requests:rate5m
    expr: sum by (code) (rate(http_requests_total[5m]))
  - alert: ServerErrors
    expr: shop:requests:rate5m{code="500"} > 1
    for: 5m
  - alert: NotFound
    expr: sum(rate(http_requests_total{code="404"}[5m])) > 1
    for: 5m
  - alert: Typo
    expr: sum(rate(http_request_total[5m])) > 1
    for: 5m
"""


@pytest.mark.prometheus
def test_catalog_from_a_real_prometheus(
    tmp_path: Path,
    prometheus_from_store: Callable[..., AbstractContextManager[str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = SeriesStore()
    for code in ("200", "500"):
        store.add({"__name__": "http_requests_total", "code": code, "job": "shop"}, [0, 15_000], [0.0, 1.0])
    rules = tmp_path / "shop.yml"
    rules.write_text(SHOP_RULES, encoding="utf-8")
    with prometheus_from_store(store) as url:
        assert main(["lint", "--rules", str(rules), "--prometheus", url, "--format", "json"]) == 1
        captured = capsys.readouterr()
        found = {(r["where"], r["check"]) for r in json.loads(captured.out)}
        # 404 is not a value of code on the server; http_request_total does not exist there.
        assert found == {("alert NotFound", "unknown-label-value"), ("alert Typo", "unknown-metric")}
        assert captured.err == ""
        clean = SHOP_RULES.split("  - alert: NotFound")[0]
        rules.write_text(clean, encoding="utf-8")
        assert main(["lint", "--rules", str(rules), "--prometheus", url, "--timeout", "5"]) == 0
        assert capsys.readouterr().out.strip() == "0 error(s), 0 warning(s)"
    # A server that is not there: one line, exit 2.
    assert main(["lint", "--rules", str(rules), "--prometheus", url, "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Prometheus" in err
