"""Scenario files: YAML, validated on load; every error names the file and the field.

Durations are Prometheus duration strings (``15s``, ``1d2h``) or numbers of seconds; they are
held as float seconds. Instants are ISO-8601 UTC. Incident ``start`` is an offset from the run
start (``1d2h``) or an absolute instant. Numbers not backed by public data (latencies, failure
probabilities) are assumptions: see ``docs/tron-network.md`` and the scenario comments.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sloanalysis.config import validate
from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.yamlload import load_yaml_file

ROUTER_TYPES = ("v0", "kyc")
PRIORITIES = ("normal", "high")
ROLES = ("user", "merchant", "admin")
OPERATIONS = ("get_balance", "broadcast", "get_transaction_info")
ERROR_TYPES = (
    "timeout",
    "node_unavailable",
    "server_busy",
    "rate_limited",
    "bandwidth_exceeded",
    "expired",
    "out_of_energy",
    "reverted",
)
INCIDENT_KINDS = (
    "tron_outage",
    "partial_failure",
    "latency_degradation",
    "node_rate_limiting",
    "database_slowdown",
    "credential_stuffing",
    "client_flood",
    "payout_surge",
    "service_crash",
    "memory_leak",
    "cpu_saturation",
)


class ScenarioError(UserError):
    """A scenario file that cannot be used."""


def _seconds(value: Any) -> float:
    try:
        return parse_duration_ms(value, what="value") / 1000.0
    except UserError as exc:
        raise ValueError(str(exc).removeprefix("value: ")) from None


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]
PositiveSeconds = Annotated[float, BeforeValidator(_seconds), Field(gt=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class _Model(BaseModel):
    # No infinities or NaNs anywhere: `api_rate: .inf` would spin the arrival process forever.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False, allow_inf_nan=False)


# Bounds that keep one run within a machine's memory and a working day (each names its reason).
MAX_DURATION_S = 400 * 86_400  # an SLO year and then some
MIN_SCRAPE_INTERVAL_S = 1.0  # 30 days at 1 s is 2.6 M samples per series already
MAX_REQUESTS = 2_000_000_000  # expected API requests of a run (the 30-day reference makes 6 M)
MAX_SAMPLES = 1_000_000_000  # expected scraped samples, about 16 GB in memory


class LogNormal(_Model):
    """A heavy-tailed latency: median and log-space sigma, in seconds."""

    median: PositiveSeconds
    sigma: float = Field(ge=0, default=0.5)


class Diurnal(_Model):
    """Rate multiplier ``1 + amplitude * cos(2 pi (hour - peak_hour) / 24)`` (UTC hours)."""

    amplitude: float = Field(ge=0, lt=1, default=0.5)
    peak_hour: float = Field(ge=0, lt=24, default=14.0)
    weekend_factor: float = Field(gt=0, default=0.7)


class Bursts(_Model):
    """Short traffic bursts at random times: Poisson count per day, each multiplying the rate."""

    per_day: float = Field(ge=0, default=2.0)
    multiplier: float = Field(ge=1, default=3.0)
    duration: PositiveSeconds = 600.0


class Amounts(_Model):
    """Payout amounts in USDT: lognormal, clipped to [minimum, maximum] and rounded to cents."""

    median: float = Field(gt=0, default=12.0)
    sigma: float = Field(ge=0, default=1.0)
    minimum: float = Field(gt=0, default=1.0)
    maximum: float = Field(gt=0, default=500.0)

    @model_validator(mode="after")
    def _ordered(self) -> Amounts:
        if self.minimum > self.maximum:
            raise ValueError("minimum must not exceed maximum")
        return self


def _mix_validator(allowed: tuple[str, ...]) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping of {', '.join(allowed)} to shares")
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
        shares = [float(v) for v in value.values()]
        if any(s < 0 for s in shares) or sum(shares) <= 0:
            raise ValueError("shares must be >= 0 and not all zero")
        return value

    return BeforeValidator(check)


RouterMix = Annotated[dict[str, float], _mix_validator(ROUTER_TYPES)]
PriorityMix = Annotated[dict[str, float], _mix_validator(PRIORITIES)]
RoleMix = Annotated[dict[str, float], _mix_validator(ROLES)]


class Load(_Model):
    api_rate: float = Field(gt=0, description="mean API requests per second (all endpoints)")
    payout_rate: float = Field(gt=0, description="mean payout submissions per second")
    diurnal: Diurnal = Diurnal()
    bursts: Bursts = Bursts()
    amounts: Amounts = Amounts()
    router_mix: RouterMix = Field(default_factory=lambda: {"v0": 0.7, "kyc": 0.3})
    priority_mix: PriorityMix = Field(default_factory=lambda: {"normal": 0.9, "high": 0.1})
    role_mix: RoleMix = Field(default_factory=lambda: {"user": 0.8, "merchant": 0.18, "admin": 0.02})
    clients_per_role: int = Field(gt=0, default=200)
    unauthenticated_share: Probability = 0.005
    forbidden_share: Probability = 0.002
    invalid_payout_share: Probability = 0.003

    @model_validator(mode="after")
    def _payouts_within_api(self) -> Load:
        if self.payout_rate > self.api_rate:
            raise ValueError("payout_rate must not exceed api_rate (payout submissions are API requests)")
        return self


class Breaker(_Model):
    failure_threshold: int = Field(ge=1, default=5)
    cooldown: PositiveSeconds = 60.0
    half_open_probes: int = Field(ge=1, default=3)


class RoleLimit(_Model):
    """Token bucket per client (API key) of a role."""

    rate: float = Field(gt=0)
    burst: float = Field(ge=1)


class ProcessModel(_Model):
    memory_base_mb: float = Field(gt=0, default=320.0)
    memory_per_inflight_mb: float = Field(ge=0, default=0.6)
    memory_limit_mb: float = Field(gt=0, default=1024.0)
    cpu_base_percent: float = Field(ge=0, le=100, default=4.0)
    cpu_percent_per_rps: float = Field(ge=0, default=1.5)
    disk_base_bytes: float = Field(ge=0, default=6.0e9)
    disk_bytes_per_request: float = Field(ge=0, default=900.0)
    restart_seconds: PositiveSeconds = 20.0


class Service(_Model):
    payout_workers: int = Field(ge=1, default=8)
    queue_discipline: Literal["priority", "fifo"] = "priority"
    db_pool: int = Field(ge=1, default=10)
    db_latency: LogNormal = LogNormal(median=0.004, sigma=0.6)
    db_timeout: PositiveSeconds = 5.0
    handler_latency: LogNormal = LogNormal(median=0.025, sigma=0.5)
    request_timeout: PositiveSeconds = 30.0
    hourly_limit: float = Field(gt=0, default=1000.0)
    daily_limit: float = Field(gt=0, default=10000.0)
    breaker: Breaker = Breaker()
    rate_limits: dict[str, RoleLimit] = Field(
        default_factory=lambda: {
            "user": RoleLimit(rate=2.0, burst=10.0),
            "merchant": RoleLimit(rate=10.0, burst=30.0),
            "admin": RoleLimit(rate=20.0, burst=50.0),
        }
    )
    process: ProcessModel = ProcessModel()

    @model_validator(mode="after")
    def _check(self) -> Service:
        unknown = sorted(set(self.rate_limits) - set(ROLES))
        if unknown:
            raise ValueError(f"rate_limits: unknown role {unknown[0]!r} (allowed: {', '.join(ROLES)})")
        missing = sorted(set(ROLES) - set(self.rate_limits))
        if missing:
            raise ValueError(f"rate_limits: missing role {missing[0]!r}")
        if self.hourly_limit > self.daily_limit:
            raise ValueError("hourly_limit must not exceed daily_limit")
        return self


class Retries(_Model):
    max_attempts: int = Field(ge=1, default=4)
    backoff_base: PositiveSeconds = 1.0
    backoff_max: PositiveSeconds = 16.0


def _error_table(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of operation to {error_type: probability}")
    for op, table in value.items():
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r} (allowed: {', '.join(OPERATIONS)})")
        if not isinstance(table, dict):
            raise ValueError(f"{op}: expected a mapping of error_type to probability")
        for err, p in table.items():
            if err not in ERROR_TYPES:
                raise ValueError(f"{op}: unknown error_type {err!r} (allowed: {', '.join(ERROR_TYPES)})")
            if not isinstance(p, int | float) or not 0 <= p <= 1:
                raise ValueError(f"{op}.{err}: probability must be a number in [0, 1], got {p!r}")
        if sum(table.values()) > 1:
            raise ValueError(f"{op}: error probabilities sum to more than 1")
    return value


class Network(_Model):
    """TRON network model; defaults are assumptions (no public latency or failure data exists)."""

    block_interval: PositiveSeconds = 3.0
    confirmation_depth: int = Field(ge=1, default=1, description="1 = on chain; 19 = solidified")
    missed_slot_probability: Probability = 0.01
    client_timeout: PositiveSeconds = 10.0
    poll_interval: PositiveSeconds = 3.0
    expiration: PositiveSeconds = 60.0
    latency: dict[str, LogNormal] = Field(
        default_factory=lambda: {
            "get_balance": LogNormal(median=0.12, sigma=0.5),
            "broadcast": LogNormal(median=0.25, sigma=0.6),
            "get_transaction_info": LogNormal(median=0.10, sigma=0.5),
        }
    )
    errors: Annotated[dict[str, dict[str, float]], BeforeValidator(_error_table)] = Field(
        default_factory=lambda: {
            "get_balance": {"node_unavailable": 0.0005, "server_busy": 0.0005},
            "broadcast": {"server_busy": 0.002, "node_unavailable": 0.001, "bandwidth_exceeded": 0.0002},
            "get_transaction_info": {"server_busy": 0.001},
        }
    )
    out_of_energy_probability: Probability = 0.0005
    revert_probability: Probability = 0.0002
    balance_check_probability: Probability = 1.0
    retries: Retries = Retries()
    mode: Literal["tron", "mmc"] = Field(
        default="tron",
        description=(
            "tron: the TRON payout path above. mmc: the model reduces to an M/M/c queue: a payout "
            "goes straight to the worker queue (no auth, rate limits, validation, breaker, limits or "
            "database) and holds its worker for one exponential time of mean service_mean"
        ),
    )
    service_mean: PositiveSeconds = Field(default=1.0, description="mean service time in mmc mode")

    @model_validator(mode="after")
    def _check(self) -> Network:
        missing = sorted(set(OPERATIONS) - set(self.latency))
        extra = sorted(set(self.latency) - set(OPERATIONS))
        if extra:
            raise ValueError(f"latency: unknown operation {extra[0]!r} (allowed: {', '.join(OPERATIONS)})")
        if missing:
            raise ValueError(f"latency: missing operation {missing[0]!r}")
        return self


class Incident(_Model):
    """A time window with parameters, and the alerts it should trigger (ground truth).

    Parameters by kind (all optional, with defaults):
      tron_outage: error_type (node_unavailable), blocks_halted (true)
      partial_failure: failure_probability (0.2), error_type (server_busy), operation (broadcast)
      latency_degradation: factor (20)
      node_rate_limiting: probability (0.5)
      database_slowdown: factor (50)
      credential_stuffing: rate (40 requests/s with bad keys)
      client_flood: rate (30 requests/s from one client), role (user)
      payout_surge: rate_factor (8), amount_factor (3)
      service_crash: (none; the process is down for the window, then restarts)
      memory_leak: mb_per_hour (250)
      cpu_saturation: cpu_percent (96), latency_factor (6)
    """

    id: str | None = None
    kind: Literal[
        "tron_outage",
        "partial_failure",
        "latency_degradation",
        "node_rate_limiting",
        "database_slowdown",
        "credential_stuffing",
        "client_flood",
        "payout_surge",
        "service_crash",
        "memory_leak",
        "cpu_saturation",
    ]
    start: str | float | int
    duration: PositiveSeconds
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)
    expected_alerts: list[str] = Field(default_factory=list)


_DEFAULT_START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


class Scenario(_Model):
    name: str = "scenario"
    description: str = ""
    start: dt.datetime = _DEFAULT_START
    duration: PositiveSeconds
    seed: int = Field(ge=0, default=1)
    scrape_interval: PositiveSeconds = 15.0
    scrape_offset: Seconds = 3.5
    job: str = "tron-payment-api"
    instance: str = "tron-payment-api:8090"
    load: Load
    service: Service = Service()
    network: Network = Network()
    incidents: list[Incident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.start.tzinfo is None:
            raise ValueError("start: give a UTC instant, e.g. 2026-01-05T00:00:00Z")
        if self.scrape_offset >= self.scrape_interval:
            raise ValueError("scrape_offset must be smaller than scrape_interval")
        _check_size(self)
        if self.network.mode == "mmc":
            _check_mmc(self)
        return self

    @property
    def start_ms(self) -> int:
        return round(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return self.start_ms + round(self.duration * 1000)


def _check_size(sc: Scenario) -> None:
    """Refuse runs that cannot finish: too long, scraped too often, or too many requests."""
    if sc.duration > MAX_DURATION_S:
        raise ValueError(
            f"duration: at most {MAX_DURATION_S // 86_400} days, got {sc.duration / 86_400:,.0f}"
        )
    if sc.scrape_interval < MIN_SCRAPE_INTERVAL_S:
        raise ValueError(f"scrape_interval: at least {MIN_SCRAPE_INTERVAL_S:g}s, got {sc.scrape_interval:g}s")
    peak = 1.0 + sc.load.diurnal.amplitude
    requests = sc.load.api_rate * peak * sc.duration
    if requests > MAX_REQUESTS:
        raise ValueError(
            f"load.api_rate: {sc.load.api_rate:g}/s over {sc.duration / 86_400:,.1f} days is about "
            f"{requests:,.0f} requests, more than the {MAX_REQUESTS:,} one run may simulate"
        )
    samples = 400 * sc.duration / sc.scrape_interval  # the reference service exports about 200 series
    if samples > MAX_SAMPLES:
        raise ValueError(
            f"scrape_interval: {sc.scrape_interval:g}s over {sc.duration / 86_400:,.1f} days is about "
            f"{samples:,.0f} samples, more than {MAX_SAMPLES:,}"
        )


def _check_mmc(sc: Scenario) -> None:
    """M/M/c needs a constant Poisson rate and FIFO service: refuse what would break either."""
    if sc.incidents:
        raise ValueError("network.mode mmc: incidents are not allowed (the queue must stay M/M/c)")
    if sc.load.diurnal.amplitude != 0 or sc.load.diurnal.weekend_factor != 1:
        raise ValueError("network.mode mmc: needs load.diurnal.amplitude 0 and weekend_factor 1")
    if sc.load.bursts.per_day != 0:
        raise ValueError("network.mode mmc: needs load.bursts.per_day 0")
    if sc.service.queue_discipline != "fifo":
        raise ValueError("network.mode mmc: needs service.queue_discipline fifo")


def incident_window(scenario: Scenario, incident: Incident) -> tuple[float, float]:
    """Incident (start, end) in seconds from the run start."""
    raw = incident.start
    if isinstance(raw, str) and ("T" in raw or (raw[:4].isdigit() and "-" in raw)):
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        offset = (when - scenario.start).total_seconds()
    else:
        offset = parse_duration_ms(raw, what="start") / 1000.0
    return offset, offset + incident.duration


def _validate(data: Any, source: str, now: dt.datetime | None) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping of scenario fields at the top level")
    scenario = validate(Scenario, data, source, ScenarioError)
    now = now or dt.datetime.now(dt.UTC)
    if scenario.start + dt.timedelta(seconds=scenario.duration) > now:
        raise ScenarioError(
            f"{source}: start: the run must end in the past (it ends after {now:%Y-%m-%dT%H:%M:%SZ})"
        )
    for i, incident in enumerate(scenario.incidents):
        try:
            begin, end = incident_window(scenario, incident)
        except (UserError, ValueError) as exc:
            raise ScenarioError(f"{source}: incidents[{i}].start: {exc}") from None
        if begin < 0 or end > scenario.duration:
            raise ScenarioError(
                f"{source}: incidents[{i}]: window {begin:.0f}s..{end:.0f}s lies outside the run "
                f"(0s..{scenario.duration:.0f}s)"
            )
        _check_incident_params(source, i, incident)
    return scenario


_INCIDENT_PARAMS: dict[str, set[str]] = {
    "tron_outage": {"error_type", "blocks_halted"},
    "partial_failure": {"failure_probability", "error_type", "operation"},
    "latency_degradation": {"factor"},
    "node_rate_limiting": {"probability"},
    "database_slowdown": {"factor"},
    "credential_stuffing": {"rate"},
    "client_flood": {"rate", "role"},
    "payout_surge": {"rate_factor", "amount_factor"},
    "service_crash": set(),
    "memory_leak": {"mb_per_hour"},
    "cpu_saturation": {"cpu_percent", "latency_factor"},
}


def _check_incident_params(source: str, i: int, incident: Incident) -> None:
    allowed = _INCIDENT_PARAMS[incident.kind]
    for key, value in incident.params.items():
        where = f"{source}: incidents[{i}].params.{key}"
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ScenarioError(f"{where}: unknown parameter for {incident.kind} (allowed: {names})")
        if key in ("error_type",) and value not in ERROR_TYPES:
            raise ScenarioError(f"{where}: unknown error_type {value!r}")
        if key == "operation" and value not in OPERATIONS:
            raise ScenarioError(f"{where}: unknown operation {value!r}")
        if key == "role" and value not in ROLES:
            raise ScenarioError(f"{where}: unknown role {value!r}")
        if key not in ("error_type", "operation", "role", "blocks_halted"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ScenarioError(f"{where}: expected a non-negative number, got {value!r}")
            if key in ("failure_probability", "probability") and value > 1:
                raise ScenarioError(f"{where}: a probability must be in [0, 1], got {value!r}")


def load_scenario(path: str | Path, *, now: dt.datetime | None = None) -> Scenario:
    """Read and validate a scenario file; raises ScenarioError naming the file and field."""
    return _validate(load_yaml_file(path, ScenarioError), str(path), now)


def scenario_from_dict(
    data: dict[str, Any], *, source: str = "<scenario>", now: dt.datetime | None = None
) -> Scenario:
    return _validate(data, source, now)


def with_overrides(scenario: Scenario, **changes: Any) -> Scenario:
    """A copy with top-level fields replaced, validated again."""
    data = scenario.model_dump()
    data.update(changes)
    return scenario_from_dict(data, source=f"<{scenario.name}>")


def truncated(scenario: Scenario, duration: float) -> Scenario:
    """The scenario cut to ``duration`` seconds: later incidents dropped, straddling ones clipped."""
    incidents = []
    for inc in scenario.incidents:
        begin, end = incident_window(scenario, inc)
        if begin >= duration:
            continue
        data = inc.model_dump()
        data["start"], data["duration"] = begin, min(end, duration) - begin
        incidents.append(data)
    return with_overrides(scenario, duration=duration, incidents=incidents)
