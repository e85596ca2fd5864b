"""Run directories written by the simulator: ``samples.parquet``, ``incidents.csv``, ``run.json``.

This module is the one definition of the run-directory layout (the simulator writes it with
these names): the three files above, on request ``metrics.om`` (OpenMetrics for promtool
backfill) and ``events.jsonl`` (log events), and the marker ``.tronsim-run`` that lets
``tronsim run --out`` replace a directory it wrote before (and nothing else).

``incidents.csv`` has the columns ``id,kind,start,end,expected_alerts``: ``start``/``end`` are
ISO-8601 UTC instants and ``expected_alerts`` is a semicolon-separated list of alert names (may be
empty). :func:`load_run` returns the incidents with ``start``/``end`` as ``datetime64[ns, UTC]``
and ``expected_alerts`` as a tuple of names per row.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sloanalysis.errors import DataError, UserError
from sloanalysis.store import SeriesStore

__all__ = [
    "EVENTS",
    "INCIDENTS",
    "INCIDENT_COLUMNS",
    "MARKER",
    "OPENMETRICS",
    "RUN_FILES",
    "RUN_JSON",
    "SAMPLES",
    "Run",
    "load_incidents",
    "load_run",
]

SAMPLES = "samples.parquet"
INCIDENTS = "incidents.csv"
RUN_JSON = "run.json"
OPENMETRICS = "metrics.om"
EVENTS = "events.jsonl"
MARKER = ".tronsim-run"
RUN_FILES = (SAMPLES, INCIDENTS, RUN_JSON, OPENMETRICS, EVENTS)  # everything but the marker
INCIDENT_COLUMNS = ("id", "kind", "start", "end", "expected_alerts")


@dataclass(frozen=True)
class Run:
    """A loaded run directory."""

    store: SeriesStore
    incidents: pd.DataFrame
    run_json: dict[str, Any]
    path: Path


def load_run(path: str | os.PathLike[str]) -> Run:
    """Load a run directory; a missing or malformed file raises a one-line :class:`UserError`."""
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"{root}: not a run directory (no such directory)")
    for name in (SAMPLES, INCIDENTS, RUN_JSON):
        if not (root / name).is_file():
            raise DataError(f"{root / name}: missing from the run directory")
    run_json = _load_run_json(root / RUN_JSON)
    incidents = load_incidents(root / INCIDENTS)
    store = SeriesStore.from_parquet(root / SAMPLES)
    return Run(store=store, incidents=incidents, run_json=run_json, path=root)


def _load_run_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def load_incidents(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``incidents.csv`` (see the module docstring); errors name the file, line and field."""
    p = Path(path)
    try:
        with open(p, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise DataError(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 text: {exc.reason}") from None
    except csv.Error as exc:
        raise DataError(f"{p}: malformed CSV: {exc}") from None
    if not rows:
        raise DataError(f"{p}: empty file (expected the header {','.join(INCIDENT_COLUMNS)})")
    header, body = [h.strip() for h in rows[0]], rows[1:]
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{p}:{i + 2}: expected {len(header)} fields, found {len(row)}")
    raw = (
        pd.DataFrame(body, columns=header, dtype=object)
        if body
        else pd.DataFrame(columns=header, dtype=object)
    )
    missing = [c for c in INCIDENT_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(
            f"{p}: missing column(s) {', '.join(missing)} (expected {','.join(INCIDENT_COLUMNS)})"
        )
    times: dict[str, pd.Series] = {}
    for col in ("start", "end"):
        parsed = pd.to_datetime(raw[col], utc=True, errors="coerce", format="ISO8601")
        bad = parsed.isna()
        if bool(bad.any()):
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(f"{p}:{i + 2}: field {col!r}: not an ISO-8601 instant: {raw[col].iloc[i]!r}")
        times[col] = parsed.astype("datetime64[ns, UTC]")
    backwards = (times["end"] < times["start"]).to_numpy()
    if bool(backwards.any()):
        i = int(backwards.nonzero()[0][0])
        raise DataError(f"{p}:{i + 2}: field 'end' is before 'start'")
    dup = raw["id"].duplicated().to_numpy()
    if bool(dup.any()):
        i = int(dup.nonzero()[0][0])
        raise DataError(f"{p}:{i + 2}: field 'id': duplicate id {raw['id'].iloc[i]!r}")
    alerts = [tuple(a.strip() for a in cell.split(";") if a.strip()) for cell in raw["expected_alerts"]]
    return pd.DataFrame(
        {
            "id": raw["id"].astype(str),
            "kind": raw["kind"].astype(str),
            "start": times["start"],
            "end": times["end"],
            "expected_alerts": pd.Series(alerts, dtype=object, index=raw.index),
        }
    )
