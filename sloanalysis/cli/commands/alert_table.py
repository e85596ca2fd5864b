"""``sloanalysis alert-table``: the SRE Workbook's six alerting approaches for any objective and period.

For error rates of 100 %, 10 %, 1 % and 0.1 %: detection time (and its worst case, one scrape and
one evaluation interval later), budget consumed at detection, reset time and the largest burn
rate that never alerts, computed analytically (:mod:`sloanalysis.slo.workbook`).

``--style sloth|pyrra`` takes the burn-rate windows, factors and ``for`` of that tool's rules
(:func:`sloanalysis.slo.rulegen.style_windows`) instead of the native ones.

``--simulate`` adds measured values beside the analytic ones: step incidents run through the real
rule evaluation (:func:`sloanalysis.slo.workbook.step_incident_simulator`).
"""

from __future__ import annotations

import argparse
import sys

from sloanalysis.durations import format_duration_human, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.formatting import FORMATS, fmt_number, fmt_percent, render
from sloanalysis.slo.rulegen import STYLES, style_windows
from sloanalysis.slo.workbook import ERROR_RATES, alert_table, step_incident_simulator

NAME = "alert-table"
HELP = "Compare the SRE Workbook's six SLO alerting approaches (detection, budget, reset) for an objective."

COLUMNS = (
    "approach",
    "name",
    "severity",
    "rules",
    "error_rate",
    "burn_rate",
    "detection_ms",
    "detection_max_ms",
    "budget_consumed",
    "reset_ms",
    "max_quiet_burn_rate",
)
SIM_COLUMNS = ("sim_detection_ms", "sim_budget_consumed", "sim_reset_ms")
HEADERS = {
    "sim_detection_ms": "measured detection",
    "sim_budget_consumed": "measured budget",
    "sim_reset_ms": "measured reset",
    "approach": "#",
    "error_rate": "error rate",
    "burn_rate": "burn",
    "detection_ms": "detection",
    "detection_max_ms": "detection (max)",
    "budget_consumed": "budget at detection",
    "reset_ms": "reset",
    "max_quiet_burn_rate": "max quiet burn",
}


def _ratio(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise UserError(f"{what}: expected a number, got {text!r}") from None
    if not 0.0 < x < 1.0:
        raise UserError(f"{what}: must lie in (0, 1) exclusive, got {text} (write 0.999 for 99.9%)")
    return x


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--objective", required=True, metavar="RATIO", help="SLO objective in (0, 1), e.g. 0.999"
    )
    parser.add_argument("--period", default="30d", metavar="DUR", help="SLO period (default 30d)")
    parser.add_argument(
        "--style",
        choices=STYLES,
        default="native",
        help="burn-rate windows and factors of these rules: native (default), sloth or pyrra",
    )
    parser.add_argument(
        "--error-rates",
        default=",".join(f"{e:g}" for e in ERROR_RATES),
        metavar="LIST",
        help="comma-separated error rates in (0, 1] (default 1,0.1,0.01,0.001)",
    )
    parser.add_argument(
        "--scrape-interval", default="15s", metavar="DUR", help="for the worst-case detection"
    )
    parser.add_argument(
        "--evaluation-interval", default="30s", metavar="DUR", help="for the worst-case detection"
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also measure by running step incidents through the rule evaluation (needs the rule engine)",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default table)")


def run(args: argparse.Namespace) -> int:
    objective = _ratio(args.objective, "--objective")
    period = parse_duration_ms(args.period, what="--period")
    scrape = parse_duration_ms(args.scrape_interval, what="--scrape-interval")
    evaluation = parse_duration_ms(args.evaluation_interval, what="--evaluation-interval")
    if period <= 0 or scrape < 0 or evaluation < 0:
        raise UserError("--period must be positive, --scrape-interval and --evaluation-interval not negative")
    rates = []
    for part in str(args.error_rates).split(","):
        try:
            e = float(part)
        except ValueError:
            raise UserError(f"--error-rates: expected numbers, got {part!r}") from None
        if not 0.0 < e <= 1.0:
            raise UserError(f"--error-rates: each must lie in (0, 1], got {part}")
        rates.append(e)
    windows = style_windows(period, args.style)
    simulate = None
    if args.simulate:
        if scrape <= 0 or evaluation <= 0:
            raise UserError("--simulate needs positive --scrape-interval and --evaluation-interval")
        simulate = step_incident_simulator(
            objective, period, scrape_interval_ms=scrape, evaluation_interval_ms=evaluation
        )
    rows = alert_table(
        objective,
        period,
        error_rates=rates,
        scrape_interval_ms=scrape,
        evaluation_interval_ms=evaluation,
        simulate=simulate,
        windows=windows,
    )
    formatters = {
        "error_rate": lambda x: fmt_percent(x),
        "burn_rate": lambda x: fmt_number(x, 4),
        "detection_ms": format_duration_human,
        "detection_max_ms": format_duration_human,
        "budget_consumed": lambda x: "-" if x is None else fmt_percent(x, 3),
        "reset_ms": lambda x: "-" if x is None else format_duration_human(x),
        "max_quiet_burn_rate": lambda x: fmt_number(x, 4),
        "sim_detection_ms": lambda x: "never" if x is None else format_duration_human(x),
        "sim_budget_consumed": lambda x: "-" if x is None else fmt_percent(x, 3),
        "sim_reset_ms": lambda x: "-" if x is None else format_duration_human(x),
    }
    columns = list(COLUMNS) if args.format == "table" else [*COLUMNS, "detected", "first_rule"]
    if simulate is not None:
        columns += list(SIM_COLUMNS)
    sys.stdout.write(render(rows, args.format, columns=columns, headers=HEADERS, formatters=formatters))
    return 0
