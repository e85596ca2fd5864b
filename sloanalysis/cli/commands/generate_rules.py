"""``sloanalysis generate-rules SLOS``: recording rules and MWMB burn-rate alerts for SLO files.

``--style sloth|pyrra|native`` picks whose rules to write for any input; by default a Sloth spec
gets Sloth's rules, a Pyrra spec Pyrra's, the project's format and OpenSLO the native style
(windows and burn factors following each SLO's period, see :mod:`sloanalysis.slo.rulegen`). The output
passes ``promtool check rules``; with ``--out`` it is written to a temporary file and renamed,
so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import sys

from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.files import atomic_write_text
from sloanalysis.slo.formats import load_slo_files
from sloanalysis.slo.rulegen import STYLES, dump_rules, generate_rules

NAME = "generate-rules"
HELP = "Generate Prometheus recording rules and multi-window multi-burn-rate alerts from SLO files."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "slos",
        nargs="+",
        metavar="SLOS",
        help="SLO files (sloanalysis/v1; Sloth prometheus/v1, Kubernetes, OpenSLO v1alpha; Pyrra; OpenSLO)",
    )
    parser.add_argument(
        "--style",
        choices=STYLES,
        default=None,
        help="whose rules to write (default: Sloth's for Sloth specs, Pyrra's for Pyrra's, else native)",
    )
    parser.add_argument("--out", metavar="FILE", help="write the rules here (atomically) instead of stdout")
    parser.add_argument(
        "--format", choices=("yaml", "json"), default="yaml", help="rule file format (default yaml)"
    )
    add_window_arguments(parser)


def add_window_arguments(parser: argparse.ArgumentParser) -> None:
    """The window floors and Sloth's default period, shared with ``generate-dashboard`` (whose
    queries must read the series these rules record)."""
    parser.add_argument(
        "--min-long-window",
        default="5m",
        metavar="DUR",
        help="floor for long windows when scaling (default 5m)",
    )
    parser.add_argument(
        "--min-short-window",
        default="1m",
        metavar="DUR",
        help="floor for short windows when scaling (default 1m)",
    )
    parser.add_argument(
        "--default-period",
        default="30d",
        metavar="DUR",
        help="period of Sloth SLOs, which do not state one (default 30d)",
    )


def window_settings(args: argparse.Namespace) -> tuple[int, int, int]:
    """(min long window, min short window, default period) in ms, each checked positive."""
    min_long = parse_duration_ms(args.min_long_window, what="--min-long-window")
    min_short = parse_duration_ms(args.min_short_window, what="--min-short-window")
    period = parse_duration_ms(args.default_period, what="--default-period")
    if min_long <= 0 or min_short <= 0 or period <= 0:
        raise UserError("--min-long-window, --min-short-window and --default-period must be positive")
    return min_long, min_short, period


def run(args: argparse.Namespace) -> int:
    min_long, min_short, period = window_settings(args)
    slos = load_slo_files(args.slos, period)
    rules = generate_rules(slos, min_long_ms=min_long, min_short_ms=min_short, style=args.style)
    text = dump_rules(rules, args.format, source=", ".join(args.slos))
    for warning in rules.warnings:
        print(f"sloanalysis generate-rules: warning: {warning}", file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, text, inputs=args.slos)
    else:
        sys.stdout.write(text)
    return 0
