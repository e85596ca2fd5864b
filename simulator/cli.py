"""``tronsim``: run, validate and export simulations of the TRON payout service.

User errors print one line naming the file, field or position and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simulator.export import export_openmetrics, run_directory, run_summary, write_run_files
from simulator.model import SimulationResult, simulate
from simulator.scenario import ScenarioError, load_scenario, truncated, with_overrides
from sloanalysis.cli.app import add_command, add_quiet_argument, new_parser, progress_bar, run_guarded
from sloanalysis.durations import format_duration_human, format_duration_ms, parse_duration_ms
from sloanalysis.files import atomic_write_text
from sloanalysis.sources.rundir import EVENTS

DESCRIPTION = """\
Simulate the TRON payout service (a SimPy model of its API, payout workers and circuit breaker)
under synthetic network load and incidents; write run directories that sloanalysis and a real
Prometheus (after promtool backfill) read; plan capacity; serve the model live over HTTP.

exit status: 0 success, 2 bad input or any other error (one line on stderr), 130 interrupted."""


def _progress_bar(total: float, quiet: bool) -> tuple[Any, Callable[[float], None] | None]:
    """A bar over simulated hours on a terminal (not with --quiet), else None."""
    bar = progress_bar(round(total / 3600.0, 1), "sim h", "simulating", quiet=quiet)
    if bar is None:
        return None, None

    def update(now: float) -> None:
        bar.n = round(now / 3600.0, 1)
        bar.refresh()

    return bar, update


def summary_table(result: SimulationResult, out: Path | None) -> str:
    s = run_summary(result)
    sc = result.scenario
    opened = result.breaker_seconds.get("open", 0.0) + result.breaker_seconds.get("half_open", 0.0)
    rows = [
        ("scenario", f"{sc.name} (seed {sc.seed}, {format_duration_ms(round(sc.duration * 1000))})"),
        ("requests", f"{s['requests']:,} ({s['requests_lost_while_down']:,} lost while down)"),
        ("payouts confirmed", f"{s['payouts_by_status']['confirmed']:,}"),
        ("payouts failed", f"{s['payouts_by_status']['failed']:,}"),
        ("payouts rejected", f"{s['payouts_by_status']['rejected']:,}"),
        ("payouts pending at end", f"{s['payouts_pending_at_end']:,}"),
        (
            "breaker not closed",
            f"{format_duration_human(round(opened * 1000))} ({s['breaker_transitions']} transitions)",
        ),
        (
            "service down",
            format_duration_human(round(result.breaker_seconds.get("service_down", 0.0) * 1000)),
        ),
        ("incidents", ", ".join(i["id"] for i in result.incidents) or "none"),
        ("series / samples", f"{s['series']:,} / {s['samples']:,}"),
        ("simpy events", f"{s['simpy_events']:,}"),
        ("wall time", f"{s['wall_seconds']:.2f} s"),
        ("simulated s per wall s", f"{s['simulated_seconds_per_wall_second']:,.0f}"),
    ]
    if out is not None:
        rows.append(("run directory", str(out)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def cmd_run(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    try:
        if args.seed is not None:
            scenario = with_overrides(scenario, seed=args.seed)
        if args.duration is not None:
            duration = parse_duration_ms(args.duration, what="--duration") / 1000.0
            if duration <= 0:
                raise ScenarioError(f"--duration: must be positive, got {args.duration!r}")
            scenario = truncated(scenario, duration)
    except ScenarioError as exc:
        raise ScenarioError(f"{args.scenario}: {str(exc).split(': ', 1)[-1]}") from None
    out = Path(args.out)
    # The output is checked before simulating and built in a temporary sibling that a killed
    # run leaves for the next one to remove; the event log streams straight into it.
    with run_directory(out, inputs=[args.scenario]) as tmp:
        bar, update = _progress_bar(scenario.duration, args.quiet)
        if args.logs:
            with open(tmp / EVENTS, "w", encoding="utf-8") as fh:
                result = simulate(scenario, log_stream=fh, progress=update, mode=args.simulation)
        else:
            result = simulate(scenario, progress=update, mode=args.simulation)
        if bar is not None:
            bar.close()
        write_run_files(result, tmp, openmetrics=args.openmetrics, events=args.logs)
    print(summary_table(result, out))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    scenario = load_scenario(args.scenario)
    print(
        f"{args.scenario}: ok ({scenario.name}, {format_duration_ms(round(scenario.duration * 1000))}, "
        f"{len(scenario.incidents)} incidents)"
    )
    return 0


def cmd_export_openmetrics(args: argparse.Namespace) -> int:
    print(export_openmetrics(args.run))
    return 0


def cmd_catalog(args: argparse.Namespace) -> int:
    import json

    from simulator.catalog import metric_catalog

    text = json.dumps(metric_catalog(), indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
        return 0
    atomic_write_text(args.out, text)
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from simulator.capacity.cli import capacity_command  # imported on use: keeps `run` start-up lean

    return capacity_command(args)


def cmd_validate_alerts(args: argparse.Namespace) -> int:
    from simulator.validation.cli import validate_alerts_command

    return validate_alerts_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = new_parser("tronsim", DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = add_command(
        sub,
        "run",
        "Simulate a scenario into a run directory (samples, incidents, run.json; OpenMetrics on request).",
        (
            "tronsim run scenarios/smoke.yaml --out runs/smoke --openmetrics --logs",
            "tronsim run scenarios/reference.yaml --out runs/ref --seed 7 --duration 3d",
        ),
    )
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", required=True, help="run directory (replaces only one tronsim run wrote)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--duration", help="override the duration, e.g. 6h or 3d")
    run.add_argument("--openmetrics", action="store_true", help="also write metrics.om for promtool backfill")
    run.add_argument("--logs", action="store_true", help="also write the seed's log events to events.jsonl")
    run.add_argument(
        "--simulation",
        choices=("batch", "events"),
        default="batch",
        help="batch: draw uncontended requests in batches (default); events: every request a SimPy process",
    )
    add_quiet_argument(run)
    run.set_defaults(_run=cmd_run)
    val = add_command(
        sub,
        "validate",
        "Check a scenario file (every field, and what would make a run fail) without running it.",
        ("tronsim validate scenarios/reference.yaml",),
    )
    val.add_argument("scenario")
    val.set_defaults(_run=cmd_validate)
    exp = add_command(
        sub,
        "export-openmetrics",
        "Write metrics.om (OpenMetrics for promtool backfill) into an existing run directory.",
        (
            "tronsim export-openmetrics runs/ref",
            "promtool tsdb create-blocks-from openmetrics --max-block-duration=720h runs/ref/metrics.om db/",
        ),
    )
    exp.add_argument("run")
    exp.set_defaults(_run=cmd_export_openmetrics)
    cat = add_command(
        sub,
        "catalog",
        "Write the simulator's metric catalog (families, types, help, labels, up, target labels) as JSON.",
        (
            "tronsim catalog --out catalog.json",
            "sloanalysis lint --rules monitoring/seed/alerting-rules.yml --catalog catalog.json",
        ),
    )
    cat.add_argument("--out", metavar="FILE", help="file to write (default: standard output)")
    cat.set_defaults(_run=cmd_catalog)
    cap = add_command(
        sub,
        "capacity",
        "Sweep scenario parameters with replications (capacity planning): rates, latencies, knee.",
        (
            "tronsim capacity sweeps/capacity.yaml --out runs/capacity",
            "tronsim capacity sweeps/capacity.yaml --out runs/capacity --scheduler tcp://127.0.0.1:8786",
        ),
    )
    from simulator.capacity.cli import add_arguments as capacity_arguments

    capacity_arguments(cap)
    cap.set_defaults(_run=cmd_capacity)
    from simulator.validation.cli import EXAMPLES as validation_examples
    from simulator.validation.cli import SUMMARY as validation_summary
    from simulator.validation.cli import add_arguments as validation_arguments

    val_alerts = add_command(sub, "validate-alerts", validation_summary, validation_examples)
    validation_arguments(val_alerts)
    val_alerts.set_defaults(_run=cmd_validate_alerts)
    from simulator.live import cli as livecli  # serve, load: aiohttp is imported only when they run

    livecli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_guarded("tronsim", args, args._run)


if __name__ == "__main__":
    sys.exit(main())
