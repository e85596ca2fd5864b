"""The alert-validation section of the alert-tuning notebook: a validation document to plot, either
read from ``tronsim validate-alerts`` output or computed in the kernel by a small example.

The example is bounded so the notebook still executes in seconds: an ``error_step`` family
(availability counters, no service model) of a few replications, one threshold alert on the 5m
error ratio and a grid of thresholds and ``for`` to draw the Pareto front from. Its counters carry
no errors outside incidents, so its false positives are zero, their upper 95 % bounds set only by
the quiet time observed.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

from simulator.validation.run import RESULTS
from sloanalysis.errors import UserError

__all__ = [
    "EXAMPLE_GRID",
    "MAX_EXAMPLE_REPLICATIONS",
    "example_document",
    "load_document",
    "show_validation",
    "validation_document",
]

MAX_EXAMPLE_REPLICATIONS = 20
EXAMPLE_GRID = "threshold=0.002,0.005,0.01;for=0m,2m"
EXAMPLE_MAX_FP_PER_DAY = 20.0

_RATIO = "(1 - sum(rate(slo_successful_requests_total[5m])) / sum(rate(slo_total_requests_total[5m])))"
_EXAMPLE_RULES = f"""
groups:
  - name: example
    rules:
      - alert: HighErrorRatio
        expr: {_RATIO} > 0.01
        for: 2m
        labels: {{severity: page}}
"""
_EXAMPLE_SCENARIO = {
    "name": "error-step-example",
    "start": "2026-01-05T00:00:00Z",
    "duration": "1h",
    "scrape_interval": "30s",
    "load": {"api_rate": 10, "payout_rate": 0.1},
}
_EXAMPLE_FAMILY = {
    "name": "error-step-example",
    "kind": "error_step",
    "severity": {"log_uniform": [0.002, 0.05]},
    "duration": {"uniform": ["5m", "20m"]},
    "start": {"uniform": ["0s", "10m"]},
    "incidents": 3,
    "quiet": "20m",
    "length": "3h",
    "severity_bins": 4,
}


def load_document(path: str | Path) -> dict[str, Any]:
    """The ``validation.json`` at ``path`` (or in the directory ``path``)."""
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"{p}: not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("alerts"), list):
        raise UserError(f"{p}: not a validation.json of tronsim validate-alerts (no 'alerts')")
    return doc


def example_document(replications: int = 4, seed: int = 0) -> dict[str, Any]:
    """The validation document of the bounded example (see the module docstring), run in this
    process in a temporary directory that is removed afterwards."""
    from simulator.capacity.executors import LocalExecutor
    from simulator.scenario import scenario_from_dict
    from simulator.validation.family import family_from_dict
    from simulator.validation.outputs import result_document
    from simulator.validation.run import Tuning, Validation, run_validation
    from simulator.validation.selection import tuning_variants
    from sloanalysis.rules.backtest import EvalSettings
    from sloanalysis.rules.model import parse_rules
    from sloanalysis.rules.tuning import MAX_GRID_POINTS, parse_grid

    if not 2 <= replications <= MAX_EXAMPLE_REPLICATIONS:
        raise UserError(
            f"validation_replications: the example runs 2 to {MAX_EXAMPLE_REPLICATIONS}, got {replications}"
        )
    groups = parse_rules(_EXAMPLE_RULES, "example.yml")
    points = tuning_variants(groups, "HighErrorRatio", "page", parse_grid(EXAMPLE_GRID, MAX_GRID_POINTS))
    validation = Validation(
        groups=tuple(groups),
        scenario=scenario_from_dict(_EXAMPLE_SCENARIO),
        family=family_from_dict(_EXAMPLE_FAMILY),
        replications=replications,
        root_seed=seed,
        settings=EvalSettings(interval_ms=60_000),
        tuning=Tuning("HighErrorRatio", "page", tuple(points), EXAMPLE_MAX_FP_PER_DAY),
        rules_label="example.yml",
    )
    with tempfile.TemporaryDirectory(prefix="tronsim-validation-") as tmp:
        result = run_validation(validation, Path(tmp) / "out", LocalExecutor(1))
        return result_document(result)


def validation_document(path: str | Path | None, replications: int = 4) -> tuple[dict[str, Any], str]:
    """(document, where it came from): ``path``'s ``validation.json``, or the example run here."""
    if path:
        return load_document(path), f"`{path}`"
    return example_document(replications), f"a small example run in this kernel ({replications} replications)"


def show_validation(path: str | Path | None, replications: int = 4) -> dict[str, Any] | None:
    """Display (IPython) a validation: where it came from and the SLO of its budget, the table per
    alert, detection probability per severity with 95 % Wilson bands and, with threshold
    selection, the grid's table and Pareto front with intervals. ``path`` None and
    ``replications`` 0: nothing runs. Returns the document shown."""
    import pandas as pd
    from IPython.display import Image, Markdown, display

    from simulator.validation.outputs import alert_rows, detection_figure, pareto_figure, tuning_table_rows
    from sloanalysis.report.context import html_table

    def table(rows: list[dict[str, Any]]) -> Any:
        return html_table(pd.DataFrame(rows))

    def png(fig: Any) -> Any:  # the figures are pyplot-free: no inline backend to render them
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        return Image(data=buf.getvalue(), format="png")

    if not path and not replications:
        display(Markdown("Alert validation skipped (`validation_replications = 0`, no `validation`)."))
        return None
    doc, source = validation_document(path, replications)
    budget = (doc.get("budget_slo") or {}).get("description", "availability 99.9% / 30d (the default)")
    display(
        Markdown(
            f"From {source}: {doc['replications']} replications of the `{doc['family']['kind']}` "
            f"family *{doc['family']['name']}*, rules {doc['rules']}. Budget before detection is "
            f"measured against {budget}."
        )
    )
    display(table(alert_rows(doc)))
    display(png(detection_figure(doc)))
    tuning = doc.get("tuning") or {}
    if tuning.get("points"):
        chosen = next((p["setting"] for p in tuning["points"] if p["chosen"]), "none qualifies")
        display(
            Markdown(
                f"Threshold selection for `{tuning['alert']}`: the fastest setting whose false positives "
                f"per day stay below {tuning['max_fp_per_day']:g} at 95 % confidence: **{chosen}**."
            )
        )
        display(table(tuning_table_rows(doc)))
        display(png(pareto_figure(doc)))
    else:
        display(Markdown("No threshold grid in this validation (`--tune NAME --grid SPEC` adds one)."))
    return doc
