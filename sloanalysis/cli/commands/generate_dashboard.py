"""``sloanalysis generate-dashboard SLOS -o dashboard.json``: a Grafana dashboard for SLO files.

Per SLO: SLI, error budget left, alert state, SLI and burn rate per alert window over time
(:mod:`sloanalysis.slo.grafana`). The queries read the series ``generate-rules`` records (give the
same ``--style`` and window floors), or with ``--raw`` the SLIs' own queries. With ``-o`` the file
is written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import json
import sys

from sloanalysis.cli.commands.generate_rules import add_window_arguments, window_settings
from sloanalysis.errors import UserError
from sloanalysis.files import atomic_write_text
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.slo.grafana import dashboard
from sloanalysis.slo.rulegen import STYLES

NAME = "generate-dashboard"
HELP = "Generate a Grafana dashboard (SLI, burn rates, budget left, alert state) from SLO files."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("slos", nargs="+", metavar="SLOS", help="SLO files (any format generate-rules reads)")
    parser.add_argument(
        "-o", "--out", metavar="FILE", help="write the dashboard here (atomically) instead of stdout"
    )
    parser.add_argument("--title", default="SLOs", help="dashboard title (default: SLOs)")
    parser.add_argument(
        "--style",
        choices=STYLES,
        help="the rule style whose recorded series the queries read, as for generate-rules "
        "(default: each spec's own tool)",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="query the SLIs' own metrics instead of the series generate-rules records",
    )
    add_window_arguments(parser)


def run(args: argparse.Namespace) -> int:
    min_long, min_short, period = window_settings(args)
    if not args.title.strip():
        raise UserError("--title must not be empty")
    slos = load_slo_files(args.slos, period)
    board = dashboard(
        slos,
        title=args.title,
        style=args.style,
        recorded=not args.raw,
        min_long_ms=min_long,
        min_short_ms=min_short,
    )
    text = json.dumps(board, indent=2) + "\n"
    if args.out:
        atomic_write_text(args.out, text, inputs=args.slos)
    else:
        sys.stdout.write(text)
    return 0
