"""Shared, built-once inputs of the report and notebook tests (tests/test_report.py,
tests/test_report_compliance.py, tests/test_notebooks.py): the smoke run and its rendered report,
and a week of a non-TRON ``web`` service with a 1-day SLO missed on day 3 (worked by hand in
tests/test_report_compliance.py).

Both modules ask for them through session fixtures; the functions here are cached per process
so the 2-hour simulation and the report (about 15 s of notebook execution) happen once.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario, scenario_from_dict
from sloanalysis.report.build import ReportResult, build_report
from sloanalysis.report.model import Inputs
from sloanalysis.store import SeriesStore

ROOT = Path(__file__).resolve().parent.parent
SLOS = ROOT / "slos" / "tron-payment.yaml"
DASHBOARD = ROOT / "monitoring" / "seed" / "dashboard.json"
SEED_RULES = ROOT / "monitoring" / "seed" / "alerting-rules.yml"
CORRECTED_RULES = ROOT / "monitoring" / "rules" / "tron-payment.yml"


def rules_files() -> tuple[str, ...]:
    """The seed's rules, and the corrected ones once they exist."""
    return tuple(str(p) for p in (SEED_RULES, CORRECTED_RULES) if p.is_file())


@functools.cache
def smoke_run(base: Path) -> Path:
    """``scenarios/smoke.yaml`` simulated into ``base/smoke`` (with OpenMetrics, for backfills)."""
    return write_run(
        simulate(load_scenario(ROOT / "scenarios" / "smoke.yaml")), base / "smoke", openmetrics=True
    )


@functools.cache
def smoke_report(base: Path) -> ReportResult:
    """Every notebook rendered on the smoke run into ``base/report``."""
    inputs = Inputs(
        run_dir=str(smoke_run(base)), slos=str(SLOS), rules=rules_files(), dashboard=str(DASHBOARD)
    )
    return build_report(inputs, base / "report")


def scenario_run(base: Path, name: str, data: dict) -> Path:
    """A run of a scenario given as a dict (validated like a scenario file)."""
    return write_run(simulate(scenario_from_dict(data, source=f"<{name}>")), base / name)


# -- a week of the web service ------------------------------------------------------------------------

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
T0 = int(pd.Timestamp("2024-05-06T00:00:00Z").value // 1_000_000)
DAYS = 7
BAD_FROM, BAD_TO = T0 + 2 * DAY + 6 * HOUR, T0 + 2 * DAY + 12 * HOUR
WEB_SPEC = {
    "version": "sloanalysis/v1",
    "service": "web",
    "slos": [
        {
            "name": "web-availability",
            "objective": 0.99,
            "period": "1d",
            "sli": {
                "events": {
                    "total": 'requests_total{job="web"}',
                    "bad": 'requests_total{job="web",code="500"}',
                }
            },
        }
    ],
}
"""99 % of the web job's requests answered without a 500, over one day."""


def week_store() -> SeriesStore:
    """Seven days from :data:`T0` of ``requests_total{job="web",code="200"|"500"}``, sampled every
    15 s at hh:mm:05/:20/:35/:50: 25 requests per interval, 5 % of them 500s in the intervals
    whose end sample lies in ``(BAD_FROM, BAD_TO]`` (day 3, 06:00 to 12:00), none otherwise."""
    ts = T0 + 5_000 + 15_000 * np.arange(DAYS * DAY // 15_000, dtype=np.int64)
    bad = np.where((ts > BAD_FROM) & (ts <= BAD_TO), 25 * 0.05, 0.0)
    store = SeriesStore()
    # Large starting values: extrapolation is never cut at zero, so ratios of rates are exact.
    store.add({"__name__": "requests_total", "job": "web", "code": "200"}, ts, 1e6 + np.cumsum(25 - bad))
    store.add({"__name__": "requests_total", "job": "web", "code": "500"}, ts, 1e6 + np.cumsum(bad))
    return store


def write_web_spec(directory: Path, **changes: object) -> Path:
    """:data:`WEB_SPEC` (its SLO's fields updated with ``changes``) as ``directory/web-1d.yaml``."""
    spec = json.loads(json.dumps(WEB_SPEC))
    spec["slos"][0].update(changes)
    path = directory / "web-1d.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def write_store_run(store: SeriesStore, root: Path) -> Path:
    """A minimal run directory around ``store``: its samples, no incidents, an empty run.json."""
    root.mkdir(parents=True)
    store.to_parquet(root / "samples.parquet")
    (root / "incidents.csv").write_text("id,kind,start,end,expected_alerts\n", encoding="utf-8")
    (root / "run.json").write_text("{}", encoding="utf-8")
    return root
