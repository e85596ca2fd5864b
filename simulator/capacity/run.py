"""Running a sweep: every replication of every unfinished point, resumable, then the outputs.

Each point's replications are written to ``out/points/`` atomically as soon as they are all in;
a later run of the same sweep reuses the points whose content key matches. At the end the
combined ``replications.parquet`` and ``results.parquet``, ``summary.json`` and ``capacity.png``.
A changed sweep run into the same directory removes the earlier sweep's other points and
combined results first (with a message); a directory without the ``.tronsim-sweep`` marker that
is not empty is refused untouched.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.capacity.executors import Executor
from simulator.capacity.figures import capacity_figure
from simulator.capacity.metrics import replication_metrics
from simulator.capacity.stats import INTERVAL_METHODS, aggregate, config_ids, replication_warning, sustainable
from simulator.capacity.sweep import Point, Sweep, SweepError
from simulator.model import simulate
from simulator.scenario import Scenario
from sloanalysis.files import atomic_write_with, claim_directory

__all__ = [
    "PLOT",
    "POINTS",
    "REPLICATIONS",
    "RESULTS",
    "SUMMARY",
    "SWEEP_MARKER",
    "SweepResult",
    "Task",
    "run_replication",
    "run_sweep",
]

SWEEP_MARKER = ".tronsim-sweep"  # `capacity --out` adds only to a directory carrying it (or empty)
RESULTS, REPLICATIONS, SUMMARY, PLOT, POINTS = (
    "results.parquet",
    "replications.parquet",
    "summary.json",
    "capacity.png",
    "points",
)


@dataclass(frozen=True)
class Task:
    point: int
    rep: int
    seed: int
    scenario: Scenario
    warmup: float


def run_replication(task: Task) -> dict[str, float]:
    """One simulation of one point; a top-level function so every executor can ship it."""
    scenario = task.scenario.model_copy(update={"seed": task.seed})
    result = simulate(scenario, collect_payouts=True)
    assert result.payouts is not None
    return replication_metrics(result.payouts, result.breaker_seconds, scenario.duration, task.warmup)


@dataclass
class SweepResult:
    sweep: Sweep
    results: pd.DataFrame
    replications: pd.DataFrame
    sustainable: pd.DataFrame
    reused: int
    out: Path
    warnings: list[str] = field(default_factory=list)


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    atomic_write_with(path, write)  # umask permissions: results are meant to be shared


def _forget_other_sweeps(sweep: Sweep, out: Path, reused: int) -> int:
    """Delete the point files of an earlier, different sweep definition and the combined results.

    Point files are named by content key, so a changed sweep keeps the points it shares with
    the earlier one and loses the rest. The combined results describe the points of the last
    finished run: they go before any point is computed, so an interrupted run never leaves one
    sweep's results beside another's points (they are rewritten once every point is done).
    """
    current = {p.filename for p in sweep.points}
    stale = [f for f in (out / POINTS).glob("p*.parquet") if f.name not in current]
    if not stale and reused == len(sweep.points):
        return 0
    for f in stale:
        f.unlink(missing_ok=True)
    for name in (RESULTS, REPLICATIONS, SUMMARY, PLOT):
        (out / name).unlink(missing_ok=True)
    return len(stale)


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    _write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _progress(total: int, initial: int) -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="point", file=sys.stderr, leave=False)


def _finished_points(sweep: Sweep, points_dir: Path) -> dict[int, pd.DataFrame]:
    """Replications of the points a previous run finished (matched by the file's content key)."""
    done: dict[int, pd.DataFrame] = {}
    for point in sweep.points:
        file = points_dir / point.filename
        if file.exists():
            done[point.index] = pd.read_parquet(file)
    return done


def _run_missing(
    sweep: Sweep,
    points_dir: Path,
    executor: Executor,
    done: dict[int, pd.DataFrame],
    on_point: Callable[[Point], None] | None,
) -> None:
    """Run the replications of every point not in ``done``; each point is written when complete."""
    tasks = [
        Task(p.index, rep, seed, p.scenario, sweep.spec.warmup)
        for p in sweep.points
        if p.index not in done
        for rep, seed in enumerate(p.seeds)
    ]
    by_index = {p.index: p for p in sweep.points}
    partial: dict[int, dict[int, dict[str, float]]] = {}
    bar = _progress(len(sweep.points), len(done))
    try:
        for i, metrics in executor.map_unordered(run_replication, tasks):
            task = tasks[i]
            partial.setdefault(task.point, {})[task.rep] = metrics
            point = by_index[task.point]
            if len(partial[task.point]) < len(point.seeds):
                continue
            reps = partial.pop(task.point)
            frame = pd.DataFrame(
                [{"point": point.index, "rep": r, "seed": point.seeds[r], **reps[r]} for r in sorted(reps)]
            )
            _write_parquet(frame, points_dir / point.filename)
            done[point.index] = frame
            if bar is not None:
                bar.update(1)
            if on_point is not None:
                on_point(point)
    finally:
        if bar is not None:
            bar.close()


def _write_outputs(result: SweepResult, *, plot: bool) -> None:
    sweep, out = result.sweep, result.out
    _write_parquet(result.replications, out / REPLICATIONS)
    _write_parquet(result.results, out / RESULTS)
    summary = {
        "sweep": sweep.spec.name,
        "source": sweep.source,
        "points": len(sweep.points),
        "reused_points": result.reused,
        "replications": sweep.spec.replications,
        "axis": sweep.axis,
        "x": sweep.x,
        "slo": sweep.spec.slo.model_dump(),
        "warnings": result.warnings,
        "configs": {ident: config for config, ident in config_ids(p.config for p in sweep.points).items()},
        "intervals": INTERVAL_METHODS,
        "sustainable": json.loads(result.sustainable.to_json(orient="records")),
    }
    _write_atomic(out / SUMMARY, lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
    if plot:
        slo = sweep.spec.slo
        fig = capacity_figure(
            result.results,
            x_label=sweep.x,
            slo_seconds=slo.processing_p95,
            slo_success=slo.success_rate,
            limits=result.sustainable,
        )
        _write_atomic(out / PLOT, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    executor: Executor,
    *,
    on_point: Callable[[Point], None] | None = None,
    plot: bool = True,
    log: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every point not already finished in ``out/points``, then write the combined results.

    ``on_point`` is called after each point is written (tests interrupt a sweep through it);
    ``log`` hears how many points were reused and, once, the warning for too few replications
    (also in ``summary.json`` and the result's ``warnings``).
    """
    out = Path(out)
    points_dir = out / POINTS
    claim_directory(
        out, SWEEP_MARKER, inputs=[sweep.source], legacy=(RESULTS, REPLICATIONS, SUMMARY, PLOT, POINTS),
        what="capacity sweep directory",
    )  # fmt: skip
    try:
        points_dir.mkdir(exist_ok=True)
    except OSError as exc:
        raise SweepError(f"--out {out}: cannot create: {exc.strerror or exc}") from None
    done = _finished_points(sweep, points_dir)
    reused = len(done)
    forgotten = _forget_other_sweeps(sweep, out, reused)
    if log is not None and forgotten:
        log(f"{out}: the sweep changed: removed {forgotten} point(s) of the earlier sweep and its results")
    if log is not None and reused:
        log(f"reusing {reused} of {len(sweep.points)} finished points from {points_dir}")
    warnings = [w for w in (replication_warning(sweep.spec.replications),) if w]
    for warning in warnings:
        if log is not None:
            log(f"warning: {warning}")
    _run_missing(sweep, points_dir, executor, done, on_point)
    replications = pd.concat([done[p.index] for p in sweep.points], ignore_index=True)
    results = aggregate(sweep.points, sweep.params, replications)
    limits = sustainable(results, sweep.spec.slo)
    result = SweepResult(sweep, results, replications, limits, reused, out, warnings)
    _write_outputs(result, plot=plot)
    return result
