"""Issue [8] end to end on a second, non-TRON service: the ``checkout`` job of
tests/checkout_service.py backfilled into a real Prometheus, its Sloth spec and the team's own rules
(tests/fixtures/checkout/), checked through the CLI as a user runs it (subprocesses, exit status).

Every expected number is worked out by hand in tests/checkout_service.py from the fixture's rates:
the SLIs (``1 - (0.001 (n - m) + 0.2 m) / n`` and ``(0.97 (n - m) + 0.5 m) / n`` over the ``n``
15-second intervals a ``rate`` over the range sees, ``m = 120`` of them in the incident), and each
alert's firing and resolution (the first evaluation whose window holds enough incident intervals,
plus ``for``). Then the same from a TRON simulator run directory with a user's own small rules
file, and a week whose 1-day SLO is missed on day 3 and met at the end.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from checkout_service import (
    BURN_ALERT,
    DAY_MS,
    END,
    EXPECTED_ALERTS,
    INCIDENT_END,
    INCIDENT_ID,
    INCIDENT_START,
    MINUTE_MS,
    RULES,
    SLOTH_SPEC,
    START,
    THRESHOLD_ALERT,
    WEEK_END,
    WEEK_SPEC,
    WEEK_START,
    Incident,
    availability_sli,
    checkout_store,
    latency_sli,
    max_error_ratio,
    page_alert_with,
    rfc3339,
    threshold_alert_with,
    week_store,
    week_worst_day_sli,
    write_incidents,
)
from promserver import backfill, running_prometheus

from sloanalysis.sources.openmetrics import write_openmetrics

REPO = Path(__file__).resolve().parents[1]
MY_TRON_RULES = REPO / "tests" / "fixtures" / "checkout" / "my-tron-rules.yml"
TRON_WORDING = re.compile(r"\btron|payout|\bseed's\b|corrected ones|five SLOs", re.IGNORECASE)
"""The TRON project's own prose ("TRON payout service", "slos/tron-payment.yaml", "The seed's rules are
compared with the corrected ones", "The service's five SLOs"): wrong in a report on checkout."""
RANGE = ("--start", rfc3339(START), "--end", rfc3339(END))
pytestmark = pytest.mark.prometheus


# -- helpers ------------------------------------------------------------------------------------------


def cli(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python -m sloanalysis.cli ARGS`` as a user runs it (from the repository by default, where the
    TRON project's own default files are within reach and must not be picked up for checkout)."""
    return subprocess.run(
        [sys.executable, "-m", "sloanalysis.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"


def visible_text(html: str) -> str:
    """What a reader sees of an HTML page: scripts, styles and tags removed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", html)


def assert_no_tron(text: str, where: str) -> None:
    hits = [text[max(m.start() - 60, 0) : m.end() + 60] for m in TRON_WORDING.finditer(text)]
    assert not hits, f"{where}: TRON wording in a report on the checkout service: {hits[:5]}"


def base_name(alert: str) -> str:
    """An alert's name without however a score row spells its severity (``Name:page``, ``Name (page)``,
    ``Name{severity="page"}``)."""
    return re.split(r"[:\s{(]", alert, maxsplit=1)[0]


def score_row(rows: Sequence[Mapping[str, Any]], name: str, severity: str | None = None) -> Mapping[str, Any]:
    """The one score row of alert ``name`` (and ``severity``: a ``severity`` column, or the severity
    written into the row's alert name)."""

    def alert_of(r: Mapping[str, Any]) -> str:
        return str(r.get("alert", r.get("alertname", "")))

    found = [r for r in rows if base_name(alert_of(r)) == name]
    if severity is not None:
        found = [r for r in found if r.get("severity") == severity or severity in alert_of(r)[len(name) :]]
    assert len(found) == 1, (name, severity, [(alert_of(r), r.get("severity")) for r in rows])
    return found[0]


def scored_names(rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Base names of the alerts scored (the ``(overall)`` row left out)."""
    return {base_name(str(r.get("alert", r.get("alertname")))) for r in rows} - {""}


def assert_scores_match_hand(rows: Sequence[Mapping[str, Any]], tolerance_ms: int) -> None:
    """Each of the three alerts (page and ticket apart): recall and precision 100 %, detection and
    reset within ``tolerance_ms`` of the hand-worked times."""
    for alert in EXPECTED_ALERTS:
        severity = None if alert.name == THRESHOLD_ALERT else alert.severity
        row = score_row(rows, alert.name, severity)
        where = f"{alert.name} ({alert.severity})"
        assert row["incidents"] == 1 and row["detected"] == 1, (where, row)
        assert row["recall"] == pytest.approx(1.0), (where, row)
        assert row["precision"] == pytest.approx(1.0), (where, row)
        assert row["false_positives"] == 0, (where, row)
        assert abs(row["detection_ms"] - alert.detection_ms) <= tolerance_ms, (where, alert.detection_ms, row)
        assert abs(row["reset_ms"] - alert.reset_ms) <= tolerance_ms, (where, alert.reset_ms, row)


def walk_numbers(doc: Any) -> Iterator[float]:
    if isinstance(doc, bool):
        return
    if isinstance(doc, int | float):
        yield float(doc)
    elif isinstance(doc, Mapping):
        for v in doc.values():
            yield from walk_numbers(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from walk_numbers(v)


def alert_checks(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [c for c in summary["checks"] if str(c["suite"]).startswith("alerts")]


# -- the service in a real Prometheus -----------------------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    url: str
    incidents: Path
    work: Path


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checkout]:
    """The checkout store backfilled into one Prometheus for the whole module (the conftest's
    ``prometheus_from_store`` does the same per test; one server here keeps the module fast)."""
    work = tmp_path_factory.mktemp("checkout")
    write_openmetrics(checkout_store(), work / "data.om")
    blocks = backfill(work / "data.om", work / "blocks")
    with running_prometheus(blocks) as url:
        yield Checkout(url, write_incidents(work / "incidents.csv"), work)


# -- slo ------------------------------------------------------------------------------------------------


def test_slo_gives_the_hand_computed_sli_without_tron_wording(checkout: Checkout) -> None:
    expected = {
        "requests-availability": availability_sli(START, END),  # 1 - 12347.7 / 5183700 = 0.997618
        "requests-latency": latency_sli(START, END),  # (0.97 * 17159 + 0.5 * 120) / 17279 = 0.966736
    }
    proc = cli("slo", SLOTH_SPEC, "--prometheus", checkout.url, *RANGE, "--format", "json")
    assert proc.returncode == 0, explain(proc)
    rows = json.loads(proc.stdout)
    assert {r["slo"] for r in rows} == set(expected)
    for row in rows:
        assert row["sli"] == pytest.approx(expected[row["slo"]], abs=1e-4), row
        assert row["met"] is True, row
        assert row["coverage"] == pytest.approx(1.0, abs=0.01), row
    assert_no_tron(proc.stdout + proc.stderr, "slo --format json")

    table = cli("slo", SLOTH_SPEC, "--prometheus", checkout.url, *RANGE)
    assert table.returncode == 0, explain(table)
    assert "requests-availability" in table.stdout and "requests-latency" in table.stdout
    assert_no_tron(table.stdout + table.stderr, "slo (table)")


def test_slo_over_a_range_without_data_exits_2_naming_where_the_data_is(checkout: Checkout) -> None:
    proc = cli(
        "slo", SLOTH_SPEC, "--prometheus", checkout.url,
        "--start", rfc3339(START - 8 * DAY_MS), "--end", rfc3339(START - DAY_MS),
    )  # fmt: skip
    assert proc.returncode == 2, explain(proc)
    # the data lies from 2024-03-04 00:00:05 to 2024-03-06 23:59:50 UTC: the message says so
    assert "2024-03-04" in proc.stderr, explain(proc)
    assert "2024-03-06" in proc.stderr or "2024-03-07" in proc.stderr, explain(proc)
    assert "Traceback" not in proc.stderr


def test_slo_over_a_half_covered_range_shows_coverage_and_exits_1(checkout: Checkout) -> None:
    # (START - 12 h, START + 12 h]: the data begins at START + 5 s, so the second half is covered and
    # a 1-minute step has data from START + 1 min on: 720 of 1440 steps, coverage 0.5.
    half = ("--start", rfc3339(START - DAY_MS // 2), "--end", rfc3339(START + DAY_MS // 2))
    proc = cli("slo", SLOTH_SPEC, "--prometheus", checkout.url, *half, "--format", "json")
    assert proc.returncode == 1, explain(proc)
    rows = json.loads(proc.stdout)
    for row in rows:
        assert row["coverage"] == pytest.approx(0.5, abs=0.02), row
    table = cli("slo", SLOTH_SPEC, "--prometheus", checkout.url, *half)
    assert table.returncode == 1, explain(table)
    assert "coverage" in table.stdout.splitlines()[0].lower(), explain(table)


def test_query_warns_when_the_selector_matches_nothing_in_the_range(checkout: Checkout) -> None:
    proc = cli(
        "query", "--prometheus", checkout.url, "http_requests_total",
        "--start", rfc3339(START - 8 * DAY_MS), "--end", rfc3339(START - DAY_MS),
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    assert "http_requests_total" in proc.stderr and "2024-03-04" in proc.stderr, explain(proc)


# -- report ---------------------------------------------------------------------------------------------


def test_report_without_incidents_has_na_alert_gates_and_no_tron_wording(checkout: Checkout) -> None:
    out = checkout.work / "report-no-incidents"
    proc = cli(
        "report", "--prometheus", checkout.url, *RANGE,
        "--slos", SLOTH_SPEC, "--rules", RULES, "--out", out, "--quiet",
    )  # fmt: skip
    # Both SLOs are met over the range (3 days of a 30-day period; even the stretch from the start to the
    # incident's end is at 99.63 % / 96.36 %), and with no ground truth the alert gates are n/a: exit 0.
    assert proc.returncode == 0, explain(proc)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    slo_rows = {r["slo"]: r for r in summary["slos"]}
    assert slo_rows["requests-availability"]["sli"] == pytest.approx(availability_sli(START, END), abs=1e-4)
    assert slo_rows["requests-latency"]["sli"] == pytest.approx(latency_sli(START, END), abs=1e-4)
    for row in summary["slos"]:
        assert row["coverage"] == pytest.approx(1.0, abs=0.01), row
    checks = alert_checks(summary)
    assert checks, "the rules file's alerts should appear as (n/a) gates"
    for check in checks:
        assert check["status"] != "failed", check
        assert check["status"] == "n/a" or "n/a" in check["message"].lower(), check
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "n/a" in md.lower(), md
    assert not (out / "dashboard.html").exists(), "no dashboard was given: the page is left out"
    assert "dashboard.html" not in summary["html"]
    assert_no_tron(md, "summary.md")
    for page in ["index.html", *summary["html"]]:
        text = visible_text((out / page).read_text(encoding="utf-8"))
        assert_no_tron(text, page)
        # a Prometheus source is not a simulation: no "incidents injected into the simulation"
        assert "simulation" not in text.lower(), f"{page}: speaks of a simulation for a Prometheus source"
    assert_no_tron(proc.stdout, "report stdout")


def test_report_with_incidents_scores_page_and_ticket_apart(checkout: Checkout) -> None:
    out = checkout.work / "report-incidents"
    proc = cli(
        "report", "--prometheus", checkout.url, *RANGE, "--slos", SLOTH_SPEC, "--rules", RULES,
        "--incidents", checkout.incidents, "--out", out, "--quiet", "--notebook", "alert_tuning",
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    [rows] = summary["alerts"].values()
    # the report's evaluation grid may differ from the CLI's: allow for + one evaluation interval
    for alert in EXPECTED_ALERTS:
        severity = None if alert.name == THRESHOLD_ALERT else alert.severity
        row = score_row(rows, alert.name, severity)
        assert row["recall"] == pytest.approx(1.0) and row["precision"] == pytest.approx(1.0), row
        assert abs(row["detection_ms"] - alert.detection_ms) <= alert.for_ms + MINUTE_MS, (alert, row)
    page, ticket = score_row(rows, BURN_ALERT, "page"), score_row(rows, BURN_ALERT, "ticket")
    assert page["detection_ms"] < ticket["detection_ms"], "page and ticket must not share one timeline"
    for check in alert_checks(summary):
        assert check["status"] == "passed", check
    assert_no_tron((out / "summary.md").read_text(encoding="utf-8"), "summary.md")


def test_report_over_a_range_without_data_exits_2(checkout: Checkout) -> None:
    out = checkout.work / "report-no-data"
    proc = cli(
        "report", "--prometheus", checkout.url, "--start", rfc3339(START - 8 * DAY_MS),
        "--end", rfc3339(START - DAY_MS), "--slos", SLOTH_SPEC, "--out", out,
        "--quiet", "--notebook", "slo_report",
    )  # fmt: skip
    assert proc.returncode == 2, explain(proc)
    assert "2024-03-04" in proc.stdout + proc.stderr, explain(proc)


# -- backtest -------------------------------------------------------------------------------------------


def test_backtest_from_prometheus_with_incidents(checkout: Checkout) -> None:
    proc = cli(
        "backtest", "--rules", RULES, "--prometheus", checkout.url, *RANGE,
        "--incidents", checkout.incidents, "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    doc = json.loads(proc.stdout)
    assert_scores_match_hand(doc["scores"], tolerance_ms=MINUTE_MS)
    # the firing intervals themselves, per severity, to the minute
    for alert in EXPECTED_ALERTS:
        firings = [
            f
            for f in doc["firing"]
            if f["alertname"] == alert.name and f["labels_map"].get("severity") == alert.severity
        ]
        assert len(firings) == 1, (alert, firings)
        assert firings[0]["firing_at_ms"] == alert.firing_ms, (alert, rfc3339(alert.firing_ms), firings[0])
        assert firings[0]["resolved_at_ms"] == alert.resolved_ms, (
            alert,
            rfc3339(alert.resolved_ms),
            firings[0],
        )
        assert firings[0]["incident"] == INCIDENT_ID, firings[0]
    assert_no_tron(proc.stdout + proc.stderr, "backtest")


def test_backtest_from_prometheus_without_incidents_has_na_scores(checkout: Checkout) -> None:
    proc = cli("backtest", "--rules", RULES, "--prometheus", checkout.url, *RANGE, "--format", "json")
    assert proc.returncode == 0, explain(proc)
    rows = json.loads(proc.stdout)["scores"]
    assert scored_names(rows) >= {THRESHOLD_ALERT, BURN_ALERT}
    for row in rows:
        assert row["precision"] is None and row["recall"] is None, row
    table = cli("backtest", "--rules", RULES, "--prometheus", checkout.url, *RANGE)
    assert table.returncode == 0, explain(table)
    assert "n/a" in table.stdout.lower(), explain(table)


# -- tune -----------------------------------------------------------------------------------------------


def test_tune_from_prometheus_ranks_thresholds(checkout: Checkout) -> None:
    proc = cli(
        "tune", "--rules", RULES, "--alert", THRESHOLD_ALERT, "--grid", "threshold=0.01,0.05,0.1",
        "--prometheus", checkout.url, *RANGE, "--incidents", checkout.incidents, "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    doc = json.loads(proc.stdout)
    points = {float(p["threshold"]): p for p in doc["points"]}
    assert set(points) == {0.01, 0.05, 0.1}
    for threshold, point in points.items():
        # even 10 % is below the incident's 20 % errors: every threshold detects it, none fires elsewhere
        assert point["recall"] == pytest.approx(1.0), point
        assert point["false_positives"] == 0, point
        hand = threshold_alert_with(threshold).detection_ms  # 3, 4 and 5 minutes
        assert abs(point["detection_ms"] - hand) <= MINUTE_MS, (threshold, hand, point)
    assert points[0.01]["detection_ms"] <= points[0.05]["detection_ms"] <= points[0.1]["detection_ms"]
    assert 0.01 in {float(p["threshold"]) for p in doc["pareto"]}, doc["pareto"]


def test_tune_from_prometheus_tunes_the_page_burn_rate_apart_from_the_ticket(checkout: Checkout) -> None:
    proc = cli(
        "tune", "--rules", RULES, "--alert", BURN_ALERT, "--severity", "page", "--grid", "factor=6,14.4,30",
        "--prometheus", checkout.url, *RANGE, "--incidents", checkout.incidents, "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, explain(proc)
    points = {float(p["factor"]): p for p in json.loads(proc.stdout)["points"]}
    assert set(points) == {6.0, 14.4, 30.0}
    for factor in (6.0, 14.4):
        hand = page_alert_with(
            factor
        ).detection_ms  # 6: 35 of 239 intervals at 12:09, firing 12:11; 14.4: 12:24
        assert points[factor]["recall"] == pytest.approx(1.0), points[factor]
        assert abs(points[factor]["detection_ms"] - hand) <= MINUTE_MS, (factor, hand, points[factor])
    # 30 x 0.5 % = 15 %: the 1 h error ratio peaks at 10.09 % (the hour ending with the incident)
    assert max_error_ratio(60 * MINUTE_MS) < 30 * 0.005
    assert points[30.0]["recall"] == pytest.approx(0.0), points[30.0]
    # the ticket, tuned alone, is a different rule: 3 x over 6 h and 30 m, first firing at 12:31
    ticket = cli(
        "tune", "--rules", RULES, "--alert", BURN_ALERT, "--severity", "ticket", "--grid", "factor=3",
        "--prometheus", checkout.url, *RANGE, "--incidents", checkout.incidents, "--format", "json",
    )  # fmt: skip
    assert ticket.returncode == 0, explain(ticket)
    [point] = json.loads(ticket.stdout)["points"]
    hand = next(a for a in EXPECTED_ALERTS if a.severity == "ticket").detection_ms
    assert point["recall"] == pytest.approx(1.0) and abs(point["detection_ms"] - hand) <= MINUTE_MS, point


# -- lint -----------------------------------------------------------------------------------------------


def test_lint_with_the_prometheus_catalog_finds_no_unknown_metric(checkout: Checkout) -> None:
    proc = cli("lint", "--rules", RULES, "--prometheus", checkout.url, "--format", "json")
    assert proc.returncode == 0, explain(proc)
    findings = json.loads(proc.stdout or "[]")
    assert not [f for f in findings if f["severity"] == "error"], findings
    assert "unknown-metric" not in proc.stdout, findings


def test_generated_rules_for_checkout_lint_clean(checkout: Checkout, tmp_path: Path) -> None:
    generated = tmp_path / "generated.yml"
    proc = cli("generate-rules", SLOTH_SPEC, "--out", generated)
    assert proc.returncode == 0, explain(proc)
    proc = cli("lint", "--rules", generated, "--prometheus", checkout.url, "--format", "json")
    assert proc.returncode == 0, explain(proc)
    errors = [f for f in json.loads(proc.stdout or "[]") if f["severity"] == "error"]
    assert not errors, errors


# -- a TRON simulator run directory with a user's own rules ------------------------------------------


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.export import write_run
    from simulator.model import simulate
    from simulator.scenario import load_scenario

    out = tmp_path_factory.mktemp("tron") / "smoke"
    return write_run(simulate(load_scenario(REPO / "scenarios" / "smoke.yaml")), out)


def _run_incident(run: Path, incident_id: str) -> Incident:
    from sloanalysis.sources.rundir import load_incidents

    row = load_incidents(run / "incidents.csv").set_index("id").loc[incident_id]
    return Incident(
        incident_id,
        str(row["kind"]),
        row["start"].value // 1_000_000,
        row["end"].value // 1_000_000,
        ("ServiceDown",),
    )


def test_backtest_of_a_run_scores_only_the_users_alerts(smoke: Path, tmp_path: Path) -> None:
    proc = cli("backtest", "--rules", MY_TRON_RULES, smoke, "--format", "json")
    assert proc.returncode == 0, explain(proc)
    rows = json.loads(proc.stdout)["scores"]
    # CircuitBreakerOpen, HighFailureRate, HighAuthenticationFailures: expected by the run's incidents
    # but not in the user's file, so not scored
    assert scored_names(rows) == {"ServiceDown"}, rows
    assert score_row(rows, "ServiceDown")["recall"] == pytest.approx(1.0)
    # --incidents replaces the run's own ground truth: crash-1 plus an incident nothing shows
    crash = _run_incident(smoke, "crash-1")
    phantom = Incident(
        "phantom-1",
        "made_up",
        crash.start_ms - 50 * MINUTE_MS,
        crash.start_ms - 45 * MINUTE_MS,
        ("ServiceDown",),
    )
    mine = write_incidents(tmp_path / "mine.csv", (crash, phantom))
    proc = cli("backtest", "--rules", MY_TRON_RULES, smoke, "--incidents", mine, "--format", "json")
    assert proc.returncode == 0, explain(proc)
    row = score_row(json.loads(proc.stdout)["scores"], "ServiceDown")
    assert row["incidents"] == 2 and row["recall"] == pytest.approx(0.5), row


def test_report_of_a_run_gates_only_the_users_alerts(smoke: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = cli(
        "report",
        "--run",
        smoke,
        "--rules",
        MY_TRON_RULES,
        "--out",
        out,
        "--quiet",
        "--notebook",
        "alert_tuning",
    )
    assert proc.returncode in (0, 1), explain(proc)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    checks = alert_checks(summary)
    assert {base_name(c["name"]) for c in checks} == {"ServiceDown"}, checks
    assert all(c["status"] == "passed" for c in checks), checks
    failed = [c for c in summary["checks"] if c["status"] == "failed"]
    assert all(c["suite"] == "slo" for c in failed), failed
    assert proc.returncode == (1 if failed else 0), explain(proc)


# -- the whole range gates, not only its end -----------------------------------------------------------


def test_a_1d_slo_missed_mid_week_fails_the_gate_unless_gated_at_the_end(
    prometheus_from_store: Any, tmp_path: Path
) -> None:
    with prometheus_from_store(week_store()) as url:
        week = (
            "--prometheus",
            url,
            "--start",
            rfc3339(WEEK_START),
            "--end",
            rfc3339(WEEK_END),
            "--slos",
            WEEK_SPEC,
        )
        out = tmp_path / "week"
        proc = cli("report", *week, "--out", out, "--quiet", "--notebook", "slo_report")
        assert proc.returncode == 1, explain(proc)
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        failed = [c for c in summary["checks"] if c["status"] == "failed"]
        assert [c["name"] for c in failed] == ["shop-availability"], failed
        # the day with the incident, by hand: 1 - (0.5 * 2 + 0.001 * 22) / 24 = 95.74 %
        worst = week_worst_day_sli()
        assert any(abs(x - worst) < 1e-3 for x in walk_numbers(summary)), "the missed day's SLI"
        # at the end (the last day is clean) the SLO is met
        [row] = summary["slos"]
        assert row["sli"] == pytest.approx(0.999, abs=1e-4), row

        out_end = tmp_path / "week-end"
        proc = cli(
            "report", *week, "--out", out_end, "--quiet", "--notebook", "slo_report", "--gate-at", "end"
        )
        assert proc.returncode == 0, explain(proc)


def test_fixture_hand_values_are_what_the_formulas_say() -> None:
    """The fixture's own arithmetic, spelled out: the numbers quoted in the docstrings above."""
    assert availability_sli(START, END) == pytest.approx(1 - (0.001 * 17159 + 0.2 * 120) / 17279, abs=1e-12)
    assert latency_sli(START, END) == pytest.approx((0.97 * 17159 + 0.5 * 120) / 17279, abs=1e-12)
    by_name = {(a.name, a.severity): a for a in EXPECTED_ALERTS}
    minutes = {k: (a.detection_ms // MINUTE_MS, a.reset_ms // MINUTE_MS) for k, a in by_name.items()}
    # threshold: 5 incident intervals of 19 in 5 m push the ratio over 5 % at 12:02, firing at 12:04;
    # page: 86 of 239 in 1 h over 7.2 % at 12:22, firing 12:24; ticket: 102 of 1439 in 6 h over 1.5 %
    # at 12:26, firing 12:31; each clears when its short window has too few incident intervals left.
    assert minutes == {
        (THRESHOLD_ALERT, "warning"): (4, 4),
        (BURN_ALERT, "page"): (24, 4),
        (BURN_ALERT, "ticket"): (31, 28),
    }
    assert [threshold_alert_with(t).detection_ms // MINUTE_MS for t in (0.01, 0.05, 0.1)] == [3, 4, 5]
    assert INCIDENT_END - INCIDENT_START == 30 * MINUTE_MS
