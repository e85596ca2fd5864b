"""``sloanalysis generate-dashboard``: Grafana's dashboard model checked without Grafana.

What Grafana's provisioning needs (a uid of at most 40 characters from ``[A-Za-z0-9_-]``, a title,
an integer ``schemaVersion``, a ``panels`` list), panels with unique ids in the 24-column grid
without overlaps, targets whose ``expr`` is PromQL reading only what the generated rules record
(or ``ALERTS``, or the SLI's own metrics), and the toolkit's own readers: ``lint --dashboard`` and
the report's dashboard renderer.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from sloanalysis.cli.main import main
from sloanalysis.dashboard import evaluate_dashboard, load_dashboard
from sloanalysis.promql import parse
from sloanalysis.promql.walk import metric_names, selectors
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.slo.grafana import dashboard
from sloanalysis.slo.rulegen import generate_rules
from sloanalysis.slo.status import sli_selectors
from sloanalysis.store import SeriesStore

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "slo-formats"
SPECS = [
    ROOT / "slos" / "tron-payment.yaml",
    ROOT / "slos" / "examples" / "sloth.yaml",
    ROOT / "slos" / "examples" / "openslo.yaml",
    *(
        pytest.param(
            path, marks=pytest.mark.skipif(not path.is_file(), reason="../shared/slo-formats not present")
        )
        for path in (
            SHARED / "sloth-examples" / "getting-started.yml",  # Sloth-style rules: sloth_id
            SHARED / "pyrra-examples" / "slo-coredns-response-errors.yaml",  # Pyrra-style rules: slo
        )
    ),
]
DAY = 86_400_000
HOUR = 3_600_000


def _spec_id(spec: Path) -> str:
    return spec.name


def _generate(tmp_path: Path, *argv: str) -> dict[str, Any]:
    out = tmp_path / "dashboard.json"
    assert main(["generate-dashboard", *argv, "-o", str(out)]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def _panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    return list(board["panels"])


@pytest.mark.parametrize("spec", SPECS, ids=_spec_id)
def test_the_model_is_what_grafana_provisions(tmp_path: Path, spec: Path) -> None:
    board = _generate(tmp_path, str(spec))
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["title"] == "SLOs" and isinstance(board["schemaVersion"], int)
    assert board["schemaVersion"] >= 36  # timeseries panels and datasource objects
    panels = _panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    # The grid: inside 24 columns, and no two panels share a cell.
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]) for p in panels]
    assert all(x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= 24 for x, y, w, h in boxes)
    for (x1, y1, w1, h1), (x2, y2, w2, h2) in combinations(boxes, 2):
        assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    # The data source is the templated variable, which exists.
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for p in panels:
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)) and all(refs)
        assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"])


@pytest.mark.parametrize("spec", SPECS, ids=_spec_id)
def test_queries_read_only_recorded_series_alerts_or_the_sli(tmp_path: Path, spec: Path) -> None:
    slos = load_slo_files([spec], 30 * DAY)
    rules = generate_rules(slos)
    recorded = {r["record"] for g in rules.groups for r in g["rules"] if "record" in r}
    own = {name for slo in slos for sel in sli_selectors(slo) for name in metric_names(parse(sel))}
    ids = {slo.id for slo in slos} | {slo.name for slo in slos}
    board = _generate(tmp_path, str(spec))
    for p in _panels(board):
        for t in p.get("targets", []):
            tree = parse(t["expr"])  # raises on anything that is not PromQL
            names = metric_names(tree)
            assert names <= recorded | own | {"ALERTS"}, (t["expr"], names - recorded - own)
            for vs in selectors(tree):
                if vs.name in recorded or vs.name == "ALERTS":
                    matchers = {m.name: m.value for m in vs.matchers.matchers}
                    named = [matchers.get(k) for k in ("slo_id", "sloth_id", "slo") if k in matchers]
                    assert named and named[0] in ids, t["expr"]
    # With --raw every query is the SLI's own (no rules needed) or ALERTS.
    raw = _generate(tmp_path, str(spec), "--raw")
    for p in _panels(raw):
        for t in p.get("targets", []):
            assert metric_names(parse(t["expr"])) <= own | {"ALERTS"}, t["expr"]


def test_panels_per_slo_and_burn_rate_windows_of_a_30_day_period() -> None:
    slos = load_slo_files([SPECS[0]], 30 * DAY)
    board = dashboard(slos)
    rows = [p for p in board["panels"] if p["type"] == "row"]
    assert len(rows) == len(slos)
    burn = [p for p in board["panels"] if p["title"] == "Burn rate per alert window"]
    assert len(burn) == len(slos)
    checked = 0
    for slo, panel in zip(slos, burn, strict=True):
        if slo.period_ms != 30 * DAY:
            continue
        checked += 1
        # The workbook's policy for 30 days: long windows 1h, 6h, 1d, 3d at 14.4, 6, 3 and 1.
        assert [t["legendFormat"] for t in panel["targets"]] == [
            "1h window",
            "6h window",
            "1d window",
            "3d window",
        ]
        assert f'slo:sli_error:ratio_rate1h{{slo_id="{slo.id}"}} / (1 - ' in panel["targets"][0]["expr"]
        steps = [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]
        assert steps == [None, 1, 3, 6, 14.4]
    assert checked == 2  # availability and circuit-breaker-uptime are the 30-day SLOs
    alerts = [p for p in board["panels"] if p["title"] == "Alert state"]
    rules = generate_rules(slos)
    names = {r["alert"] for g in rules.groups for r in g["rules"] if "alert" in r}
    for panel in alerts:
        for t in panel["targets"]:
            assert re.search(r'ALERTS\{alertname="([^"]+)"', t["expr"]).group(1) in names  # type: ignore[union-attr]


def test_lint_accepts_the_dashboard_with_the_generated_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = str(SPECS[0])
    rules = tmp_path / "rules.yaml"
    assert main(["generate-rules", spec, "--out", str(rules)]) == 0
    board = tmp_path / "dashboard.json"
    assert main(["generate-dashboard", spec, "-o", str(board)]) == 0
    capsys.readouterr()
    assert main(["lint", "--rules", str(rules), "--dashboard", str(board), "--format", "json"]) == 0
    findings = json.loads(capsys.readouterr().out or "[]")
    assert [f for f in findings if f["severity"] == "error"] == []


def _store() -> SeriesStore:
    """10 requests a second, 1 % of them failing, for two hours (scraped every 15 s)."""
    ts = np.arange(0, 2 * HOUR + 1, 15_000, dtype=np.int64) + 1_700_000_000_000
    seconds = (ts - ts[0]) / 1000.0
    store = SeriesStore()
    store.add({"__name__": "http_requests_total", "code": "200"}, ts, 9.9 * seconds)
    store.add({"__name__": "http_requests_total", "code": "500"}, ts, 0.1 * seconds)
    return store


def test_the_report_renderer_draws_it(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "version": "prometheus/v1",
                "service": "shop",
                "slos": [
                    {
                        "name": "availability",
                        "objective": 99.0,
                        "sli": {
                            "events": {
                                "error_query": 'sum(rate(http_requests_total{code="500"}[{{.window}}]))',
                                "total_query": "sum(rate(http_requests_total[{{.window}}]))",
                            }
                        },
                        "alerting": {"name": "ShopAvailability"},
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    board = tmp_path / "dashboard.json"
    assert main(["generate-dashboard", str(spec), "--raw", "--title", "Shop", "-o", str(board)]) == 0
    title, panels = load_dashboard(board)
    assert title == "Shop" and len(panels) == 6  # the row is left out
    store = _store()
    start, end = store.time_range()  # type: ignore[misc]
    data = evaluate_dashboard(store, panels, start + HOUR, end, 60_000)
    assert all(not d.errors for d in data)
    sli = next(d for d in data if d.panel.title == "SLI")
    # 99 % of the requests are good over the last 5 minutes: the first SLI series ends at 0.99.
    assert sli.series and float(sli.series[0].values[-1]) == pytest.approx(0.99, abs=1e-9)
    burn = next(d for d in data if d.panel.title == "Burn rate per alert window")
    # 1 % errors against a 1 % budget: burn rate 1 over the 1h window.
    assert float(burn.series[0].values[-1]) == pytest.approx(1.0, abs=1e-9)


def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d.json"
    assert main(["generate-dashboard", str(tmp_path / "missing.yaml"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.yaml" in err and not out.exists()


def test_the_output_never_overwrites_an_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "slos.yaml"
    spec.write_text(SPECS[0].read_text(encoding="utf-8"), encoding="utf-8")
    before = spec.read_bytes()
    assert main(["generate-dashboard", str(spec), "-o", str(spec)]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and spec.read_bytes() == before
