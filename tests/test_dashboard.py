"""Reading Grafana dashboard JSON: the parts used, nested rows, nulls, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sloanalysis.dashboard import DEFAULT_THRESHOLDS, Threshold, load_dashboard
from sloanalysis.errors import UserError
from sloanalysis.rules.lint import Catalog, lint_dashboard


def _write(tmp_path: Path, doc: Any, name: str = "dash.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


BOARD = {
    "title": "Board",
    "schemaVersion": 39,  # fields not read are allowed: Grafana JSON is open
    "panels": [
        {
            "id": 1,
            "type": "stat",
            "title": "Up",
            "targets": [{"expr": "up", "legendFormat": None, "refId": "A"}],
            "fieldConfig": {
                "defaults": {
                    "unit": "percent",
                    "decimals": 1,
                    "thresholds": {
                        "mode": "absolute",
                        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 99}],
                    },
                    "mappings": [
                        {"type": "value", "options": {"0": {"text": "Down"}, "1": {"text": "Up"}}},
                        {"type": "range", "options": {"from": 2, "to": 5, "result": {"text": "odd"}}},
                    ],
                },
                "overrides": [],
            },
            "gridPos": {"x": 0, "y": 0, "w": 6, "h": 4},
        },
        {
            "id": 2,
            "type": "row",
            "title": "Details",
            "collapsed": True,
            "panels": [
                {
                    "id": 3,
                    "type": "timeseries",
                    "title": "Rate",
                    "targets": [
                        {"expr": "sum by (job) (rate(x_total[5m]))", "legendFormat": "{{job}}"},
                        {"refId": "B", "datasource": {"type": "testdata"}},  # not PromQL: left out
                    ],
                    "fieldConfig": None,
                    "gridPos": None,
                }
            ],
        },
    ],
}


def test_panels_of_rows_are_read_in_file_order_and_nulls_mean_defaults(tmp_path: Path) -> None:
    title, panels = load_dashboard(_write(tmp_path, {"dashboard": BOARD}))
    assert title == "Board"
    assert [(p.id, p.type) for p in panels] == [(1, "stat"), (3, "timeseries")]  # the row itself is gone
    up, rate = panels
    assert [(t.expr, t.legend_format, t.ref_id) for t in up.targets] == [("up", "", "A")]
    assert (up.unit, up.decimals, up.grid) == ("percent", 1, (0, 0, 6, 4))
    assert up.thresholds == (Threshold("red", None), Threshold("green", 99.0)) and up.thresholds_declared
    assert up.mappings == {"0": "Down", "1": "Up"}  # only value mappings
    assert [t.expr for t in rate.targets] == ["sum by (job) (rate(x_total[5m]))"]
    assert rate.thresholds == DEFAULT_THRESHOLDS and not rate.thresholds_declared
    assert (rate.unit, rate.decimals, rate.grid) == ("", None, (0, 0, 12, 8))


def _panel(**fields: Any) -> dict[str, Any]:
    return {"panels": [{"id": 1, "type": "stat", **fields}]}


BAD = [
    (
        {"dashboard": _panel(targets=[{"expr": 5}])},
        "dashboard.panels[0].targets[0].expr: Input should be a valid string",
    ),
    (_panel(fieldConfig={"defaults": {"decimals": "many"}}), "panels[0].fieldConfig.defaults.decimals"),
    (
        _panel(fieldConfig={"defaults": {"thresholds": {"steps": []}}}),
        "panels[0].fieldConfig.defaults.thresholds.steps",
    ),
    (
        _panel(fieldConfig={"defaults": {"thresholds": {"steps": [{"value": float("nan")}]}}}),
        "panels[0].fieldConfig.defaults.thresholds.steps[0].value: Input should be a finite number",
    ),
    (
        {"panels": [{"id": 9, "type": "row", "panels": [{"id": 1}]}]},
        "panels[0].panels[0].type: required field is missing",
    ),
    ({"title": "no panels"}, "panels: required field is missing"),
    ([1, 2], "expected a Grafana dashboard object"),
    ('{"panels": [', "dash.json:1:13: invalid JSON"),
]


@pytest.mark.parametrize(("doc", "message"), BAD)
def test_bad_dashboards_raise_one_line_naming_the_json_path(tmp_path: Path, doc: Any, message: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(UserError) as info:
        load_dashboard(path)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)) and message in text, text


def test_lint_reads_dashboards_through_the_same_reader(tmp_path: Path) -> None:
    """The lint sees the panels of collapsed rows, and rejects what the loader rejects, word for word."""
    catalog = Catalog(series={"up": ({"job": "j"},)}, types={})
    findings = lint_dashboard(_write(tmp_path, BOARD), catalog)
    assert any(f.where == 'panel 3 "Rate"' for f in findings)  # x_total is not in the empty catalog
    bad = _write(tmp_path, _panel(targets=[{"expr": ["up"]}]), "bad.json")
    with pytest.raises(UserError) as from_loader:
        load_dashboard(bad)
    with pytest.raises(UserError) as from_lint:
        lint_dashboard(bad, catalog)
    assert str(from_lint.value) == str(from_loader.value)
