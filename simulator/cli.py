"""``tronsim``: run, validate and export simulations of the TRON payout service.

User errors print one line naming the file, field or position and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from simulator.export import export_openmetrics, run_summary, write_run
from simulator.model import SimulationResult, simulate
from simulator.scenario import ScenarioError, load_scenario, truncated, with_overrides
from sloanalysis.durations import format_duration_ms, parse_duration_ms
from sloanalysis.errors import UserError


def _progress_bar(total: float) -> tuple[Any, Callable[[float], None] | None]:
    """A tqdm bar over simulated hours when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=round(total / 3600.0, 1), unit="sim h", file=sys.stderr, leave=False)

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
            f"{format_duration_ms(round(opened * 1000))} ({s['breaker_transitions']} transitions)",
        ),
        ("service down", format_duration_ms(round(result.breaker_seconds.get("service_down", 0.0) * 1000))),
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
    bar, update = _progress_bar(scenario.duration)
    events_path: Path | None = None
    try:
        if args.logs:
            fd, name = tempfile.mkstemp(
                prefix=".events.",
                suffix=".jsonl.tmp",
                dir=out.resolve().parent if out.resolve().parent.is_dir() else None,
            )
            events_path = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                result = simulate(scenario, log_stream=fh, progress=update)
        else:
            result = simulate(scenario, progress=update)
        if bar is not None:
            bar.close()
        write_run(result, out, openmetrics=args.openmetrics, events_file=events_path)
    finally:
        if events_path is not None and events_path.exists():
            events_path.unlink()
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


def cmd_capacity(args: argparse.Namespace) -> int:
    from simulator.capacity.sweep import capacity_command  # imported on use: keeps `run` start-up lean

    return capacity_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tronsim", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="simulate a scenario into a run directory")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", required=True, help="run directory to write (replaced atomically)")
    run.add_argument("--seed", type=int, help="override the scenario's seed")
    run.add_argument("--duration", help="override the duration, e.g. 6h or 3d")
    run.add_argument("--openmetrics", action="store_true", help="also write metrics.om for promtool backfill")
    run.add_argument("--logs", action="store_true", help="also write the seed's log events to events.jsonl")
    run.set_defaults(_run=cmd_run)
    val = sub.add_parser("validate", help="check a scenario file and exit")
    val.add_argument("scenario")
    val.set_defaults(_run=cmd_validate)
    exp = sub.add_parser("export-openmetrics", help="write metrics.om into an existing run directory")
    exp.add_argument("run")
    exp.set_defaults(_run=cmd_export_openmetrics)
    cap = sub.add_parser("capacity", help="sweep scenario parameters with replications (capacity planning)")
    cap.add_argument("sweep", help="sweep YAML file (sweeps/capacity.yaml)")
    cap.add_argument("--out", required=True, help="output directory (finished points are reused)")
    where = cap.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    where.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    cap.add_argument("--scheduler-timeout", type=float, default=10.0, help="seconds to reach it (10)")
    cap.add_argument("--format", choices=("table", "json"), default="table")
    cap.set_defaults(_run=cmd_capacity)
    from simulator.live import cli as livecli  # serve, load: aiohttp is imported only when they run

    livecli.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except UserError as exc:
        print(f"tronsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
