"""``tronsim capacity``: its arguments, and running a sweep to tables (``simulator.cli`` registers it)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

from simulator.capacity.executors import make_executor
from simulator.capacity.figures import axis_label
from simulator.capacity.run import SweepResult, run_sweep
from simulator.capacity.stats import config_ids
from simulator.capacity.sweep import MAX_POINTS, MAX_REPLICATIONS, load_sweep
from sloanalysis.cli.app import add_quiet_argument, progress_bar

__all__ = ["add_arguments", "capacity_command", "table_rows"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(cap: argparse.ArgumentParser) -> None:
    """The options of ``tronsim capacity`` (the subparser itself is made by ``simulator.cli``)."""
    cap.add_argument("sweep", help="sweep YAML file (sweeps/capacity.yaml)")
    cap.add_argument("--out", required=True, help="output directory (finished points are reused)")
    where = cap.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    where.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    cap.add_argument("--scheduler-timeout", type=float, default=10.0, help="seconds to reach it (10)")
    cap.add_argument(
        "--max-points",
        type=_positive_int,
        default=MAX_POINTS,
        help=f"refuse grids with more points than this ({MAX_POINTS})",
    )
    cap.add_argument(
        "--max-replications",
        type=_positive_int,
        default=MAX_REPLICATIONS,
        help=f"refuse more replications per point than this ({MAX_REPLICATIONS})",
    )
    cap.add_argument("--format", choices=("table", "json"), default="table")
    add_quiet_argument(cap)


def _fmt(row: Mapping[str, Any], metric: str, digits: int = 3) -> str:
    """``mean [low, high]`` from a row of JSON-safe values (None where NaN)."""
    mean, lo, hi = row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"]
    if mean is None:
        return "-"
    if lo is None or hi is None:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _fmt_limit(row: Mapping[str, Any]) -> str:
    """The sustainable rate with its interval; a missing upper end lies beyond the grid."""
    rate, lo, hi = row["max_rate"], row["max_rate_lo"], row["max_rate_hi"]
    if row["bound"] == "below grid":
        return f"< {rate:.3g} (no point keeps the SLO)"
    span = f"[{lo:.3g}, {'beyond grid' if hi is None else f'{hi:.3g}'}]"
    if row["bound"] == "above grid":
        return f">= {rate:.3g} (every point keeps the SLO) {span}"
    return f"{rate:.3g} {span}"


def _legend_rows(result: SweepResult) -> list[dict[str, Any]]:
    ids = config_ids(p.config for p in result.sweep.points)
    return [{"config": ident, "configuration": config} for config, ident in ids.items()]


def table_rows(result: SweepResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the point table and the SLO table, raw numbers (rendering formats them)."""
    points = json.loads(result.results.to_json(orient="records"))
    limits = json.loads(result.sustainable.to_json(orient="records"))
    return points, limits


_COLUMNS = {
    "throughput/s": "throughput",
    "success": "success_rate",
    "p95 s": "processing_p95",
    "p99 s": "processing_p99",
    "wait p95 s": "queue_wait_p95",
    "breaker s": "breaker_open_s",
}


def _print_tables(result: SweepResult) -> None:
    from sloanalysis.formatting import render

    sweep = result.sweep
    points, limits = table_rows(result)
    rows = [
        {"config": row["config_id"], "x": row["x"]}
        | {head: _fmt(row, m, 4 if m == "success_rate" else 3) for head, m in _COLUMNS.items()}
        for row in points
    ]
    print(render(rows, "table", headers={"x": axis_label(sweep.x)}))
    print()
    slo_rows = [
        {
            "config": r["config_id"],
            "slo": r["slo"],
            "max": _fmt_limit(r),
            "bound": r["bound"],
            "knee": r["knee"],
        }
        for r in limits
    ]
    print(render(slo_rows, "table", headers={"max": f"max {axis_label(sweep.x)} [95 % interval]"}))
    print()
    print(render(_legend_rows(result), "table"))  # full labels: two configurations never read the same
    print(
        f"\n{len(sweep.points)} points x {sweep.spec.replications} replications; "
        f"reused {result.reused} finished points; results in {result.out}"
    )


def _exit_on(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _signals_exit() -> Iterator[None]:
    """SIGTERM and SIGHUP end the command through ``finally`` blocks (workers stopped), not abruptly."""
    catch = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    old = {s: signal.signal(s, _exit_on) for s in catch}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def capacity_command(args: Any) -> int:
    """``tronsim capacity``: run (or resume) a sweep and print its tables."""
    sweep = load_sweep(args.sweep, max_points=args.max_points, max_replications=args.max_replications)
    with _signals_exit():
        executor = make_executor(
            args.workers, args.scheduler, timeout=args.scheduler_timeout, preload=["simulator.capacity.run"]
        )
        bar = progress_bar(len(sweep.points), "point", "sweep", quiet=args.quiet)
        try:
            result = run_sweep(
                sweep,
                args.out,
                executor,
                log=lambda m: print(m, file=sys.stderr),
                on_point=None if bar is None else lambda _point: bar.update(),
            )
        except BaseException:  # interrupted or failed: stop running replications now
            executor.close(abort=True)
            raise
        finally:
            if bar is not None:
                bar.close()
        executor.close()
    if args.format == "json":
        points, limits = table_rows(result)
        configs = {row["config"]: row["configuration"] for row in _legend_rows(result)}
        data = {
            "reused_points": result.reused,
            "warnings": result.warnings,
            "configs": configs,
            "points": points,
            "sustainable": limits,
        }
        print(json.dumps(data, indent=2))
    else:
        _print_tables(result)
    return 0
