"""``sloanalysis lint``: static checks of alerting rules and a Grafana dashboard against a catalog.

The catalog (metric names, label names and values, types, scrape interval, limits) comes from a run
directory (``--run``), a metric-catalog file (``--catalog``, written by ``tronsim catalog``) or a
Prometheus server (``--prometheus URL``: its metric names, the series of the metrics the files
select, metadata and scrape interval, each request bounded by ``--timeout``). In every case the
recording rules of the rules file join it: their ``record:`` names are known metrics. Without a
source, the checks that need no catalog still run and whether metrics, labels and values exist is
not checked (a note on stderr says so). Exit status: 1 when any finding is an error,
0 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys

from sloanalysis.cli.app import add_timeout_argument
from sloanalysis.errors import UserError
from sloanalysis.formatting import render
from sloanalysis.promql.parse import dialect_for
from sloanalysis.rules.lint import (
    Catalog,
    catalog_from_file,
    catalog_from_prometheus,
    catalog_from_run,
    has_errors,
    lint_files,
    referenced_metrics,
    structural_catalog,
)

NAME = "lint"
HELP = "Check alerting rules (and a Grafana dashboard) for expressions that cannot mean what they say."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", metavar="FILE", help="Prometheus rules file")
    parser.add_argument("--dashboard", metavar="FILE", help="Grafana dashboard JSON")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", metavar="RUN", help="run directory whose series form the catalog")
    source.add_argument(
        "--catalog", metavar="FILE", help="metric catalog JSON (e.g. from 'tronsim catalog --out FILE')"
    )
    source.add_argument(
        "--prometheus", metavar="URL", help="a Prometheus server whose series and metadata form the catalog"
    )
    add_timeout_argument(parser)
    parser.add_argument(
        "--prometheus2",
        action="store_true",
        help="read the rules as Prometheus 2.42 does (default: Prometheus 3)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def _catalog(args: argparse.Namespace) -> Catalog:
    if args.run:
        return catalog_from_run(args.run)
    if args.catalog:
        return catalog_from_file(args.catalog)
    if args.prometheus:
        metrics = referenced_metrics(args.rules, args.dashboard)
        return catalog_from_prometheus(args.prometheus, metrics, timeout=args.timeout)
    print(
        "sloanalysis lint: note: no --run, --catalog or --prometheus: whether metrics, labels and "
        "values exist is not checked",
        file=sys.stderr,
    )
    return structural_catalog()


def run(args: argparse.Namespace) -> int:
    if args.rules is None and args.dashboard is None:
        raise UserError("give --rules FILE and/or --dashboard FILE")
    findings = lint_files(args.rules, args.dashboard, _catalog(args), dialect=dialect_for(args.prometheus2))
    rows = [f.as_row() for f in findings]
    if args.format == "json":
        sys.stdout.write(render(rows, "json", columns=["severity", "where", "check", "message", "expr"]))
    else:
        if rows:
            sys.stdout.write(render(rows, "table", columns=["severity", "where", "check", "message"]))
        errors = sum(f.severity == "error" for f in findings)
        print(f"{errors} error(s), {len(findings) - errors} warning(s)")
    return 1 if has_errors(findings) else 0
