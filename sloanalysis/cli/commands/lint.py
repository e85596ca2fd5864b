"""``sloanalysis lint``: static checks of alerting rules and a Grafana dashboard against a catalog.

The catalog (metric names, label names and values, types, scrape interval, limits) comes from a run
directory (``--run``) or, without one, from the simulator's own metric definitions. Exit status:
1 when any finding is an error, 0 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from sloanalysis.errors import UserError
from sloanalysis.formatting import render
from sloanalysis.rules.lint import Catalog, catalog_from_metadata, catalog_from_run, has_errors, lint_files

NAME = "lint"
HELP = "Check alerting rules (and a Grafana dashboard) for expressions that cannot mean what they say."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="FILE", help="Prometheus rules file")
    parser.add_argument("--dashboard", metavar="FILE", help="Grafana dashboard JSON")
    parser.add_argument("--run", metavar="RUN", help="run directory whose series form the catalog")
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def simulator_catalog() -> Catalog:
    """The simulator's metric families (imported lazily: sloanalysis does not depend on simulator)."""
    try:
        from simulator.metrics import make_metrics
    except ImportError:
        raise UserError("no --run given and the simulator is not installed: pass --run RUN") from None
    registry = make_metrics().registry
    extra = {"job": "tron-payment-api", "instance": "tron-payment-api:8090"}
    families = [
        (f.name, f.type, f.documentation, [(s.name, dict(s.labels)) for s in f.samples])
        for f in registry.collect()
    ]
    families.append(("up", "gauge", "Whether the last scrape succeeded (0=down, 1=up)", [("up", {})]))
    return catalog_from_metadata(families, extra_labels=extra)


def run(args: argparse.Namespace) -> int:
    if args.rules is None and args.dashboard is None:
        raise UserError("give --rules FILE and/or --dashboard FILE")
    catalog = catalog_from_run(args.run) if args.run else simulator_catalog()
    findings = lint_files(args.rules, args.dashboard, catalog)
    rows = [f.as_row() for f in findings]
    if args.format == "json":
        sys.stdout.write(render(rows, "json", columns=["severity", "where", "check", "message", "expr"]))
    else:
        if rows:
            sys.stdout.write(render(rows, "table", columns=["severity", "where", "check", "message"]))
        errors = sum(f.severity == "error" for f in findings)
        print(f"{errors} error(s), {len(findings) - errors} warning(s)")
    return 1 if has_errors(findings) else 0
