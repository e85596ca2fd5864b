"""``sloanalysis`` command line: one subcommand per module in :mod:`sloanalysis.cli.commands`.

Each command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (:class:`~sloanalysis.errors.UserError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from sloanalysis.cli.commands import (
    alert_table,
    backtest,
    generate_rules,
    lint,
    promqltest,
    query,
    slo,
    test_rules,
    tune,
)
from sloanalysis.cli.commands import report as report_cmd
from sloanalysis.errors import UserError

# Explicit registry: add a command by importing its module here.
COMMANDS: tuple[ModuleType, ...] = (
    query,
    generate_rules,
    alert_table,
    slo,
    promqltest,
    backtest,
    lint,
    test_rules,
    report_cmd,
    tune,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sloanalysis", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except UserError as exc:
        print(f"sloanalysis {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
