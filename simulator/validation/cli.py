"""``tronsim validate-alerts``: its arguments, and a validation run to tables and files
(``simulator.cli`` registers it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from simulator.capacity.cli import _signals_exit
from simulator.capacity.executors import make_executor
from simulator.scenario import load_scenario
from simulator.validation.budget import budget_description, budget_sli
from simulator.validation.family import load_family
from simulator.validation.outputs import alert_rows, result_document, tuning_table_rows, write_outputs
from simulator.validation.run import Tuning, Validation, ValidationError, run_validation
from simulator.validation.selection import tuning_variants
from sloanalysis.cli.app import add_quiet_argument, progress_bar
from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.rules.backtest import EvalSettings, alert_identities
from sloanalysis.rules.model import RuleGroup, load_rule_files
from sloanalysis.rules.tuning import MAX_GRID_POINTS, parse_grid

__all__ = ["add_arguments", "validate_alerts_command"]

# No "%" here: argparse %-expands a subcommand's help ("95 % intervals" reads as "% i").
SUMMARY = "Monte Carlo alert validation: detection probability, times and false positives, 95-percent CIs."
EXAMPLES = (
    "tronsim validate-alerts scenarios/smoke.yaml scenarios/families/credential-stuffing.yaml "
    "--rules monitoring/rules/tron-payment.yml -n 40 --out runs/validation",
    "tronsim validate-alerts scenarios/smoke.yaml scenarios/families/credential-stuffing.yaml "
    "--rules monitoring/rules/tron-payment.yml -n 40 --out runs/tune --tune HighAuthenticationFailures "
    "--grid 'threshold=5,10,20;for=0m,2m' --max-fp-per-day 1",
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tronsim validate-alerts`` (the subparser itself is made by ``simulator.cli``)."""
    p.add_argument("scenario", help="scenario YAML (load, service, scrape; its own incidents are replaced)")
    p.add_argument("family", help="incident family YAML (kind, severity, duration, start, length, quiet)")
    p.add_argument("--rules", action="append", required=True, metavar="FILE", help="rule file (repeatable)")
    p.add_argument("-n", "--replications", type=int, required=True, metavar="N", help="replications (>= 2)")
    p.add_argument(
        "--seed", type=int, default=0, help="root seed; replication i uses SeedSequence(seed).spawn"
    )
    p.add_argument("--out", required=True, help="output directory (finished replications are reused)")
    p.add_argument(
        "--interval", default="1m", metavar="DUR", help="evaluation interval of groups without one"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    where.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--scheduler-timeout", type=float, default=10.0, help="seconds to reach it (10)")
    p.add_argument("--tune", metavar="NAME[:SEVERITY]", help="select a threshold for this alert over --grid")
    p.add_argument(
        "--grid", metavar="SPEC", help="e.g. 'threshold=5,10;for=0m,2m' or 'factor=6,14.4;windows=1h/5m'"
    )
    p.add_argument(
        "--pair", type=int, default=1, metavar="N",
        help="with --tune on a burn-rate alert: which long/short window pair to tune (default 1)",
    )  # fmt: skip
    p.add_argument(
        "--max-fp-per-day", type=float, default=1.0, metavar="X",
        help="with --tune: the upper 95 %% bound of false positives per day must stay below X (1)",
    )  # fmt: skip
    p.add_argument(
        "--slos", action="append", metavar="FILE",
        help="SLO file for 'budget before detection' (default: availability 99.9 percent over 30d)",
    )  # fmt: skip
    p.add_argument("--slo", metavar="NAME", help="which SLO of --slos (default: the first)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG plots")
    p.add_argument("--format", choices=("table", "json"), default="table")
    add_quiet_argument(p)


def _tuning(args: Any, groups: list[RuleGroup]) -> Tuning | None:
    if args.tune is None:
        if args.grid is not None:
            raise UserError("--grid: needs --tune NAME")
        return None
    if args.grid is None:
        raise UserError("--tune: needs --grid")
    alert, _, severity = args.tune.partition(":")
    sev = severity or None
    if sev is None:
        found = [s for n, s in alert_identities(groups) if n == alert]
        if len(set(found)) > 1:
            raise UserError(f"--tune {alert}: rules of several severities: name one as {alert}:SEVERITY")
    if not args.max_fp_per_day > 0:
        raise UserError(f"--max-fp-per-day: must be positive, got {args.max_fp_per_day:g}")
    grid = parse_grid(args.grid, MAX_GRID_POINTS)
    points = tuning_variants(groups, alert, sev, grid, pair=args.pair)
    return Tuning(alert, sev, tuple(points), args.max_fp_per_day)


def build_validation(args: Any) -> Validation:
    """The validation the arguments describe; every input is read and checked before any work."""
    if args.replications < 2:
        raise ValidationError(f"-n: at least 2 replications are needed, got {args.replications}")
    family = load_family(args.family)
    scenario = load_scenario(args.scenario)
    groups = load_rule_files(args.rules)
    interval = parse_duration_ms(args.interval, what="--interval")
    if interval <= 0:
        raise UserError(f"--interval: must be positive, got {args.interval!r}")
    return Validation(
        groups=tuple(groups),
        scenario=scenario,
        family=family,
        replications=args.replications,
        root_seed=args.seed,
        settings=EvalSettings(interval_ms=interval),
        tuning=_tuning(args, groups),
        sources=(args.scenario, args.family, *args.rules, *(args.slos or ())),
        rules_label=", ".join(args.rules),
        budget=budget_sli(args.slos, args.slo, family, scenario),
    )


def validate_alerts_command(args: Any) -> int:
    """``tronsim validate-alerts``: run (or resume) the replications, write the outputs, print the table."""
    from sloanalysis.formatting import render

    validation = build_validation(args)
    with _signals_exit():
        executor = make_executor(
            args.workers, args.scheduler, timeout=args.scheduler_timeout,
            preload=["simulator.validation.replication", "simulator.model"],
        )  # fmt: skip
        bar = progress_bar(validation.replications, "rep", "replications", quiet=args.quiet)
        try:
            result = run_validation(
                validation, args.out, executor,
                log=lambda m: print(m, file=sys.stderr),
                on_replication=None if bar is None else lambda _i: bar.update(),
            )  # fmt: skip
        except BaseException:  # interrupted or failed: stop running replications now
            executor.close(abort=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        executor.close()
    write_outputs(result, plot=not args.no_plot)
    if args.format == "json":
        print(json.dumps(result_document(result), indent=2, allow_nan=False))
        return 0
    print(render(alert_rows(result), "table"))
    if result.tuning:
        print()
        print(render(tuning_table_rows(result), "table"))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"\nbudget before detection: {budget_description(validation.budget)}")
    print(
        f"{validation.replications} replications ({result.reused} reused); "
        f"report {Path(result.out) / 'report.html'}"
    )
    return 0
