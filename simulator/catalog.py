"""The simulator's metric catalog as JSON, for ``sloanalysis lint --catalog``.

What a scrape of the simulated service exposes, without running it: every family of
:func:`simulator.metrics.make_metrics` (name, type, help, its label names and the label sets of
its samples), plus ``up``, and the target labels (``job``, ``instance``) and scrape interval of
the scenario defaults, which a scrape adds to every series.
sloanalysis never imports the simulator: it reads this file (``tronsim catalog --out FILE``).
"""

from __future__ import annotations

from typing import Any

from simulator.metrics import make_metrics
from simulator.scenario import Scenario

__all__ = ["CATALOG_FORMAT", "metric_catalog"]

CATALOG_FORMAT = "tronsim-metric-catalog/1"


def _defaults() -> dict[str, Any]:
    fields = Scenario.model_fields
    return {
        "job": fields["job"].default,
        "instance": fields["instance"].default,
        "scrape_interval_seconds": fields["scrape_interval"].default,
    }


def metric_catalog() -> dict[str, Any]:
    """The catalog document: ``families`` (name, type, help, label_names, samples), ``target_labels``
    and ``scrape_interval_seconds`` (the scenario defaults)."""
    defaults = _defaults()
    families = []
    for family in make_metrics().registry.collect():
        samples = [{"name": x.name, "labels": dict(x.labels)} for x in family.samples]
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "label_names": sorted({k for x in samples for k in x["labels"]}),
                "samples": samples,
            }
        )
    families.append(
        {
            "name": "up",
            "type": "gauge",
            "help": "Whether the last scrape succeeded (0=down, 1=up)",
            "label_names": [],
            "samples": [{"name": "up", "labels": {}}],
        }
    )
    return {
        "format": CATALOG_FORMAT,
        "target_labels": {"job": defaults["job"], "instance": defaults["instance"]},
        "scrape_interval_seconds": defaults["scrape_interval_seconds"],
        "families": families,
    }
