"""``sloanalysis test-rules FILE...``: run promtool rule unit-test files on the embedded engine.

Output and exit status are promtool's (``promtool test rules``): 0 when every file passes, 1 when
any case fails; unreadable or malformed test files count as failures, as in promtool.
``--prometheus2`` follows promtool 2.42 (the version verified here, byte for byte, on Prometheus's
own test files); the default follows promtool 3 (``fuzzy_compare``; a test group without
``interval`` reads its series at ``evaluation_interval``), unverified against a real promtool 3.
"""

from __future__ import annotations

import argparse
import sys

from sloanalysis.rules.promtool import run_test_files

NAME = "test-rules"
HELP = (
    "Run promtool rule unit tests (rule_files, input_series, alert_rule_test, promql_expr_test) "
    "as promtool 3 does, or promtool 2.42 with --prometheus2 (only 2.42 is verified here)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="promtool test file(s)")
    parser.add_argument(
        "--prometheus2",
        action="store_true",
        help=(
            "promtool 2.42 semantics and output (verified byte for byte against promtool 2.42): "
            "Prometheus 2 range selectors and language, no fuzzy_compare, a test group without "
            "interval loads its series at interval 0"
        ),
    )


def run(args: argparse.Namespace) -> int:
    return run_test_files(args.files, sys.stdout, sys.stderr, prometheus2=args.prometheus2)
