"""Shared, built-once inputs of the report and notebook tests (tests/test_report.py,
tests/test_notebooks.py): the smoke run and its rendered report.

Both modules ask for them through session fixtures; the functions here are cached per process
so the 2-hour simulation and the report (about 15 s of notebook execution) happen once.
"""

from __future__ import annotations

import functools
from pathlib import Path

from simulator.export import write_run
from simulator.model import simulate
from simulator.scenario import load_scenario, scenario_from_dict
from sloanalysis.report.build import ReportResult, build_report
from sloanalysis.report.model import Inputs

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
