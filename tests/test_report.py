"""``sloanalysis report``: the rendered HTML (sections, one embedded figure per plot, nothing fetched
from the network, opened in real headless chromium), junit.xml against the JUnit schema's required
structure, the gates' exit status, bad input, and a real Prometheus as the source."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html import escape
from pathlib import Path

import pytest
import yaml
from reporting import (
    DASHBOARD,
    DAY,
    MIN,
    ROOT,
    SEED_RULES,
    SLOS,
    T0,
    rules_files,
    scenario_run,
    smoke_report,
    smoke_run,
    week_store,
    write_store_run,
    write_web_spec,
)

from sloanalysis.cli.commands.report import NOTEBOOK_NAMES
from sloanalysis.cli.main import main
from sloanalysis.report.build import ReportResult, build_report
from sloanalysis.report.model import Inputs

IMG = re.compile(r'<img[^>]+src="data:image/png;base64,')
SMOKE_SCENARIO = yaml.safe_load((ROOT / "scenarios" / "smoke.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def report(tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return smoke_report(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_run(tmp_path_factory.getbasetemp())


def _html(report: ReportResult, name: str) -> str:
    return (report.out / f"{name}.html").read_text(encoding="utf-8")


def _threshold_rules_files() -> int:
    """Rules files with at least one alert of the form ``expr OP number`` (they get a Pareto plot)."""
    tail = re.compile(r"(>|<|>=|<=)\s*[-+]?[0-9.]+(e[-+]?\d+)?\s*$")
    count = 0
    for path in rules_files():
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        exprs = [str(r["expr"]) for g in doc["groups"] for r in g["rules"] if "alert" in r]
        count += any(tail.search(e.strip()) and not re.search(r"\b(and|or|unless)\b", e) for e in exprs)
    return count


# -- the HTML ---------------------------------------------------------------------------------------


def test_html_sections_and_one_embedded_figure_per_plot(report: ReportResult) -> None:
    expected = {
        "slo_report": (
            [
                "SLO table",
                "Compliance over the range",
                "Error budget burn-down",
                "Burn rates per window",
                "Incidents",
            ],
            2,
        ),
        "dashboard": (["Panels and their queries"], 1),
        # a firing timeline per rules file, a Pareto front per file with threshold rules, one tried setting
        "alert_tuning": (
            ["Firing timelines", "Scores", "Tuning thresholds", "Try a setting"],
            len(rules_files()) + _threshold_rules_files() + 1,
        ),
    }
    slo_names = [s["name"] for s in yaml.safe_load(SLOS.read_text(encoding="utf-8"))["slos"]]
    for name, (sections, figures) in expected.items():
        html = _html(report, name)
        for section in sections:
            assert re.search(rf"<h[1-3][^>]*>[^<]*{re.escape(section)}", html), (name, section)
        assert len(IMG.findall(html)) == figures, name
        assert "open_context(" not in html, f"{name}: code cells must be hidden"
        assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html), (
            f"{name}: fetches from the net"
        )
    for slo in slo_names:
        assert f">{slo}<" in _html(report, "slo_report"), slo
    seed = yaml.safe_load(SEED_RULES.read_text(encoding="utf-8"))
    for rule in seed["groups"][0]["rules"]:
        assert f">{rule['alert']}<" in _html(report, "alert_tuning"), rule["alert"]
    dashboard = _html(report, "dashboard")
    for title in ("Payout Success Rate", "Circuit Breaker Status", "System Resources"):
        assert title in dashboard
    # Titles from the inputs: the SLO file's service, the rules files' names, the dashboard's title.
    service = yaml.safe_load(SLOS.read_text(encoding="utf-8"))["service"]
    assert f"SLO report: {service}</h1>" in re.sub(
        r"<a class=\"anchor-link\".*?</a>", "", _html(report, "slo_report")
    )
    assert f"<title>SLO report: {service}</title>" in _html(report, "slo_report")
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    dash_title = doc.get("dashboard", doc)["title"]
    assert f"<title>Dashboard: {escape(dash_title)}</title>" in dashboard
    assert f"`{SEED_RULES.name}`" not in _html(
        report, "alert_tuning"
    )  # rendered as code, not as raw Markdown
    assert f"<code>{SEED_RULES.name}</code>" in _html(report, "alert_tuning")
    index = (report.out / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{n}.html"' in index for n in expected)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_html_renders_in_headless_chromium_without_console_errors(
    report: ReportResult, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is missing (apt-get install chromium)", pytrace=False)
        pytest.skip("needs chromium (apt-get install chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]
    for name in ("slo_report", "alert_tuning", "dashboard"):
        url = (report.out / f"{name}.html").resolve().as_uri()
        shot = tmp_path / f"{name}.png"
        proc = subprocess.run(
            [chromium, *flags, f"--user-data-dir={tmp_path / ('profile-' + name)}", f"--screenshot={shot}",
             "--window-size=1280,4000", url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
        assert console == [], f"{name}: console messages: {console}"
        assert _png_size(shot) == (1280, 4000), name
        dom = subprocess.run(
            [chromium, *flags, f"--user-data-dir={tmp_path / ('dom-' + name)}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert [line for line in dom.stderr.splitlines() if ":CONSOLE" in line] == []
        assert len(IMG.findall(dom.stdout)) == len(IMG.findall(_html(report, name))), name
        if name == "slo_report":
            assert "SLO table" in dom.stdout


# -- junit.xml and the summaries -------------------------------------------------------------------


def test_junit_xml_has_the_junit_schema_structure(report: ReportResult) -> None:
    root = ET.parse(report.out / "junit.xml").getroot()
    assert root.tag == "testsuites"
    all_cases = 0
    for suite in root:
        assert suite.tag == "testsuite"
        for attr in ("name", "tests", "failures", "errors", "skipped", "time"):
            assert attr in suite.attrib, attr
        cases = suite.findall("testcase")
        assert [c.tag for c in suite] == ["testcase"] * len(cases)
        assert int(suite.get("tests", "")) == len(cases)
        assert int(suite.get("failures", "")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("skipped", "")) == len(suite.findall("testcase/skipped"))
        assert int(suite.get("errors", "")) == 0
        float(suite.get("time", ""))
        for case in cases:
            for attr in ("classname", "name", "time"):
                assert attr in case.attrib, attr
            for failure in case.findall("failure"):
                assert failure.get("message")
        all_cases += len(cases)
    assert int(root.get("tests", "")) == all_cases
    suites = {s.get("name"): s for s in root}
    slo_names = [s["name"] for s in yaml.safe_load(SLOS.read_text(encoding="utf-8"))["slos"]]
    assert [c.get("name") for c in suites["slo"]] == slo_names
    seed_alerts = {
        r["alert"] for r in yaml.safe_load(SEED_RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    }
    seed_suite = next(s for name, s in suites.items() if name and name.endswith("seed/alerting-rules.yml"))
    assert {c.get("name") for c in seed_suite} == seed_alerts


def test_summary_json_and_markdown(report: ReportResult) -> None:
    summary = json.loads((report.out / "summary.json").read_text(encoding="utf-8"))
    slo_names = [s["name"] for s in yaml.safe_load(SLOS.read_text(encoding="utf-8"))["slos"]]
    assert [r["slo"] for r in summary["slos"]] == slo_names
    assert summary["gates"]["failed"] == sum(c["status"] == "failed" for c in summary["checks"])
    assert summary["end_ms"] - summary["start_ms"] == 2 * 3_600_000  # the smoke run: two whole hours
    md = (report.out / "summary.md").read_text(encoding="utf-8")
    for slo in slo_names:
        assert re.search(rf"^\| {re.escape(slo)} \|", md, re.M), slo
    assert not list(report.out.glob("_*")), "scratch files left in the report"


# -- gates and exit status -----------------------------------------------------------------------------


def test_a_long_outage_misses_an_slo_exit_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One hour of TRON outage in two hours: the breaker is open (or probing) for most of that hour,
    # so its uptime is far below 99.9 % and the circuit-breaker-uptime SLO is missed.
    data = {**SMOKE_SCENARIO, "name": "long-outage"}
    data["incidents"] = [
        {"id": "outage-long", "kind": "tron_outage", "start": "20m", "duration": "60m",
         "expected_alerts": ["CircuitBreakerOpen"]}
    ]  # fmt: skip
    run = scenario_run(tmp_path, "long-outage", data)
    out = tmp_path / "reports" / "outage"
    rc = main(
        ["report", "--run", str(run), "--out", str(out), "--slos", str(SLOS), "--notebook", "slo_report"]
    )
    stdout = capsys.readouterr().out
    assert rc == 1
    assert "SLO circuit-breaker-uptime missed" in stdout
    failures = [f.get("message", "") for f in ET.parse(out / "junit.xml").getroot().iter("failure")]
    assert any("circuit-breaker-uptime" in m for m in failures)
    assert (out / "slo_report.html").is_file() and not (out / "dashboard.html").exists()


def test_every_gate_passing_exits_0(tmp_path: Path) -> None:
    # No incident and an SLO that only counts 5xx answers: nothing fails in a quiet hour.
    data = {**SMOKE_SCENARIO, "name": "quiet", "duration": "1h", "incidents": []}
    run = scenario_run(tmp_path, "quiet", data)
    spec = yaml.safe_load(SLOS.read_text(encoding="utf-8"))
    spec["slos"] = [s for s in spec["slos"] if s["name"] == "availability"]
    slos = tmp_path / "availability.yaml"
    slos.write_text(yaml.safe_dump(spec), encoding="utf-8")
    out = tmp_path / "quiet-report"
    assert (
        main(
            ["report", "--run", str(run), "--out", str(out), "--slos", str(slos), "--notebook", "slo_report"]
        )
        == 0
    )
    root = ET.parse(out / "junit.xml").getroot()
    assert root.get("failures") == "0" and root.get("tests") == "1"


# -- bad input ------------------------------------------------------------------------------------------


def _bad(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    smoke: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken-run"
    shutil.copytree(smoke, broken)
    (broken / "samples.parquet").unlink()
    out = tmp_path / "out" / "r"
    assert "samples.parquet" in _bad(["report", "--run", str(broken), "--out", str(out)], capsys)
    assert "no such directory" in _bad(["report", "--run", str(tmp_path / "nope"), "--out", str(out)], capsys)
    # An empty time range: start equal to the end, or entirely after the data.
    err = _bad(["report", "--run", str(smoke), "--out", str(out), "--start", "2026-01-06T11:00:00Z",
                "--end", "2026-01-06T11:00:00Z"], capsys)  # fmt: skip
    assert "empty time range" in err
    err = _bad(["report", "--run", str(smoke), "--out", str(out), "--start", "2027-01-01T00:00:00Z"], capsys)
    assert "empty time range" in err
    rules = tmp_path / "bad-rules.yml"
    rules.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: rate(\n", encoding="utf-8"
    )
    assert str(rules) in _bad(
        ["report", "--run", str(smoke), "--out", str(out), "--rules", str(rules)], capsys
    )
    assert "--min-recall" in _bad(
        ["report", "--run", str(smoke), "--out", str(out), "--min-recall", "2"], capsys
    )
    assert not out.exists() and not any(p.name.startswith(".r.tmp") for p in out.parent.glob(".*"))


@pytest.fixture
def mute_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        srv.close()


def _cli(args: list[str]) -> subprocess.CompletedProcess[str]:
    # A subprocess with a generous timeout: a hang fails the test instead of stalling the suite.
    return subprocess.run(
        [sys.executable, "-m", "sloanalysis.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip


def test_a_prometheus_that_does_not_answer_is_a_clear_error(mute_server: str, tmp_path: Path) -> None:
    out = tmp_path / "r"
    slos = ["--slos", str(SLOS)]
    proc = _cli(
        ["report", "--prometheus", mute_server, "--start", "1h", *slos, "--out", str(out), "--timeout", "1"]
    )
    assert proc.returncode == 2, proc.stderr
    assert "did not answer within 1 s" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    proc = _cli(
        ["report", "--prometheus", closed, "--start", "1h", *slos, "--out", str(out), "--timeout", "1"]
    )
    assert proc.returncode == 2 and "cannot reach Prometheus" in proc.stderr, proc.stderr
    proc = _cli(["report", "--prometheus", "127.0.0.1:9090", "--start", "1h", *slos, "--out", str(out)])
    assert proc.returncode == 2 and "expected http://HOST:PORT" in proc.stderr, proc.stderr


# -- a real Prometheus as the source -------------------------------------------------------------------


@pytest.mark.prometheus
def test_a_real_prometheus_gives_the_run_directory_s_slo_table(
    report: ReportResult, smoke: Path, tmp_path: Path
) -> None:
    """The same samples through a real server: the event SLIs equal those read from the run directory.
    (The breaker's time slices may differ: range-selector fetches carry no stale markers, so the last
    value before the crash lingers for the lookback delta.)"""
    from promserver import backfill, running_prometheus

    run_summary = json.loads((report.out / "summary.json").read_text(encoding="utf-8"))
    start, end = (str(run_summary[k] / 1000) for k in ("start_ms", "end_ms"))
    blocks = backfill(smoke / "metrics.om", tmp_path / "blocks")
    out = tmp_path / "prom-report"
    with running_prometheus(blocks) as url:
        argv = ["report", "--prometheus", url, "--start", start, "--end", end, "--out", str(out)]
        rc = main(
            [
                *argv,
                "--slos",
                str(SLOS),
                "--incidents",
                str(smoke / "incidents.csv"),
                "--notebook",
                "slo_report",
            ]
        )
    assert rc in (0, 1)
    prom = {r["slo"]: r for r in json.loads((out / "summary.json").read_text(encoding="utf-8"))["slos"]}
    for row in run_summary["slos"]:
        if row["sli_kind"] in ("events", "latency"):
            assert prom[row["slo"]]["sli"] == pytest.approx(row["sli"], rel=1e-9), row["slo"]
    assert "SLO table" in (out / "slo_report.html").read_text(encoding="utf-8")


# -- the pieces, hand-worked ---------------------------------------------------------------------------


def test_grafana_display_rules_of_the_seed_dashboard() -> None:
    import numpy as np

    from sloanalysis.dashboard import (
        DEFAULT_THRESHOLDS,
        Threshold,
        evaluate_panel,
        format_value,
        last_not_null,
        legend,
        load_dashboard,
        map_value,
        threshold_color,
    )
    from sloanalysis.promql import Engine
    from sloanalysis.store import SeriesStore

    _title, panels = load_dashboard(ROOT / "monitoring" / "seed" / "dashboard.json")
    assert len(panels) == 11
    assert [p.type for p in panels].count("stat") == 4
    success, volume, breaker = panels[0], panels[1], panels[2]
    # Panel 1: red below 90, yellow from 90, green from 95 (the last step at or below the value).
    assert [threshold_color(v, success.thresholds) for v in (89.9, 90.0, 94.99, 95.0, 100.0)] == [
        "red", "yellow", "yellow", "green", "green",
    ]  # fmt: skip
    # Panel 2 declares no thresholds: Grafana's defaults colour any daily volume from 80 USDT red.
    assert volume.thresholds == DEFAULT_THRESHOLDS and not volume.thresholds_declared
    assert threshold_color(698.71, volume.thresholds) == "red"
    assert format_value(1472.3, volume.unit, volume.decimals) == "$1.47K"
    assert format_value(698.714, volume.unit, volume.decimals) == "$698.71"
    assert [map_value(v, breaker.mappings) for v in (0.0, 1.0, 2.0, 0.5)] == [
        "Closed",
        "Open",
        "Half Open",
        None,
    ]
    assert threshold_color(1.0, breaker.thresholds) == "yellow"
    assert format_value(99.5, "percent") == "99.5%" and format_value(0.25, "s") == "250 ms"
    assert format_value(None, "short") == "No data" and format_value(2500.0, "short") == "2.5 K"
    labels = (("__name__", "x"), ("router_type", "kyc"))
    assert legend("{{router_type}}", labels) == "kyc" and legend("", labels) == 'x{router_type="kyc"}'
    assert (
        last_not_null(np.array([1.0, np.nan, 3.0, np.nan])) == 3.0
        and last_not_null(np.array([np.nan])) is None
    )
    assert threshold_color(5.0, (Threshold("green", None), Threshold("red", 10.0))) == "green"

    # The breaker panel over a hand-made gauge: closed, then open for the last two scrapes.
    store = SeriesStore()
    ts = np.arange(0, 600_000, 15_000, dtype=np.int64)
    store.add({"__name__": "tron_circuit_breaker_status", "job": "j"}, ts, (ts >= 570_000).astype(float))
    data = evaluate_panel(Engine(store), breaker, 60_000, 585_000, 15_000)
    assert len(data.series) == 1 and data.series[0].legend == "Status"
    value = last_not_null(data.series[0].values)
    assert value == 1.0 and map_value(value, breaker.mappings) == "Open"


def test_rolling_budget_remaining_hand_worked() -> None:
    import numpy as np
    import pandas as pd

    from sloanalysis.slo.status import rolling_budget_remaining

    # Ten minutes of 1,000 requests, one of them bad in minute 5; 99.9 % over a 10-minute period:
    # after minute 5 one of 5 allowed bad requests is spent (80 % left), at minute 10 one of 10.
    idx = pd.date_range("2026-01-01", periods=10, freq="1min", tz="UTC")
    good = np.full(10, 1000.0)
    good[4] = 999.0
    frame = pd.DataFrame({"good": good, "valid": np.full(10, 1000.0), "present": True}, index=idx)
    left = rolling_budget_remaining(frame, 0.999, 600_000).to_numpy()
    assert left[:4] == pytest.approx([1.0] * 4)
    assert left[4] == pytest.approx(0.8) and left[9] == pytest.approx(0.9)


def test_gates_from_rows() -> None:
    from sloanalysis.report.gates import alert_checks, slo_checks

    checks = alert_checks(
        [
            {"alert": "A", "recall": 0.4, "precision": 1.0},
            {"alert": "B", "recall": 1.0, "precision": 0.25},
            {"alert": "C", "recall": None, "precision": None},
            {"alert": "D", "recall": 0.5, "precision": 0.5},
            {"alert": "(overall)", "recall": 0.0, "precision": 0.0},
        ],
        "alerts:x",
        min_recall=0.5,
        min_precision=0.5,
    )
    assert [(c.name, c.status) for c in checks] == [
        ("A", "failed"), ("B", "failed"), ("C", "n/a"), ("D", "passed"),
    ]  # fmt: skip
    assert "recall 40% < 50%" in checks[0].message and "precision 25% < 50%" in checks[1].message
    slo = slo_checks(
        [
            {"slo": "a", "objective": 0.999, "sli": 0.998, "met": False},
            {"slo": "b", "objective": 0.99, "sli": None, "met": None},
        ]
    )
    # No data is never a pass: it fails, saying where the data is (here: nowhere in the range).
    assert [c.status for c in slo] == ["failed", "failed"] and "SLO a missed" in slo[0].message
    assert "no data" in slo[1].message and "have no sample" in slo[1].message


def test_alert_gates_without_ground_truth_are_n_a_never_failed() -> None:
    from sloanalysis.report.gates import alert_checks, failed, junit_xml, summary_markdown

    rows = [
        {"alert": "Burn", "severity": "page", "recall": None, "precision": None, "firings": 3},
        {"alert": "Burn", "severity": "ticket", "recall": None, "precision": None, "firings": 1},
        {"alert": "Down", "severity": "page", "recall": None, "precision": None, "firings": 0},
    ]
    checks = alert_checks(rows, "alerts:r.yml", min_recall=0.5, min_precision=0.5, ground_truth=False)
    # Page and ticket alerts of one name are two gates; a name with one severity keeps its bare name.
    assert [(c.name, c.status) for c in checks] == [
        ("Burn (page)", "n/a"), ("Burn (ticket)", "n/a"), ("Down", "n/a"),
    ]  # fmt: skip
    assert failed(checks) == [] and all("no ground truth" in c.message for c in checks)
    root = ET.fromstring(junit_xml(checks).split("\n", 1)[1])
    assert root.get("failures") == "0" and len(root.findall(".//skipped")) == 3
    table = [{"alert": c.name, "recall": "n/a"} for c in checks]
    md = summary_markdown("t", [], {"r.yml": table}, checks)
    assert "| Burn (page) | n/a | n/a |" in md and "all 3 gates passed" in md


def test_low_coverage_fails_with_the_data_span() -> None:
    from sloanalysis.report.gates import slo_checks

    day = 86_400_000
    start = 1_714_953_600_000  # 2024-05-06T00:00:00Z
    row = {
        "slo": "s", "objective": 0.99, "sli": 1.0, "met": True, "state": "low coverage", "coverage": 0.25,
        "data_start_ms": start + 18 * 3_600_000, "data_end_ms": start + day,
    }  # fmt: skip
    [check] = slo_checks([row])
    assert check.status == "failed"
    assert "coverage" in check.message and "25%" in check.message
    assert "2024-05-06 18:00 UTC to 2024-05-07 00:00 UTC" in check.message


# -- any service: words from the inputs, the dashboard given, defaults, no data ---------------------

NOT_FROM_THE_INPUTS = re.compile(r"\btron|\bseed\b|payout|five slos|corrected", re.IGNORECASE)


def _text_of(page: str) -> str:
    """A page without its embedded images (base64 can spell anything)."""
    return re.sub(r"data:image/png;base64,[^\"']+", "", page)


@pytest.fixture(scope="session")
def week_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_store_run(week_store(), tmp_path_factory.mktemp("week") / "run")


def test_another_service_s_report_takes_every_word_from_its_inputs(week_run: Path, tmp_path: Path) -> None:
    spec = write_web_spec(tmp_path)
    rules = tmp_path / "web-alerts.yml"
    rules.write_text(
        "groups:\n  - name: web\n    rules:\n      - alert: WebErrors\n"
        '        expr: sum(rate(requests_total{code="500"}[5m])) / sum(rate(requests_total[5m])) > 0.02\n'
        "        for: 5m\n",
        encoding="utf-8",
    )
    board = tmp_path / "web-board.json"
    board.write_text(
        json.dumps(
            {
                "title": "Web at a glance",
                "panels": [
                    {
                        "type": "timeseries",
                        "title": "Requests per second",
                        "gridPos": {"x": 0, "y": 0, "w": 24, "h": 8},
                        "targets": [{"expr": "sum(rate(requests_total[5m]))", "legendFormat": "requests"}],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    out = tmp_path / "web-report"
    argv = ["report", "--run", str(week_run), "--slos", str(spec), "--rules", str(rules)]
    rc = main([*argv, "--dashboard", str(board), "--out", str(out), "--quiet"])
    assert rc == 1  # day 3 misses the SLO (tests/test_report_compliance.py)
    pages = {name: _text_of((out / f"{name}.html").read_text(encoding="utf-8")) for name in NOTEBOOK_NAMES}
    pages["summary.md"] = (out / "summary.md").read_text(encoding="utf-8")
    pages["index"] = (out / "index.html").read_text(encoding="utf-8")
    for name, text in pages.items():
        assert not NOT_FROM_THE_INPUTS.findall(text), (name, NOT_FROM_THE_INPUTS.findall(text))
    assert "<title>SLO report: web</title>" in pages["slo_report"]
    assert "The 1 SLO of web in <code>web-1d.yaml</code>" in pages["slo_report"]
    assert "<title>Alert backtest and tuning: web-alerts.yml</title>" in pages["alert_tuning"]
    assert "<title>Dashboard: Web at a glance</title>" in pages["dashboard"]
    assert "Requests per second" in pages["dashboard"]
    assert pages["summary.md"].startswith("## SLO report: web (run ")


def test_the_dashboard_page_is_left_out_without_a_dashboard_or_data(week_run: Path, tmp_path: Path) -> None:
    spec = write_web_spec(tmp_path)
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = doc.get("dashboard", doc)["panels"]
    queries = sum(1 for p in panels for t in p.get("targets", []) if t.get("expr"))
    # The TRON dashboard against the web service: not one of its queries has data.
    inputs = Inputs(run_dir=str(week_run), slos=str(spec), dashboard=str(DASHBOARD))
    result = build_report(inputs, tmp_path / "a", notebooks=("dashboard",))
    assert result.html == [] and not (tmp_path / "a" / "dashboard.html").exists()
    [note] = result.notes
    assert f"none of the {queries} panel queries of `dashboard.json`" in note
    assert note in (tmp_path / "a" / "summary.md").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))["notes"] == [note]
    result = build_report(
        Inputs(run_dir=str(week_run), slos=str(spec)), tmp_path / "b", notebooks=("dashboard",)
    )
    assert result.html == [] and result.notes == ["Dashboard page left out: no dashboard given."]


def test_report_defaults_to_the_project_files_for_a_run_only(tmp_path: Path) -> None:
    from sloanalysis.cli.commands.report import inputs_from_args
    from sloanalysis.cli.main import build_parser
    from sloanalysis.errors import UserError

    parser = build_parser()
    run = inputs_from_args(parser.parse_args(["report", "--run", "r", "--out", "o"]))
    assert Path(str(run.slos)).resolve() == SLOS.resolve()
    assert Path(str(run.dashboard)).resolve() == DASHBOARD.resolve()
    given = ["--prometheus", "http://127.0.0.1:1", "--start", "1h", "--out", "o"]
    prom = inputs_from_args(parser.parse_args(["report", *given, "--rules", str(SEED_RULES)]))
    assert (prom.slos, prom.dashboard, prom.rules) == (None, None, (str(SEED_RULES),))
    with pytest.raises(UserError, match="--slos FILE or --rules FILE"):
        inputs_from_args(parser.parse_args(["report", *given]))


def test_no_slo_data_at_all_exits_2_and_fails_every_slo_gate(
    week_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_web_spec(
        tmp_path, sli={"events": {"total": 'missing_total{job="web"}', "bad": "missing_total"}}
    )
    out = tmp_path / "r"
    # The dashboard page alone (left out: the TRON dashboard has no data here), so no kernel starts.
    rc = main(
        ["report", "--run", str(week_run), "--slos", str(spec), "--notebook", "dashboard", "--out", str(out)]
    )
    captured = capsys.readouterr()
    assert rc == 2
    assert len(captured.err.strip().splitlines()) == 1 and "no SLO has a sample between" in captured.err
    failures = [f.get("message", "") for f in ET.parse(out / "junit.xml").getroot().iter("failure")]
    expected = "SLO web-availability: no data in its window (its SLI's series have no sample at all)"
    assert failures == [expected]


def test_burn_rate_plot_draws_the_generated_rules_for_a_1d_slo(tmp_path: Path) -> None:
    """For a 1-day period generate-rules scales the 30-day windows by 1/30 with a 5m floor for long
    and 1m for short windows, and keeps each pair's budget share: 1h/5m -> 5m/1m at 2 % x 1440 / 5 =
    5.76; 6h/30m -> 12m/1m at 5 % x 1440 / 12 = 6; 1d/2h -> 48m/4m at 10 % x 1440 / 48 = 3;
    3d/6h -> 2h24m/12m at 10 % x 1440 / 144 = 1 (sloanalysis/slo/rulegen.py's docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    from sloanalysis.query import EmbeddedBackend
    from sloanalysis.report.context import analyse_slo
    from sloanalysis.report.plots import burn_rate_figure
    from sloanalysis.slo.formats import load_slo_files

    slo = load_slo_files([str(write_web_spec(tmp_path))], 30 * DAY)[0]
    result = analyse_slo(slo, EmbeddedBackend(week_store()), T0, T0 + DAY, MIN)
    assert list(result.burn_rates.columns) == ["5m", "12m", "48m", "2h24m"]
    ax = burn_rate_figure([result], None).axes[0]
    dashed = {
        line.get_label(): line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"
    }
    assert sorted(dashed.values()) == pytest.approx([1.0, 3.0, 5.76, 6.0])
    assert dashed["page 5m/1m: 5.76× (2% of the budget in 5m)"] == pytest.approx(5.76)
    assert dashed["ticket 2h24m/12m: 1× (10% of the budget in 2h24m)"] == pytest.approx(1.0)
    assert not any(abs(y - 14.4) < 1e-9 for y in dashed.values())


def test_budget_plot_holds_the_lowest_value_of_the_table(tmp_path: Path) -> None:
    """99.99 % over a day that holds 1.25 % errors (the week's day 3, per minute): the budget is
    overspent 125 times, 1 - 125 = -12,400 % left; the axis goes below it and marks it."""
    import matplotlib

    matplotlib.use("Agg")
    from sloanalysis.query import EmbeddedBackend
    from sloanalysis.report.context import analyse_slo
    from sloanalysis.report.plots import burn_down_figure
    from sloanalysis.slo.formats import load_slo_files

    slo = load_slo_files([str(write_web_spec(tmp_path, objective=0.9999))], 30 * DAY)[0]
    result = analyse_slo(slo, EmbeddedBackend(week_store()), T0 + DAY, T0 + 4 * DAY, MIN)
    assert float(result.budget_remaining.min()) == pytest.approx(-124.0, rel=1e-9)
    ax = burn_down_figure([result], None).axes[0]
    low, high = ax.get_ylim()
    assert low <= -12_400 and high >= 100 and ax.get_yscale() == "symlog"
    assert any("min -12,400%" in t.get_text() for t in ax.texts)


def test_alert_tuning_renders_without_kernel_noise(tmp_path: Path) -> None:
    """The command's stderr carries only its own lines: no kernel log ("KeyboardInterrupt caught in
    kernel", once printed when alert_tuning's widgets ran headless) and no traceback."""
    run = smoke_run(tmp_path)
    rules = ROOT / "monitoring" / "rules" / "tron-payment.yml"
    proc = _cli(
        [
            "report",
            "--run",
            str(run),
            "--out",
            str(tmp_path / "r"),
            "--rules",
            str(rules),
            "--notebook",
            "alert_tuning",
        ]
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "KeyboardInterrupt" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "r" / "alert_tuning.html").is_file()
