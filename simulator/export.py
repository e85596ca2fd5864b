"""Run directories: what one simulation leaves on disk.

``samples.parquet`` (every scraped series), ``incidents.csv`` (ground truth), ``run.json``
(scenario, seed, versions, counts), and on request ``metrics.om`` (OpenMetrics for
``promtool tsdb create-blocks-from openmetrics``) and ``events.jsonl`` (the seed's log events).
The file names are defined once in :mod:`sloanalysis.sources.rundir`. Everything is written
into a temporary sibling directory that replaces the target only when complete
(:func:`sloanalysis.files.output_directory`), so a failed run never leaves a half-written
directory behind, and only a directory ``tronsim run`` wrote before is ever replaced.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
from collections.abc import Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from simulator.metrics import make_metrics
from simulator.model import SimulationResult
from sloanalysis.errors import UserError
from sloanalysis.files import output_directory
from sloanalysis.sources.rundir import (
    EVENTS,
    INCIDENTS,
    MARKER,
    OPENMETRICS,
    RUN_FILES,
    RUN_JSON,
    SAMPLES,
)


class OutputError(UserError):
    """The output directory cannot be written."""


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("tron-slo-toolkit", "simpy", "prometheus-client", "numpy", "pandas", "pyarrow"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


def family_metadata() -> dict[str, tuple[str, str]]:
    """OpenMetrics family name -> (type, help) for every exported family and ``up``."""
    registry = make_metrics().registry
    meta = {f.name: (f.type, f.documentation) for f in registry.collect()}
    meta["up"] = ("gauge", "Whether the last scrape of the target succeeded (written by the scraper).")
    return meta


def run_summary(result: SimulationResult) -> dict[str, Any]:
    stats = result.stats
    payouts = {s: stats.get(f"payouts_{s}", 0) for s in ("confirmed", "failed", "rejected")}
    return {
        "requests": stats.get("requests_arrived", 0),
        "requests_lost_while_down": stats.get("requests_lost_down", 0)
        + stats.get("requests_lost_in_flight", 0),
        "payouts_submitted": stats.get("payouts_submitted", 0),
        "payouts_by_status": payouts,
        "payouts_pending_at_end": stats.get("payouts_submitted", 0) - sum(payouts.values()),
        "http_status": {k.removeprefix("http_"): v for k, v in stats.items() if k.startswith("http_")},
        "breaker_seconds": result.breaker_seconds,
        "breaker_transitions": len(result.transitions),
        "simpy_events": result.simpy_events,
        "series": len(result.store),
        "samples": result.store.num_samples,
        "wall_seconds": round(result.wall_seconds, 3),
        "simulated_seconds_per_wall_second": round(
            result.scenario.duration / max(result.wall_seconds, 1e-9), 1
        ),
    }


def run_directory(
    out: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str] | None] = ()
) -> AbstractContextManager[Path]:
    """Write a run directory: fill the yielded temporary directory; it replaces ``out`` on success.

    ``out`` may be missing, empty or a run directory (it carries :data:`MARKER`, or only run
    files from before the marker existed); anything else is refused untouched, as is an ``out``
    that is, contains or lies inside one of ``inputs``.
    """
    return output_directory(out, MARKER, inputs=inputs, legacy=RUN_FILES, what="run directory")


def write_run_files(
    result: SimulationResult, directory: Path, *, openmetrics: bool = False, events: bool = False
) -> None:
    """Write the run's files into ``directory``; ``events``: an ``EVENTS`` log is already there."""
    result.store.to_parquet(directory / SAMPLES)
    with open(directory / INCIDENTS, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "kind", "start", "end", "expected_alerts", "params"])
        for inc in result.incidents:
            writer.writerow(
                [
                    inc["id"],
                    inc["kind"],
                    _iso(inc["start_ms"]),
                    _iso(inc["end_ms"]),
                    ";".join(inc["expected_alerts"]),
                    json.dumps(inc["params"], sort_keys=True),
                ]
            )
    sc = result.scenario
    meta = {
        "scenario": sc.model_dump(mode="json"),
        "seed": sc.seed,
        "start": _iso(sc.start_ms),
        "end": _iso(sc.end_ms),
        "scrape_interval_seconds": sc.scrape_interval,
        "job": sc.job,
        "instance": sc.instance,
        "versions": _versions(),
        "counts": run_summary(result),
        "breaker_transitions": result.transitions,
        "files": [SAMPLES, INCIDENTS, RUN_JSON]
        + ([OPENMETRICS] if openmetrics else [])
        + ([EVENTS] if events else []),
    }
    (directory / RUN_JSON).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if openmetrics:
        from sloanalysis.sources.openmetrics import write_openmetrics

        write_openmetrics(result.store, directory / OPENMETRICS, metadata=family_metadata())


def write_run(
    result: SimulationResult,
    out: str | os.PathLike[str],
    *,
    openmetrics: bool = False,
    events_file: Path | None = None,
) -> Path:
    """Write the run directory atomically; ``events_file`` is a finished JSON-lines log to include."""
    with run_directory(out) as tmp:
        if events_file is not None:
            shutil.move(events_file, tmp / EVENTS)
        write_run_files(result, tmp, openmetrics=openmetrics, events=events_file is not None)
    return Path(out)


def export_openmetrics(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``metrics.om`` into an existing run directory from its ``samples.parquet``."""
    from sloanalysis.sources.openmetrics import write_openmetrics
    from sloanalysis.store import SeriesStore

    run = Path(run_dir)
    samples = run / SAMPLES
    if not samples.is_file():
        raise UserError(f"{run}: not a run directory ({SAMPLES} is missing)")
    store = SeriesStore.from_parquet(samples)
    target = run / OPENMETRICS
    try:
        write_openmetrics(store, target, metadata=family_metadata())
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from None
    return target
