"""``sloanalysis test-rules FILE...``: run promtool rule unit-test files on the embedded engine.

Output and exit status are promtool's (``promtool test rules``): 0 when every file passes, 1 when
any case fails; unreadable or malformed test files count as failures, as in promtool.
"""

from __future__ import annotations

import argparse
import sys

from sloanalysis.rules.promtool import run_test_files

NAME = "test-rules"
HELP = "Run promtool rule unit tests (rule_files, input_series, alert_rule_test, promql_expr_test)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="promtool test file(s)")
    parser.add_argument(
        "--prometheus2",
        action="store_true",
        help="Prometheus 2.x range selectors (closed on the left), as promtool 2.x evaluates them",
    )


def run(args: argparse.Namespace) -> int:
    return run_test_files(args.files, sys.stdout, sys.stderr, prometheus2=args.prometheus2)
