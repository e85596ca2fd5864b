"""Ground truth: the incidents schema (CSV and YAML), its errors, and how alerts are scored
against it: identity by name and severity, only the rule files' alerts, false positives alone for
an alert no incident expects, and "n/a" without ground truth. Expected values by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sloanalysis.cli.main import main
from sloanalysis.errors import UserError
from sloanalysis.rules.backtest import NO_GROUND_TRUTH, backtest
from sloanalysis.rules.model import parse_rules
from sloanalysis.sources.rundir import load_incidents
from sloanalysis.store import SeriesStore

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

CSV = (
    "id,kind,start,end,expected_alerts,params\n"
    'a,outage,2026-01-01T00:20:00Z,2026-01-01T00:30:00+00:00,High:page;Other,"{""rate"": 3}"\n'
    f"b,quiet,{T0 + 60 * MIN},{T0 + 65 * MIN},,\n"
)
YAML = f"""\
- id: a
  kind: outage
  start: 2026-01-01T00:20:00Z
  end: "2026-01-01T00:30:00+00:00"
  expected_alerts: [High:page, Other]
  params: {{rate: 3}}
- id: b
  kind: quiet
  start: {T0 + 60 * MIN}
  end: {T0 + 65 * MIN}
  expected_alerts: ""
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(("name", "text"), [("inc.csv", CSV), ("inc.yaml", YAML), ("inc.yml", YAML)])
def test_schema_csv_and_yaml(tmp_path: Path, name: str, text: str) -> None:
    inc = load_incidents(_write(tmp_path, name, text))
    assert inc["id"].tolist() == ["a", "b"] and inc["kind"].tolist() == ["outage", "quiet"]
    assert str(inc["start"].dtype) == "datetime64[ns, UTC]"
    # RFC 3339 with either offset spelling, and epoch milliseconds
    assert inc["start"].tolist() == [
        pd.Timestamp("2026-01-01T00:20:00Z"),
        pd.Timestamp("2026-01-01T01:00:00Z"),
    ]
    assert inc["end"].tolist() == [pd.Timestamp("2026-01-01T00:30:00Z"), pd.Timestamp("2026-01-01T01:05:00Z")]
    assert inc["expected_alerts"].tolist() == [("High:page", "Other"), ()]
    assert inc["params"].tolist() == [{"rate": 3}, {}]


def test_params_column_is_optional(tmp_path: Path) -> None:
    inc = load_incidents(_write(tmp_path, "i.csv", "id,kind,start,end,expected_alerts\nx,k,0,60000,A\n"))
    assert inc["params"].tolist() == [{}] and inc["end"].iloc[0] == pd.Timestamp(60_000, unit="ms", tz="UTC")


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        # row 3 of the file (the header is row 1), the fourth column
        (
            "i.csv",
            "id,kind,start,end,expected_alerts\nx,k,0,1,\ny,k,0,later,\n",
            "i.csv:3: field 'end' (column 4)",
        ),
        (
            "i.csv",
            "id,kind,start,end,expected_alerts\nx,k,2026-01-01T00:00:00,1,\n",
            "field 'start' (column 3)",
        ),
        (
            "i.csv",
            "id,kind,start,end,expected_alerts\nx,k,5,1,\n",
            "i.csv:2: field 'end' (column 4): 'end' is before",
        ),
        (
            "i.csv",
            "id,kind,start,end,expected_alerts\nx,k,0,1,\nx,k,0,1,\n",
            "i.csv:3: field 'id' (column 1): duplicate",
        ),
        (
            "i.csv",
            "id,kind,start,end,expected_alerts\nx,k,0,1,A B\n",
            "i.csv:2: field 'expected_alerts' (column 5)",
        ),
        (
            "i.csv",
            "id,kind,start,end,expected_alerts,params\nx,k,0,1,A,[1]\n",
            "i.csv:2: field 'params' (column 6)",
        ),
        ("i.csv", "id,kind,start,end,expected,x\n", "i.csv:1: missing column(s) expected_alerts"),
        ("i.csv", "id,kind,start,end,expected_alerts,note\n", "unknown column(s) 'note'"),
        (
            "i.yaml",
            "- {id: a, kind: k, start: 0, end: 1, expected_alerts: A}\n- id: b\n  kind: k\n  start: x\n"
            "  end: 1\n  expected_alerts: ''\n",
            "i.yaml: incident 2 (line 2): field 'start'",
        ),
        ("i.yaml", "id: a\n", "i.yaml: expected a list of incidents"),
        ("i.yaml", "- [1, 2]\n", "i.yaml: incident 1 (line 1): expected a mapping"),
    ],
)
def test_errors_name_file_row_and_column(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(UserError) as info:
        load_incidents(_write(tmp_path, name, text))
    assert message in str(info.value) and "\n" not in str(info.value)


# -- scoring against the ground truth ----------------------------------------------------------


def _store() -> SeriesStore:
    """x is 10 during [20 min, 30 min) of two hours scraped every 15 s, else 0."""
    ts = T0 + np.arange(0, 120 * MIN, 15_000)
    store = SeriesStore()
    store.add(
        {"__name__": "x", "job": "a"}, ts, np.where((ts >= T0 + 20 * MIN) & (ts < T0 + 30 * MIN), 10.0, 0.0)
    )
    return store


# High:page fires at 22 min (for 2m), High:ticket at 20 min, Other at 20 min, all resolve at 30 min.
RULES = """\
groups:
- name: g
  rules:
  - alert: High
    expr: x > 5
    for: 2m
    labels: {severity: page}
  - alert: High
    expr: x > 8
    labels: {severity: ticket}
  - alert: Other
    expr: x > 5
"""


def _incidents(tmp_path: Path, expected: str) -> pd.DataFrame:
    text = f"id,kind,start,end,expected_alerts\ni1,k,2026-01-01T00:20:00Z,2026-01-01T00:30:00Z,{expected}\n"
    return load_incidents(_write(tmp_path, "inc.csv", text))


def _rows(bt_scores: pd.DataFrame) -> dict[tuple[str, str | None], dict]:
    return {(r["alert"], r["severity"]): r for r in bt_scores.to_dict("records")}


def test_page_and_ticket_are_scored_apart(tmp_path: Path) -> None:
    bt = backtest(parse_rules(RULES, "r"), _store(), _incidents(tmp_path, "High:page"), T0, T0 + 120 * MIN)
    rows = _rows(bt.scores)
    # one row per identity, plus the overall row
    assert set(rows) == {("High", "page"), ("High", "ticket"), ("Other", None), ("(overall)", None)}
    page, ticket = rows[("High", "page")], rows[("High", "ticket")]
    assert (page["incidents"], page["detected"], page["detection_ms"], page["precision"]) == (
        1,
        1,
        2 * MIN,
        1.0,
    )
    # nobody expects the ticket: scored on false positives alone (its one firing)
    assert ticket["incidents"] == 0 and ticket["recall"] is None
    assert ticket["precision"] == 0.0 and ticket["false_positives"] == 1
    assert ticket["fp_per_day"] == pytest.approx(1 / (2 / 24))  # one in two hours
    assert {f["severity"]: f["incident"] for f in bt.firings if f["alertname"] == "High"} == {
        "page": "i1",
        "ticket": "FALSE POSITIVE",
    }
    assert bt.ground_truth is True


def test_a_name_without_severity_expects_every_severity(tmp_path: Path) -> None:
    bt = backtest(parse_rules(RULES, "r"), _store(), _incidents(tmp_path, "High"), T0, T0 + 120 * MIN)
    rows = _rows(bt.scores)
    assert rows[("High", "page")]["detected"] == 1 and rows[("High", "page")]["detection_ms"] == 2 * MIN
    assert rows[("High", "ticket")]["detected"] == 1 and rows[("High", "ticket")]["detection_ms"] == 0
    assert sorted(zip(bt.pairs["alert"], bt.pairs["severity"], strict=True)) == [
        ("High", "page"),
        ("High", "ticket"),
    ]


def test_alerts_missing_from_the_rules_are_not_scored(tmp_path: Path) -> None:
    """The run expects CircuitBreakerOpen; the user's rules have no such alert: not a miss."""
    incidents = _incidents(tmp_path, "CircuitBreakerOpen;High:page")
    bt = backtest(parse_rules(RULES, "r"), _store(), incidents, T0, T0 + 120 * MIN)
    rows = _rows(bt.scores)
    assert "CircuitBreakerOpen" not in {a for a, _ in rows}
    overall = rows[("(overall)", None)]
    assert (overall["incidents"], overall["detected"], overall["missed"]) == (1, 1, 0)
    assert bt.pairs["alert"].tolist() == ["High"]


def test_no_ground_truth_is_none_for_every_alert() -> None:
    bt = backtest(parse_rules(RULES, "r"), _store(), None, T0, T0 + 120 * MIN)
    assert bt.ground_truth is False
    for row in bt.scores.to_dict("records"):
        assert row["precision"] is None and row["recall"] is None, row
        assert row["false_positives"] is None and row["fp_per_day"] is None, row
    assert _rows(bt.scores)[("High", "page")]["firings"] == 1
    assert {f["incident"] for f in bt.firings} == {NO_GROUND_TRUTH}


# -- the CLI -------------------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    _store().to_parquet(d / "samples.parquet")
    (d / "run.json").write_text("{}")
    (d / "incidents.csv").write_text(
        "id,kind,start,end,expected_alerts\nrun-1,k,2026-01-01T00:20:00Z,2026-01-01T00:30:00Z,High;Other\n"
    )
    return d


def _backtest_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(["backtest", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_backtest_run_incidents_replace_the_runs_own(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _write(tmp_path, "r.yml", RULES)
    own = _backtest_json(capsys, ["--rules", str(rules), str(run_dir)])
    assert {p["incident"] for p in own["incidents"]} == {"run-1"}
    # the user's file: one incident an hour later that expects only Other (in YAML)
    mine = _write(
        tmp_path,
        "mine.yaml",
        "- {id: late, kind: k, start: '2026-01-01T01:00:00Z', end: '2026-01-01T01:10:00Z', "
        "expected_alerts: [Other]}\n",
    )
    doc = _backtest_json(capsys, ["--rules", str(rules), str(run_dir), "--incidents", str(mine)])
    assert doc["ground_truth"] is True
    assert [(p["incident"], p["alert"], p["detected"]) for p in doc["incidents"]] == [
        ("late", "Other", False)
    ]
    assert {f["incident"] for f in doc["firing"]} == {"FALSE POSITIVE"}
    other = next(r for r in doc["scores"] if r["alert"] == "Other")
    assert (other["recall"], other["precision"], other["false_positives"]) == (0.0, 0.0, 1)


def test_backtest_without_ground_truth_says_na(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--prometheus without --incidents: the samples come from a stand-in for the server."""
    import sloanalysis.cli.commands.backtest as cmd

    monkeypatch.setattr(cmd, "fetch_rule_inputs", lambda *a, **k: _store())
    rules = _write(tmp_path, "r.yml", RULES)
    argv = ["--rules", str(rules), "--prometheus", "http://127.0.0.1:1", "--start", str(T0 // 1000)]
    argv += ["--end", str(T0 // 1000 + 7200)]
    doc = _backtest_json(capsys, argv)
    assert doc["ground_truth"] is False and "no ground truth" in doc["note"]
    assert all(r["precision"] is None and r["recall"] is None for r in doc["scores"])
    assert main(["backtest", *argv]) == 0
    out = capsys.readouterr().out
    scores = out[out.index("Scores") :]
    page = next(line for line in scores.splitlines() if line.startswith("High") and "page" in line)
    assert page.count("n/a") >= 4  # false positives, precision, recall, FP/day
    assert "Note: no ground truth (give --incidents FILE)" in out
    # with an incidents file the same source is scored
    inc = _write(
        tmp_path,
        "i.csv",
        "id,kind,start,end,expected_alerts\ni1,k,2026-01-01T00:20:00Z,2026-01-01T00:30:00Z,High\n",
    )
    doc = _backtest_json(capsys, [*argv, "--incidents", str(inc)])
    page_row = next(r for r in doc["scores"] if (r["alert"], r["severity"]) == ("High", "page"))
    assert doc["ground_truth"] is True and page_row["recall"] == 1.0


def test_backtest_help_documents_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["backtest", "--help"])
    out = capsys.readouterr().out
    assert "id,kind,start,end,expected_alerts[,params]" in out and "AlertName:severity" in out
