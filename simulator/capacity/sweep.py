"""Capacity planning: a grid of scenario variants, replications per point, SLO headroom.

A sweep file names a base scenario, fixed overrides (``set``), a ``grid`` of dotted scenario
paths (``load.payout_rate``, ``service.payout_workers``, ``network.latency`` ...) with values, the
number of replications and a sweep seed. Every point runs ``replications`` simulations whose seeds
come from ``SeedSequence(seed, spawn_key=(point, replication))``, so results depend on the sweep
file alone, never on the executor or the worker count. Per replication the per-payout records
give throughput, success rate, processing-time and queue-wait percentiles and breaker time; per
point they are averaged with a 95 % Student-t interval over replications. Per configuration (the
grid without the load axis) the maximum arrival rate that keeps each SLO is interpolated between
neighbouring points, and the knee of the P95 curve is located (Kneedle).

Grid values are a list (labelled by value) or a mapping of label to value (named profiles); a
mapping value is merged into the scenario at its path, so one axis can move several fields.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator.capacity.executors import Executor
from simulator.model import PayoutRecords, simulate
from simulator.scenario import (
    PositiveSeconds,
    Probability,
    Scenario,
    ScenarioError,
    Seconds,
    load_scenario,
    scenario_from_dict,
    truncated,
)
from simulator.service import PAYOUT_STATUS
from sloanalysis.errors import UserError

FORMAT_VERSION = 1  # part of every point's key: bump when the per-replication metrics change
METRICS = (
    "throughput",
    "success_rate",
    "processing_p50",
    "processing_p95",
    "processing_p99",
    "queue_wait_p50",
    "queue_wait_p95",
    "queue_wait_p99",
    "queue_wait_mean",
    "p_wait",
    "breaker_open_s",
    "payouts",
    "pending_at_end",
)
RESULTS, REPLICATIONS, SUMMARY, PLOT, POINTS = (
    "results.parquet",
    "replications.parquet",
    "summary.json",
    "capacity.png",
    "points",
)


class SweepError(UserError):
    """A sweep file that cannot be used."""


# -- the sweep file --------------------------------------------------------------------------
class Slo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    processing_p95: PositiveSeconds = 30.0
    success_rate: Probability = 0.995


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "sweep"
    scenario: str = Field(description="base scenario file, relative to the sweep file")
    duration: PositiveSeconds | None = None
    warmup: Seconds = 0.0
    seed: int = Field(ge=0, default=0)
    replications: int = Field(ge=2, default=5)
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any] | dict[str, Any]]
    axis: str | None = None
    x: str | None = None
    slo: Slo = Slo()


@dataclass(frozen=True)
class Point:
    index: int
    labels: dict[str, Any]  # grid key -> label of its value
    config: str  # the labels of every grid key but the axis
    x: float  # the load value (``x`` path of the point's scenario)
    scenario: Scenario
    seeds: tuple[int, ...]
    key: str  # content hash: a finished point file is reused only if it matches

    @property
    def filename(self) -> str:
        return f"p{self.index:04d}-{self.key}.parquet"


@dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    source: str
    points: list[Point]
    axis: str
    x: str

    @property
    def params(self) -> list[str]:
        return list(self.spec.grid)


def _path_error(source: str, where: str, path: str, data: dict[str, Any]) -> str | None:
    node: Any = data
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            at = ".".join(walked) or "the top level"
            return f"{source}: {where}: the scenario has no parameter {path!r} (no {part!r} under {at})"
        node = node[part]
        walked.append(part)
    return None


def _merge(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = target
    for part in parents:
        node = node[part]
    if isinstance(value, Mapping) and isinstance(node.get(last), dict):
        merged = dict(node[last])
        for k, v in value.items():
            _merge(merged, str(k), v)
        node[last] = merged
    else:
        node[last] = copy.deepcopy(value)


def _label(value: Any) -> Any:
    if isinstance(value, Mapping):
        return ",".join(f"{k}={_label(v)}" for k, v in value.items())
    if isinstance(value, list):
        return json.dumps(value)
    return value


def _read_yaml(path: Path) -> Any:
    source = str(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SweepError(f"{source}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SweepError(f"{source}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SweepError(f"{source}: {where}invalid YAML: {getattr(exc, 'problem', exc)}") from None


def point_seeds(seed: int, point: int, replications: int) -> tuple[int, ...]:
    """Scenario seeds of one point: independent streams keyed by (sweep seed, point, replication)."""
    return tuple(
        int(np.random.SeedSequence(seed, spawn_key=(point, rep)).generate_state(1, np.uint64)[0])
        for rep in range(replications)
    )


def load_sweep(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> Sweep:
    """Read, validate and expand a sweep file; ``overrides`` replace top-level sweep fields."""
    path = Path(path)
    source = str(path)
    data = _read_yaml(path)
    if not isinstance(data, dict):
        raise SweepError(f"{source}: expected a mapping of sweep fields at the top level")
    data = {**data, **(overrides or {})}
    if "grid" in data and not data["grid"]:
        raise SweepError(f"{source}: grid: empty; give at least one scenario parameter with values")
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("list[", "dict[")))
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise SweepError(f"{source}: {loc or '(top level)'}: {msg.removeprefix('Value error, ')}") from None
    for key, values in spec.grid.items():
        if not values:
            raise SweepError(f"{source}: grid.{key}: no values")
    base = load_scenario(path.parent / spec.scenario)
    if spec.duration is not None:
        base = truncated(base, spec.duration)
    if spec.warmup >= base.duration:
        raise SweepError(f"{source}: warmup: must be shorter than the run ({base.duration:g} s)")
    base_data = base.model_dump()
    for where, keys in (("set", spec.set), ("grid", spec.grid)):
        for key in keys:
            problem = _path_error(source, f"{where}.{key}", key, base_data)
            if problem:
                raise SweepError(problem)
    axis = spec.axis or next(iter(spec.grid))
    if axis not in spec.grid:
        raise SweepError(f"{source}: axis: {axis!r} is not a grid parameter")
    x_path = spec.x or axis
    problem = _path_error(source, "x", x_path, base_data)
    if problem:
        raise SweepError(problem)
    for key, value in spec.set.items():
        _merge(base_data, key, value)

    choices = [
        list(v.items()) if isinstance(v, dict) else [(_label(x), x) for x in v] for v in spec.grid.values()
    ]
    points = []
    for index, combo in enumerate(itertools.product(*choices)):
        labels = {key: label for key, (label, _) in zip(spec.grid, combo, strict=True)}
        pdata = copy.deepcopy(base_data)
        for key, (_, value) in zip(spec.grid, combo, strict=True):
            _merge(pdata, key, value)
        desc = ", ".join(f"{k}={v}" for k, v in labels.items())
        try:
            scenario = scenario_from_dict(pdata, source=f"{source}: point {index} ({desc})")
        except ScenarioError as exc:
            raise SweepError(str(exc)) from None
        node: Any = scenario.model_dump()
        for part in x_path.split("."):
            node = node[part]
        if isinstance(node, bool) or not isinstance(node, int | float):
            raise SweepError(f"{source}: x: {x_path!r} is not a number (give x: a numeric scenario path)")
        seeds = point_seeds(spec.seed, index, spec.replications)
        ident = {
            "format": FORMAT_VERSION,
            "scenario": scenario.model_dump(mode="json"),
            "seeds": seeds,
            "warmup": spec.warmup,
        }
        key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        config = ", ".join(f"{k}={v}" for k, v in labels.items() if k != axis) or "all"
        points.append(Point(index, labels, config, float(node), scenario, seeds, key))
    return Sweep(spec, source, points, axis, x_path)


# -- one replication -------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    point: int
    rep: int
    seed: int
    scenario: Scenario
    warmup: float


def replication_metrics(
    payouts: PayoutRecords, breaker_seconds: Mapping[str, float], duration: float, warmup: float
) -> dict[str, float]:
    """Per-replication figures over payouts submitted after ``warmup``.

    Success rate: confirmed among finished payouts (confirmed, failed, rejected). Processing-time
    percentiles: processed (confirmed, failed) and still pending payouts, pending ones at their
    age at the end (a lower bound, so an overloaded point cannot look fast by never finishing).
    Queue waits: payouts that asked for a worker. Throughput: confirmations per second completed
    after ``warmup``. Breaker time: seconds not closed over the whole run.
    """
    status = payouts.status
    inside = payouts.submitted >= warmup
    confirmed = status == PAYOUT_STATUS["confirmed"]
    finished = status != PAYOUT_STATUS["pending"]
    timed = inside & (status != PAYOUT_STATUS["rejected"])
    completed_at = payouts.submitted + payouts.processing
    waits = payouts.queue_wait[inside & ~np.isnan(payouts.queue_wait)]
    out: dict[str, float] = {
        "throughput": float(np.count_nonzero(confirmed & (completed_at >= warmup))) / (duration - warmup),
        "success_rate": _ratio(
            float(np.count_nonzero(inside & confirmed)), float(np.count_nonzero(inside & finished))
        ),
    }
    for name, values in (("processing", payouts.processing[timed]), ("queue_wait", waits)):
        pct = np.percentile(values, [50, 95, 99]) if values.size else [math.nan] * 3
        for q, v in zip((50, 95, 99), pct, strict=True):
            out[f"{name}_p{q}"] = float(v)
    out["queue_wait_mean"] = float(waits.mean()) if waits.size else math.nan
    out["p_wait"] = float(np.count_nonzero(waits > 0) / waits.size) if waits.size else math.nan
    out["breaker_open_s"] = float(breaker_seconds.get("open", 0.0) + breaker_seconds.get("half_open", 0.0))
    out["payouts"] = float(np.count_nonzero(inside))
    out["pending_at_end"] = float(np.count_nonzero(~finished))
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def run_replication(task: Task) -> dict[str, float]:
    """One simulation of one point; a top-level function so every executor can ship it."""
    scenario = task.scenario.model_copy(update={"seed": task.seed})
    result = simulate(scenario, collect_payouts=True)
    assert result.payouts is not None
    return replication_metrics(result.payouts, result.breaker_seconds, scenario.duration, task.warmup)


# -- statistics ------------------------------------------------------------------------------
# Student-t 0.975 quantiles for 1..30 degrees of freedom; beyond, the Cornish-Fisher expansion
# (error below 1e-6 from 30 on).
_T975 = (
    12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425, 2.30600414,
    2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669, 2.13144955, 2.11990530,
    2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384, 2.07387307, 2.06865761, 2.06389856,
    2.05953855, 2.05552944, 2.05183052, 2.04840714, 2.04522964, 2.04227246,
)  # fmt: skip
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z, n = _Z975, float(df)
    return (
        z
        + (z**3 + z) / (4 * n)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * n**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * n**3)
        + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * n**4)
    )


def mean_ci(values: Iterable[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95 % t interval over the finite values; NaN bounds below two."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def aggregate(sweep: Sweep, reps: pd.DataFrame) -> pd.DataFrame:
    """One row per point: parameters, the load value, and mean/low/high of every metric."""
    rows = []
    for point in sweep.points:
        mine = reps[reps["point"] == point.index]
        row: dict[str, Any] = {"point": point.index, "config": point.config, "x": point.x}
        row.update(point.labels)
        row["replications"] = len(mine)
        for m in METRICS:
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean_ci(mine[m].tolist())
        rows.append(row)
    frame = pd.DataFrame(rows)
    for key in sweep.params:  # Parquet needs one type per column
        if len({type(v) for v in frame[key]}) > 1:
            frame[key] = frame[key].astype(str)
    return frame


def _crossing(x: np.ndarray, y: np.ndarray, threshold: float, higher_is_bad: bool) -> tuple[float, str]:
    """Load where ``y`` first breaks ``threshold``, linear between the last good and first bad point."""
    bad = ~((y <= threshold) if higher_is_bad else (y >= threshold))  # NaN counts as bad
    if bad[0]:
        return float(x[0]), "below grid"
    if not bad.any():
        return float(x[-1]), "above grid"
    i = int(np.argmax(bad))
    x0, x1, y0, y1 = x[i - 1], x[i], y[i - 1], y[i]
    if not math.isfinite(y1) or y1 == y0:
        return float(x0), "interpolated"
    return float(x0 + (threshold - y0) * (x1 - x0) / (y1 - y0)), "interpolated"


def knee(x: np.ndarray, y: np.ndarray) -> float:
    """Kneedle on an increasing convex curve: the point farthest below the normalised diagonal.

    NaN with fewer than three points, when the curve rises by less than half its lowest value (a
    flat curve has no knee, only noise), or when no point lies 0.1 below the diagonal (a straight
    or saturated-from-the-start curve has no bend inside the grid).
    """
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) < 0.5 * abs(float(y.min())) or np.ptp(y) == 0:
        return math.nan
    diff = (x - x.min()) / np.ptp(x) - (y - y.min()) / np.ptp(y)
    i = int(np.argmax(diff))
    return float(x[i]) if diff[i] >= 0.1 else math.nan  # hugging the diagonal: no clear bend


def sustainable(sweep: Sweep, results: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and SLO: the highest sustainable load, its interval, and the knee."""
    slo = sweep.spec.slo
    rules = (
        ("processing_p95", slo.processing_p95, True),
        ("success_rate", slo.success_rate, False),
    )
    rows = []
    for config, group in results.groupby("config", sort=False):
        g = group.sort_values("x")
        x = g["x"].to_numpy(dtype=np.float64)
        knee_x = knee(x, g["processing_p95"].to_numpy(dtype=np.float64))
        for metric, threshold, higher_is_bad in rules:
            est, where = _crossing(x, g[metric].to_numpy(dtype=np.float64), threshold, higher_is_bad)
            # Pessimistic curve: the interval's bad side; optimistic: its good side.
            worse, better = (
                (f"{metric}_hi", f"{metric}_lo") if higher_is_bad else (f"{metric}_lo", f"{metric}_hi")
            )
            lo, _ = _crossing(x, g[worse].to_numpy(dtype=np.float64), threshold, higher_is_bad)
            hi, _ = _crossing(x, g[better].to_numpy(dtype=np.float64), threshold, higher_is_bad)
            rows.append(
                {
                    "config": config,
                    "slo": f"{metric} {'<=' if higher_is_bad else '>='} {threshold:g}",
                    "max_rate": est,
                    "max_rate_lo": min(lo, est),
                    "max_rate_hi": max(hi, est),
                    "bound": where,
                    "knee": knee_x,
                }
            )
    return pd.DataFrame(rows)


# -- running ---------------------------------------------------------------------------------
def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are meant to be shared
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    _write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))


@dataclass
class SweepResult:
    sweep: Sweep
    results: pd.DataFrame
    replications: pd.DataFrame
    sustainable: pd.DataFrame
    reused: int
    out: Path


def _progress(total: int, initial: int) -> Any:
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="point", file=sys.stderr, leave=False)


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

    Each point's replications are written to ``out/points/`` atomically as soon as they are all
    in; a later run of the same sweep reuses them. ``on_point`` is called after each point is
    written (tests interrupt a sweep through it); ``log`` hears how many points were reused.
    """
    out = Path(out)
    points_dir = out / POINTS
    try:
        points_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SweepError(f"--out {out}: cannot create: {exc.strerror or exc}") from None
    done: dict[int, pd.DataFrame] = {}
    for point in sweep.points:
        file = points_dir / point.filename
        if file.exists():
            done[point.index] = pd.read_parquet(file)
    reused = len(done)
    if log is not None and reused:
        log(f"reusing {reused} of {len(sweep.points)} finished points from {points_dir}")
    tasks = [
        Task(p.index, rep, seed, p.scenario, sweep.spec.warmup)
        for p in sweep.points
        if p.index not in done
        for rep, seed in enumerate(p.seeds)
    ]
    by_index = {p.index: p for p in sweep.points}
    partial: dict[int, dict[int, dict[str, float]]] = {}
    bar = _progress(len(sweep.points), reused)
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
    replications = pd.concat([done[p.index] for p in sweep.points], ignore_index=True)
    results = aggregate(sweep, replications)
    limits = sustainable(sweep, results)
    _write_parquet(replications, out / REPLICATIONS)
    _write_parquet(results, out / RESULTS)
    summary = {
        "sweep": sweep.spec.name,
        "source": sweep.source,
        "points": len(sweep.points),
        "reused_points": reused,
        "replications": sweep.spec.replications,
        "axis": sweep.axis,
        "x": sweep.x,
        "slo": sweep.spec.slo.model_dump(),
        "sustainable": json.loads(limits.to_json(orient="records")),
    }
    _write_atomic(out / SUMMARY, lambda tmp: tmp.write_text(json.dumps(summary, indent=2) + "\n"))
    if plot:
        fig = capacity_figure(results, x_label=sweep.x, slo_seconds=sweep.spec.slo.processing_p95)
        _write_atomic(out / PLOT, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return SweepResult(sweep, results, replications, limits, reused, out)


# -- plotting --------------------------------------------------------------------------------
def capacity_figure(results: pd.DataFrame, *, x_label: str = "load", slo_seconds: float = 30.0) -> Any:
    """Processing-time P50/P95/P99 against load with 95 % intervals, one colour per configuration."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend
    from matplotlib.lines import Line2D

    configs = list(dict.fromkeys(results["config"]))
    fig = Figure(figsize=(9, 5.5 + 0.22 * len(configs)), layout="constrained")
    ax = fig.add_subplot()
    styles: dict[str, Any] = {"processing_p50": ":", "processing_p95": "-", "processing_p99": "--"}
    colors = [f"C{i}" for i in range(10)]
    for n, config in enumerate(configs):
        g = results[results["config"] == config].sort_values("x")
        for metric, style in styles.items():
            y = g[metric].to_numpy(dtype=np.float64)
            err = np.vstack([y - g[f"{metric}_lo"].to_numpy(), g[f"{metric}_hi"].to_numpy() - y])
            ax.errorbar(
                g["x"], y, yerr=np.nan_to_num(err), fmt=style, marker="o", markersize=3, capsize=2,
                color=colors[n % len(colors)],
            )  # fmt: skip
    ax.axhline(slo_seconds, color="black", linestyle="-.", linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("payout processing time (s)")
    ax.set_title("Payout processing time vs load (95 % CI over replications)")
    ax.grid(True, which="both", alpha=0.3)
    # Two legends: colours name configurations, line styles name percentiles.
    handles = [Line2D([], [], color=colors[n % len(colors)], marker="o") for n in range(len(configs))]
    fig.legend(handles, configs, loc="outside lower center", fontsize="small", ncol=1)
    pct = [Line2D([], [], color="grey", linestyle=st) for st in styles.values()]
    pct.append(Line2D([], [], color="black", linestyle="-."))
    ax.legend(pct, ["P50", "P95", "P99", f"SLO {slo_seconds:g} s"], fontsize="small", loc="upper left")
    return fig


# -- the command -----------------------------------------------------------------------------
def _fmt(row: Mapping[str, Any], metric: str, digits: int = 3) -> str:
    """``mean [low, high]`` from a row of JSON-safe values (None where NaN)."""
    mean, lo, hi = row[metric], row[f"{metric}_lo"], row[f"{metric}_hi"]
    if mean is None:
        return "-"
    if lo is None or hi is None:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _fmt_limit(row: Mapping[str, Any]) -> str:
    if row["bound"] == "above grid":
        return f">= {row['max_rate']:.3g} (all points keep the SLO)"
    if row["bound"] == "below grid":
        return f"< {row['max_rate']:.3g} (no point keeps the SLO)"
    return _fmt(row, "max_rate")


def table_rows(result: SweepResult) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows for the point table and the SLO table, raw numbers (rendering formats them)."""
    points = json.loads(result.results.to_json(orient="records"))
    limits = json.loads(result.sustainable.to_json(orient="records"))
    return points, limits


def capacity_command(args: Any) -> int:
    """``tronsim capacity``: run (or resume) a sweep and print its tables."""
    from simulator.capacity.executors import make_executor
    from sloanalysis.formatting import render

    sweep = load_sweep(args.sweep)
    executor = make_executor(
        args.workers, args.scheduler, timeout=args.scheduler_timeout, preload=["simulator.capacity.sweep"]
    )
    try:
        result = run_sweep(sweep, args.out, executor, log=lambda m: print(m, file=sys.stderr))
    finally:
        executor.close()
    points, limits = table_rows(result)
    if args.format == "json":
        print(json.dumps({"reused_points": result.reused, "points": points, "sustainable": limits}, indent=2))
        return 0
    columns = {
        "throughput/s": "throughput",
        "success": "success_rate",
        "p95 s": "processing_p95",
        "p99 s": "processing_p99",
        "wait p95 s": "queue_wait_p95",
        "breaker s": "breaker_open_s",
    }
    rows = [
        {"config": row["config"], "x": row["x"]}
        | {head: _fmt(row, m, 4 if m == "success_rate" else 3) for head, m in columns.items()}
        for row in points
    ]
    print(render(rows, "table"))
    print()
    slo_rows = [
        {
            "config": row["config"],
            "slo": row["slo"],
            f"max {sweep.x}": _fmt_limit(row),
            "bound": row["bound"],
            "knee": row["knee"],
        }
        for row in limits
    ]
    print(render(slo_rows, "table"))
    print(
        f"\n{len(sweep.points)} points x {sweep.spec.replications} replications; "
        f"reused {result.reused} finished points; results in {result.out}"
    )
    return 0
