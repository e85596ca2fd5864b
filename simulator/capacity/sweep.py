"""Capacity planning: a sweep file, its grid of scenario variants and the seeds of their replications.

A sweep file names a base scenario, fixed overrides (``set``), a ``grid`` of dotted scenario
paths (``load.payout_rate``, ``service.payout_workers``, ``network.latency`` ...) with values, the
number of replications and a sweep seed. Every point runs ``replications`` simulations whose seeds
come from ``SeedSequence(seed, spawn_key=(point, replication))``, so results depend on the sweep
file alone, never on the executor or the worker count (running them: :mod:`.run`; intervals,
sustainable rate and knee: :mod:`.stats`).

Grid values are a list (labelled by value) or a mapping of label to value (named profiles); a
mapping value is merged into the scenario at its path, so one axis can move several fields.

Bounds, checked before any work starts: every number in ``set`` and ``grid`` is finite; a grid
has at most :data:`MAX_POINTS` points (the product of its value counts) and a point at most
:data:`MAX_REPLICATIONS` replications. Larger sweeps are allowed when asked for explicitly
(``max_points``/``max_replications``, ``tronsim capacity --max-points/--max-replications``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from simulator.capacity.metrics import FORMAT_VERSION
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
from sloanalysis.config import validate
from sloanalysis.errors import UserError
from sloanalysis.yamlload import load_yaml_file

__all__ = [
    "MAX_POINTS",
    "MAX_REPLICATIONS",
    "Point",
    "Slo",
    "Sweep",
    "SweepError",
    "SweepSpec",
    "load_sweep",
    "point_seeds",
]

MAX_POINTS = 10_000  # ~3 ms and ~20 KB per expanded point before anything runs
MAX_REPLICATIONS = 1_000


class SweepError(UserError):
    """A sweep file that cannot be used."""


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


# -- reading ---------------------------------------------------------------------------------
def _read_spec(path: Path, overrides: Mapping[str, Any] | None) -> SweepSpec:
    source = str(path)
    data = load_yaml_file(path, SweepError)
    if not isinstance(data, dict):
        raise SweepError(f"{source}: expected a mapping of sweep fields at the top level")
    data = {**data, **(overrides or {})}
    if "grid" in data and not data["grid"]:
        raise SweepError(f"{source}: grid: empty; give at least one scenario parameter with values")
    spec = validate(SweepSpec, data, source, SweepError)
    for key, values in spec.grid.items():
        if not values:
            raise SweepError(f"{source}: grid.{key}: no values")
    return spec


# -- bounds ----------------------------------------------------------------------------------
_NOT_FINITE = {"inf", "infinity", "nan"}


def _numbers(value: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every leaf of a YAML value with its path (``grid.load.payout_rate[2]``)."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _numbers(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{where}[{i}]")
    else:
        yield where, value


def _not_finite(value: Any) -> bool:
    """NaN or infinite, also as the strings pydantic would read as such (``"inf"``, ``"-nan"``)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, str) and value.strip().lower().lstrip("+-") in _NOT_FINITE


def check_bounds(spec: SweepSpec, source: str, *, max_points: int, max_replications: int) -> None:
    """Refuse non-finite values and sweeps larger than the limits, before anything is expanded."""
    for where, values in (("set", spec.set), ("grid", spec.grid)):
        for path, value in _numbers(values, where):
            if _not_finite(value):
                raise SweepError(f"{source}: {path}: must be a finite number, got {value!r}")
    if spec.replications > max_replications:
        raise SweepError(
            f"{source}: replications: {spec.replications} exceeds the limit of {max_replications} "
            "per point (raise it with --max-replications)"
        )
    counts = [len(v) for v in spec.grid.values()]
    size = math.prod(counts)
    if size > max_points:
        shape = " x ".join(str(c) for c in counts)
        raise SweepError(
            f"{source}: grid: {size} points ({shape}) exceed the limit of {max_points} "
            "(raise it with --max-points)"
        )


# -- the grid --------------------------------------------------------------------------------
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


def point_seeds(seed: int, point: int, replications: int) -> tuple[int, ...]:
    """Scenario seeds of one point: independent streams keyed by (sweep seed, point, replication)."""
    return tuple(
        int(np.random.SeedSequence(seed, spawn_key=(point, rep)).generate_state(1, np.uint64)[0])
        for rep in range(replications)
    )


def _base(spec: SweepSpec, path: Path) -> tuple[dict[str, Any], str, str]:
    """The base scenario with ``set`` applied, the axis and the load path, every path checked."""
    source = str(path)
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
    return base_data, axis, x_path


def _point(
    spec: SweepSpec,
    source: str,
    base_data: dict[str, Any],
    index: int,
    combo: tuple[Any, ...],
    axis: str,
    x_path: str,
) -> Point:
    """Grid point ``index``: ``combo`` holds one (label, value) per grid key, in grid order."""
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
    return Point(index, labels, config, float(node), scenario, seeds, key)


def load_sweep(
    path: str | Path,
    *,
    overrides: Mapping[str, Any] | None = None,
    max_points: int = MAX_POINTS,
    max_replications: int = MAX_REPLICATIONS,
) -> Sweep:
    """Read, validate and expand a sweep file; ``overrides`` replace top-level sweep fields."""
    path = Path(path)
    source = str(path)
    spec = _read_spec(path, overrides)
    check_bounds(spec, source, max_points=max_points, max_replications=max_replications)
    base_data, axis, x_path = _base(spec, path)
    choices = [
        list(v.items()) if isinstance(v, dict) else [(_label(x), x) for x in v] for v in spec.grid.values()
    ]
    points = [
        _point(spec, source, base_data, index, combo, axis, x_path)
        for index, combo in enumerate(itertools.product(*choices))
    ]
    return Sweep(spec, source, points, axis, x_path)
