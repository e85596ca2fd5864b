"""Incident families: the YAML that says what incidents a Monte Carlo alert validation draws.

A family names one incident ``kind`` and distributions of its ``severity`` (the kind's main
parameter, :data:`SEVERITY`), its ``duration`` and its ``start`` (an offset after the quiet time
that precedes each incident); each replication lasts ``length`` and holds ``incidents`` of them,
each preceded by ``quiet`` time, the last followed by it. A distribution is one of
``{fixed: x}``, ``{uniform: [lo, hi]}``, ``{log_uniform: [lo, hi]}`` or ``{choice: [a, b, ...]}``;
durations are Prometheus durations (``15m``) or seconds.

``error_step`` is a synthetic kind beside the simulator's: a step in the fraction of failed
requests of the availability counters (``slo_total_requests_total``,
``slo_successful_requests_total``) at a constant request rate, without the service model. Its
answer is known analytically (the SRE Workbook's table), which is what validates the method.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sloanalysis.config import validate
from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.yamlload import load_yaml_file

__all__ = [
    "ERROR_STEP",
    "SEVERITY",
    "Distribution",
    "FamilyError",
    "IncidentFamily",
    "draw_incidents",
    "family_from_dict",
    "load_family",
]

ERROR_STEP = "error_step"


class FamilyError(UserError):
    """An incident family file that cannot be used."""


# kind -> (the parameter its severity sets, lowest, highest): ranges that the service model
# reads meaningfully (probabilities in [0, 1]; factors of at least 1; rates and sizes >= 0).
SEVERITY: dict[str, tuple[str, float, float]] = {
    "partial_failure": ("failure_probability", 0.0, 1.0),
    "node_rate_limiting": ("probability", 0.0, 1.0),
    "latency_degradation": ("factor", 1.0, 1000.0),
    "database_slowdown": ("factor", 1.0, 10_000.0),
    "credential_stuffing": ("rate", 0.0, 10_000.0),
    "client_flood": ("rate", 0.0, 10_000.0),
    "payout_surge": ("rate_factor", 1.0, 100.0),
    "memory_leak": ("mb_per_hour", 0.0, 100_000.0),
    "cpu_saturation": ("cpu_percent", 0.0, 100.0),
    "tron_outage": ("", 1.0, 1.0),  # no size: on or off
    "service_crash": ("", 1.0, 1.0),
    ERROR_STEP: ("error_ratio", 0.0, 1.0),
}
MAX_INCIDENTS = 1_000  # per replication


def _seconds(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_duration_ms(value, what="value") / 1000.0
        except UserError as exc:
            raise ValueError(str(exc).removeprefix("value: ")) from None
    return value


def _durations(value: Any) -> Any:
    """Every number of a distribution as seconds (``{uniform: [5m, 1h]}`` -> ``[300.0, 3600.0]``)."""
    if isinstance(value, dict):
        return {k: [_seconds(x) for x in v] if isinstance(v, list) else _seconds(v) for k, v in value.items()}
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Distribution(_Model):
    """Exactly one of ``fixed``, ``uniform``, ``log_uniform`` or ``choice``."""

    fixed: float | None = None
    uniform: tuple[float, float] | None = None
    log_uniform: tuple[float, float] | None = None
    choice: list[float] | None = None

    @model_validator(mode="after")
    def _one(self) -> Distribution:
        given = [k for k in ("fixed", "uniform", "log_uniform", "choice") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fixed, uniform, log_uniform, choice")
        for key in ("uniform", "log_uniform"):
            pair = getattr(self, key)
            if pair is not None and pair[0] > pair[1]:
                raise ValueError(f"{key}: the low end must not exceed the high end")
        if self.log_uniform is not None and self.log_uniform[0] <= 0:
            raise ValueError("log_uniform: both ends must be positive")
        if self.choice is not None and not self.choice:
            raise ValueError("choice: give at least one value")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value a draw can take."""
        if self.fixed is not None:
            return self.fixed, self.fixed
        if self.choice is not None:
            return min(self.choice), max(self.choice)
        pair = self.uniform or self.log_uniform
        assert pair is not None
        return pair

    @property
    def log_scale(self) -> bool:
        return self.log_uniform is not None

    def draw(self, rng: np.random.Generator) -> float:
        if self.fixed is not None:
            return float(self.fixed)
        if self.choice is not None:
            return float(self.choice[int(rng.integers(len(self.choice)))])
        if self.uniform is not None:
            return float(rng.uniform(*self.uniform))
        assert self.log_uniform is not None
        lo, hi = self.log_uniform
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


DurationDistribution = Annotated[Distribution, BeforeValidator(_durations)]
Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]


class IncidentFamily(_Model):
    name: str = "family"
    description: str = ""
    kind: str
    severity: Distribution | None = None
    duration: DurationDistribution
    start: DurationDistribution = Distribution(fixed=0.0)
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    incidents: int = Field(ge=1, le=MAX_INCIDENTS, default=1)
    length: PositiveSeconds
    quiet: Seconds = 3600.0
    warmup: Seconds = 0.0
    expected_alerts: list[str] = Field(default_factory=list)
    severity_bins: int = Field(ge=1, le=50, default=5)

    @property
    def severity_param(self) -> str:
        return SEVERITY[self.kind][0]

    @property
    def severity_dist(self) -> Distribution:
        return self.severity or Distribution(fixed=SEVERITY[self.kind][1])


def _check(family: IncidentFamily, source: str) -> None:
    """What pydantic cannot see: the kind, its severity range and that incidents fit the length."""
    if family.kind not in SEVERITY:
        kinds = ", ".join(SEVERITY)
        raise FamilyError(f"{source}: kind: unknown incident kind {family.kind!r} (allowed: {kinds})")
    param, lo, hi = SEVERITY[family.kind]
    if family.severity is not None:
        if not param:
            raise FamilyError(f"{source}: severity: kind {family.kind} has no severity (it is on or off)")
        low, high = family.severity.bounds
        if low < lo or high > hi:
            raise FamilyError(
                f"{source}: severity: {family.kind} severity ({param}) must lie in [{lo:g}, {hi:g}], "
                f"got values from {low:g} to {high:g}"
            )
    elif param:
        raise FamilyError(f"{source}: severity: missing (the distribution of {family.kind}'s {param})")
    if param and param in family.params:
        raise FamilyError(f"{source}: params.{param}: set by severity, not params")
    if family.duration.bounds[0] <= 0:
        raise FamilyError(f"{source}: duration: incidents must last a positive time")
    if family.start.bounds[0] < 0:
        raise FamilyError(f"{source}: start: offsets must not be negative")
    longest = (
        family.warmup
        + family.incidents * (family.quiet + family.start.bounds[1] + family.duration.bounds[1])
        + family.quiet
    )
    if longest > family.length:
        raise FamilyError(
            f"{source}: length: {family.incidents} incident(s) with their quiet time, start offsets and "
            f"durations may need {longest:g}s, more than the length of {family.length:g}s"
        )


def family_from_dict(data: Any, source: str = "<family>") -> IncidentFamily:
    if not isinstance(data, dict) or not data:
        raise FamilyError(
            f"{source}: empty incident family (expected a mapping with kind, severity, duration)"
        )
    family = validate(IncidentFamily, data, source, FamilyError)
    _check(family, source)
    return family


def load_family(path: str | Path) -> IncidentFamily:
    """Read and check an incident family file; errors are one line naming the file and field."""
    return family_from_dict(load_yaml_file(path, FamilyError), str(path))


def draw_incidents(family: IncidentFamily, rng: np.random.Generator) -> list[dict[str, Any]]:
    """One replication's incidents: ``{id, severity, start, duration}`` in seconds from its start,
    each after the quiet time that follows the previous one (draw order: severity, start,
    duration, incident by incident)."""
    out: list[dict[str, Any]] = []
    t = family.warmup
    for i in range(family.incidents):
        severity = family.severity_dist.draw(rng)
        start = t + family.quiet + family.start.draw(rng)
        duration = family.duration.draw(rng)
        out.append(
            {"id": f"{family.kind}-{i + 1}", "severity": severity, "start": start, "duration": duration}
        )
        t = start + duration
    return out
