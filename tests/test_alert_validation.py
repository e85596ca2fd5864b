"""Monte Carlo alert validation (``tronsim validate-alerts``): known answers, the SRE Workbook's
analytic detection times, determinism across executors, resuming, threshold selection, bad input.

The method check uses the synthetic ``error_step`` kind: fluid availability counters whose failed
fraction steps to the incident's severity, so the answer is the Workbook's: a multiwindow
burn-rate pair at factor ``k`` over window ``w`` fires ``w * k / b`` after a step to burn rate
``b > k`` and never for ``b <= k``; the rule evaluation sees it up to one scrape plus one
evaluation interval later. Replications are short (hours) and few.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from simulator.capacity.executors import LocalExecutor
from simulator.cli import main
from simulator.scenario import load_scenario, scenario_from_dict
from simulator.validation.family import FamilyError, family_from_dict, load_family
from simulator.validation.run import Validation, run_validation
from simulator.validation.selection import tuning_variants
from sloanalysis.rules.backtest import EvalSettings
from sloanalysis.rules.model import parse_rules
from sloanalysis.slo.rulegen import burn_windows

ROOT = Path(__file__).resolve().parents[1]
SCRAPE_MS, EVAL_MS = 30_000, 60_000
HOUR_MS = 3_600_000

STEP_SCENARIO = {
    "name": "step",
    "start": "2026-01-05T00:00:00Z",
    "duration": "1h",
    "scrape_interval": "30s",
    "scrape_offset": "3s",
    "load": {"api_rate": 10, "payout_rate": 0.1},
}

RATIO = "(1 - sum(rate(slo_successful_requests_total[5m])) / sum(rate(slo_total_requests_total[5m])))"
KNOWN_RULES = f"""
groups:
  - name: known
    rules:
      - alert: MustFire
        expr: {RATIO} > 0.5
        labels: {{severity: page}}
      - alert: CannotFire
        expr: {RATIO} > 2
        labels: {{severity: page}}
"""

SLO_SPEC = """
version: sloanalysis/v1
service: tron-payment-api
slos:
  - name: availability
    objective: 0.999
    period: 1d
    sli:
      events:
        good: slo_successful_requests_total{job="tron-payment-api"}
        total: slo_total_requests_total{job="tron-payment-api"}
    alerting:
      name: AvailabilityBurn
"""


def _step_family(severity: dict[str, Any], **extra: Any) -> Any:
    data = {
        "kind": "error_step",
        "severity": severity,
        "duration": {"fixed": "1h"},
        "start": {"uniform": ["0s", "10m"]},
        "quiet": "1h",
        "length": "4h",
    }
    return family_from_dict(data | extra)


def _validation(groups: Any, family: Any, n: int, **kw: Any) -> Validation:
    scenario = scenario_from_dict(STEP_SCENARIO)
    return Validation(tuple(groups), scenario, family, n, kw.pop("seed", 3), EvalSettings(EVAL_MS), **kw)


def _by_alert(result: Any) -> dict[str, dict[str, Any]]:
    return {a["alert"] + ":" + str(a["severity"]): a for a in result.alerts}


# -- known answers ---------------------------------------------------------------------------------


def test_rule_that_must_fire_and_rule_that_cannot(tmp_path: Path) -> None:
    groups = parse_rules(KNOWN_RULES, "known.yml")
    family = _step_family({"uniform": [0.6, 1.0]})
    result = run_validation(_validation(groups, family, 6), tmp_path / "out", LocalExecutor(1))
    alerts = _by_alert(result)
    must, never = alerts["MustFire:page"]["detection"], alerts["CannotFire:page"]["detection"]
    assert (must["detected"], must["incidents"]) == (6, 6)
    assert must["lo"] <= 1.0 <= must["hi"] and must["lo"] > 0.5  # Wilson for 6/6: [0.61, 1]
    assert (never["detected"], never["incidents"]) == (0, 6)
    assert never["lo"] <= 0.0 <= never["hi"] and never["hi"] < 0.5
    # No errors outside incidents: no false positive, and an exact Poisson upper bound of
    # 3.689 / (quiet days) for zero events (chi2(0.975, 2) / 2 = 3.6889).
    fp = alerts["MustFire:page"]
    assert fp["false_positives"] == 0
    assert fp["fp_per_day_hi"] == pytest.approx(3.6889 / fp["quiet_days"], rel=1e-3)
    # Detection needs the 5m ratio above 0.5: at error ratio e it takes 5m * 0.5 / e, at most
    # one scrape and one evaluation later (e in [0.6, 1]: 150 s .. 250 s, + 90 s).
    for rep in result.replications:
        for p in rep["variants"]["rules"]["pairs"]:
            if p["alert"] == "MustFire":
                ideal = 300.0 * 0.5 / p["incident_severity"]
                assert ideal - 1 <= p["detection_ms"] / 1000 <= ideal + (SCRAPE_MS + EVAL_MS) / 1000


# -- the method against the Workbook's table --------------------------------------------------------


def _burn_rate_rules(tmp_path: Path) -> Any:
    import sloanalysis as sa
    from sloanalysis.slo.rulegen import dump_rules, generate_rules

    spec = tmp_path / "slo.yaml"
    spec.write_text(SLO_SPEC, encoding="utf-8")
    return parse_rules(dump_rules(generate_rules(sa.load_slos(spec))), "generated.yml")


@pytest.mark.parametrize("error_rate", [1.0, 0.1, 0.01, 0.001])
def test_burn_rate_detection_matches_alert_table(tmp_path: Path, error_rate: float) -> None:
    from sloanalysis.slo.workbook import alert_table

    groups = _burn_rate_rules(tmp_path)
    # 99.9 % over 1 day: pairs 5m/1m x5.76, 12m/1m x6 (page), 48m/4m x3, 2.4h/12m x1 (ticket).
    # The warm-up (data before evaluation) covers the longest window; the step lasts longer than
    # every window, so a burn rate at or below a factor has had its full chance.
    family = _step_family(
        {"fixed": error_rate}, duration={"fixed": "2h30m"}, quiet="10m", warmup="2h30m", length="5h30m"
    )
    result = run_validation(_validation(groups, family, 4), tmp_path / "out", LocalExecutor(1))
    table = {
        r["severity"]: r
        for r in alert_table(0.999, 24 * HOUR_MS, error_rates=[error_rate], scrape_interval_ms=SCRAPE_MS,
                             evaluation_interval_ms=EVAL_MS)
        if r["approach"] == 6
    }  # fmt: skip
    tolerance = SCRAPE_MS + EVAL_MS
    alerts = {a["severity"]: a for a in result.alerts if a["alert"] == "AvailabilityBurn"}
    assert set(alerts) == {"page", "ticket"}
    for severity, row in table.items():
        det = alerts[severity]["detection"]
        pairs = [
            p
            for rep in result.replications
            for p in rep["variants"]["rules"]["pairs"]
            if p["alert"] == "AvailabilityBurn" and p["severity"] == severity
        ]
        assert len(pairs) == 4
        if row["detected"]:
            assert det["p"] == 1.0, (severity, error_rate)
            for p in pairs:
                assert abs(p["detection_ms"] - row["detection_ms"]) <= tolerance, (severity, error_rate, p)
        elif not math.isclose(row["burn_rate"], row["max_quiet_burn_rate"], rel_tol=1e-9):
            assert det["p"] == 0.0, (severity, error_rate)
            assert det["lo"] == 0.0
        else:
            # The burn rate equals a factor (0.1 % on 99.9 %: the ticket's 2h24m/12m pair at 1x).
            # That is the boundary: the ratio can only reach the threshold once the long window
            # lies wholly inside the step, and there Prometheus's strict `>` compares two equal
            # values, which float rounding decides ("up to float rounding" in
            # sloanalysis.slo.workbook); either outcome is right. So this case only checks that
            # any firing comes no earlier than the window is full; the cases just below (0.09 %)
            # and above (0.11 %) the boundary are asserted exactly in the next test.
            long_ms = [
                w.long_ms for w in burn_windows(24 * HOUR_MS) if w.factor == row["max_quiet_burn_rate"]
            ]
            assert long_ms, row
            for p in pairs:
                assert p["detection_ms"] is None or p["detection_ms"] >= long_ms[0] - SCRAPE_MS, p


@pytest.mark.parametrize(("error_rate", "ticket_fires"), [(0.0009, False), (0.0011, True)])
def test_burn_rate_just_below_and_above_the_ticket_factor(
    tmp_path: Path, error_rate: float, ticket_fires: bool
) -> None:
    """Either side of the 1x boundary of the ticket's 2h24m/12m pair on a 99.9 % / 1 d SLO.

    Burn rate b = error rate / 0.001: 0.9 and 1.1. At 0.9 no pair's factor (5.76, 6, 3, 1) is
    exceeded: P(detect) is exactly 0 for page and ticket. At 1.1 only the 1x pair is exceeded:
    the ticket fires when the 2h24m window's ratio passes 0.001, 2h24m * 1 / 1.1 = 7854.5 s after
    the step (the 12m window passed it long before), up to one scrape plus one evaluation
    interval later, in every replication; the page never fires.
    """
    from sloanalysis.slo.workbook import alert_table

    groups = _burn_rate_rules(tmp_path)
    family = _step_family(
        {"fixed": error_rate}, duration={"fixed": "2h30m"}, quiet="10m", warmup="2h30m", length="5h30m"
    )
    result = run_validation(_validation(groups, family, 4), tmp_path / "out", LocalExecutor(1))
    alerts = {a["severity"]: a for a in result.alerts if a["alert"] == "AvailabilityBurn"}
    page, ticket = alerts["page"]["detection"], alerts["ticket"]["detection"]
    assert (page["detected"], page["incidents"]) == (0, 4)
    assert (ticket["detected"], ticket["incidents"]) == ((4 if ticket_fires else 0), 4)
    assert ticket["p"] == (1.0 if ticket_fires else 0.0)
    ideal_ms = 144 * 60_000 / 1.1
    for rep in result.replications:
        for p in rep["variants"]["rules"]["pairs"]:
            if p["alert"] == "AvailabilityBurn" and p["severity"] == "ticket" and ticket_fires:
                assert ideal_ms - 1_000 <= p["detection_ms"] <= ideal_ms + SCRAPE_MS + EVAL_MS, p
    # The analysis agrees.
    rows = alert_table(0.999, 24 * HOUR_MS, error_rates=[error_rate], scrape_interval_ms=SCRAPE_MS,
                       evaluation_interval_ms=EVAL_MS)  # fmt: skip
    analytic = {r["severity"]: bool(r["detected"]) for r in rows if r["approach"] == 6}
    assert analytic == {"page": False, "ticket": ticket_fires}


# -- the median detection time counting misses --------------------------------------------------------


def _synthetic_replications(times_s: list[float | None]) -> list[dict[str, Any]]:
    """One replication per incident of an alert that detected it after ``t`` s (None: missed)."""
    return [
        {
            "variants": {
                "rules": {
                    "alerts": [
                        {
                            "alert": "A",
                            "severity": "page",
                            "false_positives": 0,
                            "quiet_ms": HOUR_MS,
                            "firings": 1,
                        }
                    ],
                    "pairs": [
                        {
                            "incident": f"i{n}",
                            "incident_severity": 0.5,
                            "alert": "A",
                            "severity": "page",
                            "detected": t is not None,
                            "detection_ms": None if t is None else t * 1000.0,
                            "reset_ms": None,
                            "budget": None,
                        }
                    ],
                }
            }
        }
        for n, t in enumerate(times_s)
    ]


def _p_at_least(k: int, n: int, p: float) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


def test_median_with_misses_interval_keeps_never() -> None:
    """A resample of n incidents has a median of never once at least half of it are misses
    (n even: the upper middle value is a miss). With m of n missed, misses in a resample are
    Binomial(n, m/n); the 97.5 % bootstrap end is never when that chance exceeds 2.5 %, the
    2.5 % end when it exceeds 97.5 %. Dropping those resamples (the old way) gave a finite end."""
    from simulator.validation.outputs import _never
    from simulator.validation.summary import alert_summaries

    family = _step_family({"fixed": 0.5})

    def stat(times: list[float | None]) -> dict[str, Any]:
        return alert_summaries(_synthetic_replications(times), "rules", family, 5)[0][
            "detection_s_median_with_misses"
        ]

    # 10, 20, 30 s and one miss: median (20 + 30) / 2 = 25 s; P(>= 2 misses of 4 at 1/4) = 0.26.
    assert _p_at_least(2, 4, 0.25) == pytest.approx(0.2617, abs=1e-4)
    one_miss = stat([10.0, 20.0, None, 30.0])
    assert one_miss["value"] == 25.0 and one_miss["hi"] is None
    assert one_miss["lo"] is not None and 10.0 <= one_miss["lo"] <= 25.0
    assert _never(**one_miss, incidents=4).endswith(", never]")
    # 3 of 4 missed: the median is never; P(<= 1 miss) = 0.051 > 2.5 %: the low end is finite.
    assert 1 - _p_at_least(2, 4, 0.75) == pytest.approx(0.0508, abs=1e-4)
    most = stat([None, 40.0, None, None])
    assert most["value"] is None and most["hi"] is None and most["lo"] == 40.0
    assert _never(**most, incidents=4) == "never [40, never]"
    # 2 of 20 missed: P(>= 10 misses at 1/10) = 7e-6: finite, within the detected times.
    assert _p_at_least(10, 20, 0.1) < 1e-5
    few = stat([float(t) for t in range(1, 19)] + [None, None])
    assert few["value"] == 10.5 and few["hi"] is not None and 10.5 <= few["hi"] <= 18.0
    # Every incident missed: never, and nothing to resample into anything else.
    assert stat([None, None, None]) == {"value": None, "lo": None, "hi": None}


# -- determinism and resuming ------------------------------------------------------------------------


def _simulated_validation(n: int = 4) -> Validation:
    groups = parse_rules((ROOT / "monitoring/rules/tron-payment.yml").read_text(), "tron-payment.yml")
    family = family_from_dict(
        {
            "kind": "credential_stuffing",
            "severity": {"log_uniform": [2, 40]},
            "duration": {"uniform": ["5m", "15m"]},
            "start": {"uniform": ["0s", "10m"]},
            "quiet": "20m",
            "length": "70m",
            "expected_alerts": ["HighAuthenticationFailures"],
        }
    )
    scenario = load_scenario(ROOT / "scenarios" / "smoke.yaml")
    return Validation(tuple(groups), scenario, family, n, 11, EvalSettings(EVAL_MS))


def test_same_seed_same_results_local_and_dask(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from simulator.capacity.executors import DaskExecutor

    v = _simulated_validation()
    one = run_validation(v, tmp_path / "one", LocalExecutor(1))
    pool = LocalExecutor(2, preload=["simulator.validation.replication"])
    try:
        two = run_validation(v, tmp_path / "two", pool)
    finally:
        pool.close()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        dask = DaskExecutor(cluster.scheduler_address, timeout=30)
        try:
            remote = run_validation(v, tmp_path / "dask", dask)
        finally:
            dask.close()
    assert one.replications == two.replications == remote.replications
    assert one.alerts == two.alerts == remote.alerts
    sizes = [i["severity"] for r in one.replications for i in r["incidents"]]
    assert len(set(sizes)) == 4  # each replication drew its own incident


def test_interrupted_run_resumes_with_identical_results(tmp_path: Path) -> None:
    groups = parse_rules(KNOWN_RULES, "known.yml")
    v = _validation(groups, _step_family({"uniform": [0.1, 1.0]}), 5)
    fresh = run_validation(v, tmp_path / "fresh", LocalExecutor(1))

    class Stop(Exception):
        pass

    def stop_after_two(index: int) -> None:
        if index == 1:
            raise Stop

    with pytest.raises(Stop):
        run_validation(v, tmp_path / "resumed", LocalExecutor(1), on_replication=stop_after_two)
    assert len(list((tmp_path / "resumed" / "replications").glob("r*.json"))) == 2
    resumed = run_validation(v, tmp_path / "resumed", LocalExecutor(1))
    assert resumed.reused == 2
    assert resumed.replications == fresh.replications
    assert resumed.alerts == fresh.alerts
    # A changed input (another root seed) recomputes every replication.
    again = run_validation(_validation(groups, v.family, 5, seed=4), tmp_path / "resumed", LocalExecutor(1))
    assert again.reused == 0


# -- threshold selection --------------------------------------------------------------------------------


def test_threshold_selection_picks_fastest_feasible_and_pareto(tmp_path: Path) -> None:
    from simulator.validation.run import Tuning

    groups = parse_rules(KNOWN_RULES, "known.yml")
    family = _step_family({"choice": [0.3, 0.6, 0.9]})
    grid = {"threshold": [0.1, 0.5, 2.0]}
    points = tuple(tuning_variants(groups, "MustFire", "page", grid))
    v = _validation(groups, family, 6, tuning=Tuning("MustFire", "page", points, 100.0))
    result = run_validation(v, tmp_path / "out", LocalExecutor(1))
    rows = {r["setting"]: r for r in result.tuning}
    assert set(rows) == {"threshold=0.1", "threshold=0.5", "threshold=2"}
    # 0.1 is below every step: always detected, fastest (5m * 0.1 / e); 2 is never reached.
    assert rows["threshold=0.1"]["detection_p"] == 1.0
    assert rows["threshold=2"]["detection_p"] == 0.0
    assert rows["threshold=0.1"]["chosen"] and not rows["threshold=0.5"]["chosen"]
    assert rows["threshold=0.1"]["pareto"] and not rows["threshold=2"]["pareto"]
    assert rows["threshold=0.5"]["detection_s_median"] > rows["threshold=0.1"]["detection_s_median"]
    # A limit below the zero-event upper bound (3.689 per quiet day) leaves nothing feasible.
    strict = _validation(groups, family, 6, tuning=Tuning("MustFire", "page", points, 0.01))
    none = run_validation(strict, tmp_path / "strict", LocalExecutor(1))
    assert not any(r["chosen"] or r["feasible"] for r in none.tuning)


# -- the command ---------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def _family_yaml(**over: Any) -> str:
    data: dict[str, Any] = {
        "kind": "error_step",
        "severity": {"uniform": [0.6, 1.0]},
        "duration": {"fixed": "30m"},
        "quiet": "30m",
        "length": "2h",
    }
    data.update(over)
    return json.dumps(data)


def test_cli_writes_json_table_plot_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = _write(tmp_path, "known.yml", KNOWN_RULES)
    scenario = _write(tmp_path, "step.yaml", json.dumps(STEP_SCENARIO))
    family = _write(tmp_path, "family.yaml", _family_yaml())
    out = tmp_path / "out"
    code = main(["validate-alerts", scenario, family, "--rules", rules, "-n", "3", "--workers", "1",
                 "--out", str(out), "--format", "json"])  # fmt: skip
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    names = {a["alert"]: a for a in doc["alerts"]}
    assert names["MustFire"]["detection"]["detected"] == 3
    for name in ("validation.json", "alerts.txt", "detection.png", "report.md", "report.html"):
        assert (out / name).is_file(), name
    assert "MustFire" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("family", "n", "message"),
    [
        ("", "3", "empty incident family"),
        ("{}", "3", "empty incident family"),
        (_family_yaml(severity={"uniform": [0.5, 1.5]}), "3", "severity: error_step severity (error_ratio)"),
        (_family_yaml(kind="partial_failure", severity={"fixed": 2}), "3", "must lie in [0, 1]"),
        (_family_yaml(), "1", "-n: at least 2 replications"),
        (_family_yaml(kind="meteor"), "3", "kind: unknown incident kind 'meteor'"),
    ],
)
def test_bad_input_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], family: str, n: str, message: str
) -> None:
    rules = _write(tmp_path, "known.yml", KNOWN_RULES)
    scenario = _write(tmp_path, "step.yaml", json.dumps(STEP_SCENARIO))
    fam = _write(tmp_path, "family.yaml", family)
    code = main(["validate-alerts", scenario, fam, "--rules", rules, "-n", n, "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("tronsim validate-alerts: error: ")
    assert message in err[0]
    assert not (tmp_path / "o").exists()


def test_example_family_loads() -> None:
    family = load_family(ROOT / "scenarios" / "families" / "credential-stuffing.yaml")
    assert family.kind == "credential_stuffing" and family.severity_param == "rate"
    with pytest.raises(FamilyError, match="length:"):
        family_from_dict(json.loads(_family_yaml(length="1h")))


def test_cli_tune_writes_pareto_and_marks_the_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _write(tmp_path, "known.yml", KNOWN_RULES)
    scenario = _write(tmp_path, "step.yaml", json.dumps(STEP_SCENARIO))
    family = _write(tmp_path, "family.yaml", _family_yaml(severity={"choice": [0.3, 0.9]}))
    out = tmp_path / "out"
    code = main(["validate-alerts", scenario, family, "--rules", rules, "-n", "4", "--workers", "1",
                 "--out", str(out), "--tune", "MustFire", "--grid", "threshold=0.2,0.5;for=0m,2m",
                 "--max-fp-per-day", "50"])  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "threshold=0.2, for=0s" in text and "<==" in text
    doc = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    chosen = [p for p in doc["tuning"]["points"] if p["chosen"]]
    # 0.2 catches both sizes and sooner than 0.5 (which misses 0.3); for=0 is sooner than 2m.
    assert [c["setting"] for c in chosen] == ["threshold=0.2, for=0s"]
    assert (out / "pareto.png").is_file() and (out / "tuning.txt").is_file()


def test_replication_seeds_are_spawned_children_of_the_root(tmp_path: Path) -> None:
    import numpy as np

    from simulator.validation.family import draw_incidents

    groups = parse_rules(KNOWN_RULES, "known.yml")
    family = _step_family({"uniform": [0.1, 1.0]})
    result = run_validation(_validation(groups, family, 3, seed=21), tmp_path / "out", LocalExecutor(1))
    children = np.random.SeedSequence(21).spawn(3)
    for i, child in enumerate(children):
        draws, _sim = child.spawn(2)
        expected = draw_incidents(family, np.random.default_rng(draws))
        assert result.replications[i]["incidents"] == expected


def test_foreign_output_directory_is_refused_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rules = _write(tmp_path, "known.yml", KNOWN_RULES)
    scenario = _write(tmp_path, "step.yaml", json.dumps(STEP_SCENARIO))
    family = _write(tmp_path, "family.yaml", _family_yaml())
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("precious", encoding="utf-8")
    code = main(["validate-alerts", scenario, family, "--rules", rules, "-n", "2", "--workers", "1",
                 "--out", str(mine)])  # fmt: skip
    assert code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in mine.iterdir()) == ["chapter1.tex"]


# -- the alert-tuning notebook's validation section ------------------------------------------------------


def _validation_section(tmp_path: Path) -> Path:
    """The alert-tuning notebook cut to its parameters cell and its alert-validation cells (the
    rest needs a run directory; tests/test_notebooks.py executes the whole notebook)."""
    import nbformat

    from sloanalysis.report.build import notebooks_dir

    nb = nbformat.read(notebooks_dir() / "alert_tuning.ipynb", as_version=4)
    keep = [
        c for c in nb.cells if {"parameters", "alert-validation"} & set(c.get("metadata", {}).get("tags", []))
    ]
    assert len(keep) == 3, [c.metadata for c in keep]
    nb.cells = keep
    path = tmp_path / "section.ipynb"
    nbformat.write(nb, path)
    return path


def _images_and_text(nb: Any) -> tuple[int, str]:
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    text += "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    return images, text


def test_notebook_section_plots_a_validation_json_and_runs_an_example(tmp_path: Path) -> None:
    from sloanalysis.report.build import execute_notebook

    rules = _write(tmp_path, "known.yml", KNOWN_RULES)
    scenario = _write(tmp_path, "step.yaml", json.dumps(STEP_SCENARIO))
    family = _write(tmp_path, "family.yaml", _family_yaml(severity={"choice": [0.3, 0.9]}))
    out = tmp_path / "out"
    assert main(["validate-alerts", scenario, family, "--rules", rules, "-n", "3", "--workers", "1",
                 "--out", str(out), "--tune", "MustFire", "--grid", "threshold=0.2,0.5",
                 "--max-fp-per-day", "50", "--no-plot", "-q"]) == 0  # fmt: skip
    section = _validation_section(tmp_path)
    given = execute_notebook(
        section, tmp_path / "given.ipynb", {"validation": str(out)}, spec_dir=tmp_path / "k", cwd=tmp_path
    )
    images, text = _images_and_text(given)
    assert images == 2  # detection bands and the Pareto front
    assert "MustFire" in text and "threshold=0.2" in text and "availability 99.9% / 30d" in text
    # A setting that missed more than half the incidents has a median counting misses of never
    # (null), never a number.
    doc = json.loads((out / "validation.json").read_text(encoding="utf-8"))
    for p in doc["tuning"]["points"]:
        if p["detection_p"] < 0.5:
            assert p["detection_s_with_misses"] is None
    example = execute_notebook(
        section, tmp_path / "example.ipynb", {"validation_replications": 2}, spec_dir=tmp_path / "k",
        cwd=tmp_path,
    )  # fmt: skip
    images, text = _images_and_text(example)
    assert images == 2 and "a small example run in this kernel (2 replications)" in text
    assert "HighErrorRatio" in text


def test_report_shows_a_given_validation_and_nothing_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sloanalysis report --validation` puts the validation on the alert page; without it the
    page holds no validation section (a report shows only what its inputs hold)."""
    from reporting import smoke_run

    from sloanalysis.cli.main import main as sloanalysis_main

    rules = _write(tmp_path, "known.yml", KNOWN_RULES)
    scenario = _write(tmp_path, "step.yaml", json.dumps(STEP_SCENARIO))
    family = _write(tmp_path, "family.yaml", _family_yaml())
    out = tmp_path / "validation"
    assert main(["validate-alerts", scenario, family, "--rules", rules, "-n", "2", "--workers", "1",
                 "--out", str(out), "--no-plot", "-q"]) == 0  # fmt: skip
    run = smoke_run(tmp_path / "runs")
    pages = {}
    for name, extra in (("with", ["--validation", str(out)]), ("without", [])):
        argv = ["report", "--run", str(run), "--out", str(tmp_path / name), "--notebook", "alert_tuning"]
        assert sloanalysis_main([*argv, "-q", *extra]) in (0, 1)
        pages[name] = (tmp_path / name / "alert_tuning.html").read_text(encoding="utf-8")
    assert "Alert validation with confidence" in pages["with"] and "MustFire" in pages["with"]
    assert "Alert validation" not in pages["without"] and "validate-alerts" not in pages["without"]
    assert sloanalysis_main(["report", "--run", str(run), "--out", str(tmp_path / "x"),
                             "--validation", str(tmp_path / "nope")]) == 2  # fmt: skip
    assert "--validation" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
