"""The ``sloanalysis`` command line.

Each module in ``sloanalysis.cli.commands`` exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; the registry below lists them explicitly, with an example or two for each.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from sloanalysis.cli.app import add_command, new_parser, run_guarded
from sloanalysis.cli.commands import (
    alert_table,
    backtest,
    generate_dashboard,
    generate_rules,
    lint,
    promqltest,
    query,
    slo,
    test_rules,
    tune,
)
from sloanalysis.cli.commands import report as report_cmd

# Explicit registry: add a command by importing its module here.
COMMANDS: tuple[ModuleType, ...] = (
    query,
    generate_rules,
    generate_dashboard,
    alert_table,
    slo,
    promqltest,
    backtest,
    lint,
    test_rules,
    report_cmd,
    tune,
)


DESCRIPTION = """\
SLOs, burn rates and alert quality over Prometheus metrics: from a simulation run directory
(embedded PromQL engine, no server) or from a real Prometheus server (--prometheus URL).

exit status: 0 success, 1 a failed check (report gates, lint errors, failing rule tests),
2 bad input or any other error (one line on stderr), 130 interrupted."""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "query": (
        "sloanalysis query runs/smoke 'sum by (status) (rate(tron_payment_requests_total[5m]))' --step 1m",
        "sloanalysis query --prometheus http://127.0.0.1:9090 'up' --start 1h --format json",
    ),
    "generate-rules": ("sloanalysis generate-rules slos/tron-payment.yaml --out rules.yml",),
    "generate-dashboard": ("sloanalysis generate-dashboard slos/tron-payment.yaml -o dashboard.json",),
    "alert-table": ("sloanalysis alert-table --objective 0.999 --period 30d --simulate",),
    "slo": (
        "sloanalysis slo slos/tron-payment.yaml --run runs/reference",
        "sloanalysis slo slos/tron-payment.yaml --prometheus http://127.0.0.1:9090 --start 7d",
    ),
    "promqltest": ("sloanalysis promqltest tests/promql/*.test",),
    "backtest": (
        "sloanalysis backtest --rules monitoring/rules/tron-payment.yml runs/reference",
        "sloanalysis backtest --rules my-rules.yml --prometheus http://127.0.0.1:9090 --start 1d --end now",
    ),
    "lint": ("sloanalysis lint --rules monitoring/seed/alerting-rules.yml --run runs/reference",),
    "test-rules": ("sloanalysis test-rules tests/rules/tron-payment-test.yml",),
    "report": (
        "sloanalysis report --run runs/reference --out reports/reference "
        "--rules monitoring/rules/tron-payment.yml",
    ),
    "tune": (
        "sloanalysis tune --rules monitoring/rules/tron-payment.yml --alert HighFailureRate "
        "--grid 'threshold=0.05,0.1;for=0m,5m' runs/reference",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("sloanalysis", DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        p = add_command(sub, module.NAME, module.HELP, EXAMPLES.get(module.NAME, ()))
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # jsonschema (under nbformat, for `report`) imports rfc3987_syntax only for its optional "iri"
    # format check, compiling ~40 grammars (about 1 s); no schema here uses it: skip it in our process.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    args = build_parser().parse_args(argv)
    return run_guarded("sloanalysis", args, args._run)


if __name__ == "__main__":
    raise SystemExit(main())
