"""Running an alert validation: every replication not already on disk, then the summaries.

Each replication is written to ``out/replications/rNNNNN.json`` (atomically) as soon as it
finishes, with a content key of everything that decides it (scenario, family, rules of every
variant, evaluation settings, root seed, index); a later run reuses the files whose key matches,
so an interrupted validation resumes and a changed one recomputes what changed. The directory
carries the ``.tronsim-validation`` marker; one without it that is not empty is refused untouched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from simulator.capacity.executors import Executor
from simulator.scenario import Scenario
from simulator.validation.family import IncidentFamily
from simulator.validation.replication import BASE, Task, Variant, run_replication
from simulator.validation.selection import tuning_rows
from simulator.validation.summary import alert_summaries
from sloanalysis.errors import UserError
from sloanalysis.files import atomic_write_text, claim_directory
from sloanalysis.rules.backtest import EvalSettings
from sloanalysis.rules.model import RuleGroup, dump_rule_groups
from sloanalysis.rules.scoring import BudgetSLI

__all__ = [
    "MARKER",
    "OUTPUTS",
    "REPLICATIONS",
    "RESULTS",
    "Tuning",
    "Validation",
    "ValidationResult",
    "run_validation",
]

MARKER = ".tronsim-validation"
REPLICATIONS = "replications"
RESULTS = "validation.json"
PLOT, PARETO, REPORT_MD, REPORT_HTML, TABLE, TUNING_TABLE = (
    "detection.png",
    "pareto.png",
    "report.md",
    "report.html",
    "alerts.txt",
    "tuning.txt",
)
OUTPUTS = (RESULTS, PLOT, PARETO, REPORT_MD, REPORT_HTML, TABLE, TUNING_TABLE)
"""The combined outputs: removed before replications are computed, so an interrupted run never
leaves one validation's summary beside another's replications (they are rewritten at the end)."""
MAX_REPLICATIONS = 100_000


class ValidationError(UserError):
    """A validation that cannot run (too few replications, a bad output directory)."""


@dataclass(frozen=True)
class Tuning:
    """Threshold selection: the alert (and severity) tuned, its grid variants, the false-positive limit."""

    alert: str
    severity: str | None
    points: tuple[tuple[dict[str, Any], Variant], ...]
    max_fp_per_day: float


@dataclass(frozen=True)
class Validation:
    """Everything one validation needs; ``sources`` are the input files (refused as outputs)."""

    groups: tuple[RuleGroup, ...]
    scenario: Scenario
    family: IncidentFamily
    replications: int
    root_seed: int = 0
    settings: EvalSettings = field(default_factory=EvalSettings)
    tuning: Tuning | None = None
    sources: tuple[str, ...] = ()
    rules_label: str = ""
    budget: BudgetSLI | None = None
    """What budget before detection is measured against (None: the default availability SLI)."""

    @property
    def variants(self) -> tuple[Variant, ...]:
        base = Variant(BASE, self.groups)
        return (base, *(v for _, v in self.tuning.points)) if self.tuning else (base,)


@dataclass
class ValidationResult:
    validation: Validation
    replications: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    tuning: list[dict[str, Any]] = field(default_factory=list)
    reused: int = 0
    warnings: list[str] = field(default_factory=list)
    out: Path = Path()


def _key(v: Validation, index: int) -> str:
    """The content key of replication ``index``: a digest of everything that decides its result."""
    doc = {
        "scenario": v.scenario.model_dump(mode="json"),
        "family": v.family.model_dump(mode="json"),
        "variants": [[x.key, dump_rule_groups(list(x.groups)), x.score_only] for x in v.variants],
        "settings": asdict(v.settings),
        "root_seed": v.root_seed,
        "index": index,
        "format": 1,
    }
    if v.budget is not None:  # absent for the default, so earlier directories stay reusable
        b = v.budget
        doc["budget"] = [b.name, b.objective, b.period_ms, b.error_ratio_expr(3_600_000)]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _path(out: Path, index: int) -> Path:
    return out / REPLICATIONS / f"r{index:05d}.json"


def _load_done(out: Path, keys: Sequence[str]) -> dict[int, dict[str, Any]]:
    """The replications on disk whose key matches (a damaged or stale file is recomputed)."""
    done: dict[int, dict[str, Any]] = {}
    for i, key in enumerate(keys):
        path = _path(out, i)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("key") == key and isinstance(doc.get("result"), dict):
            done[i] = doc["result"]
    return done


def run_validation(
    v: Validation,
    out: str | Path,
    executor: Executor,
    *,
    on_replication: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> ValidationResult:
    """Run every replication not already in ``out/replications``, then summarise them;
    ``on_replication`` hears each index written (tests interrupt a run through it)."""
    if v.replications < 2:
        raise ValidationError(f"-n: at least 2 replications are needed, got {v.replications}")
    if v.replications > MAX_REPLICATIONS:
        raise ValidationError(f"-n: at most {MAX_REPLICATIONS:,} replications, got {v.replications:,}")
    target = claim_directory(out, MARKER, inputs=list(v.sources), what="alert validation directory")
    try:
        (target / REPLICATIONS).mkdir(exist_ok=True)
    except OSError as exc:
        raise ValidationError(f"--out {out}: cannot create: {exc.strerror or exc}") from None
    keys = [_key(v, i) for i in range(v.replications)]
    done = _load_done(target, keys)
    reused = len(done)
    if log is not None and reused:
        log(f"reusing {reused} of {v.replications} finished replications from {target / REPLICATIONS}")
    variants = v.variants
    missing = [i for i in range(v.replications) if i not in done]
    tasks = [Task(i, v.root_seed, v.scenario, v.family, variants, v.settings, v.budget) for i in missing]
    if missing:
        for name in OUTPUTS:
            (target / name).unlink(missing_ok=True)
    for j, result in executor.map_unordered(run_replication, tasks):
        index = missing[j]
        doc = {"key": keys[index], "result": result}
        atomic_write_text(_path(target, index), json.dumps(doc, sort_keys=True) + "\n")
        done[index] = result
        if on_replication is not None:
            on_replication(index)
    reps = [done[i] for i in range(v.replications)]
    summaries = {x.key: alert_summaries(reps, x.key, v.family, v.root_seed) for x in variants}
    tuning: list[dict[str, Any]] = []
    if v.tuning is not None:
        t = v.tuning
        tuning = tuning_rows(t.points, summaries, t.alert, t.severity, t.max_fp_per_day)
    warnings = sorted({w for r in reps for w in r["variants"][BASE]["warnings"]})
    return ValidationResult(v, reps, summaries[BASE], tuning, reused, warnings, target)
