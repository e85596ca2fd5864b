"""Run directories written by the simulator: ``samples.parquet``, ``incidents.csv``, ``run.json``.

This module is the one definition of the run-directory layout (the simulator writes it with
these names): the three files above, on request ``metrics.om`` (OpenMetrics for promtool
backfill) and ``events.jsonl`` (log events), and the marker ``.tronsim-run`` that lets
``tronsim run --out`` replace a directory it wrote before (and nothing else).

Ground truth (``incidents.csv`` of a run, or any file given with ``--incidents``) is read by
:func:`load_incidents`, the one reader of its schema. CSV with the header
``id,kind,start,end,expected_alerts`` and optionally ``params``, one incident per row:

- ``id``: unique, non-empty; ``kind``: free text;
- ``start``/``end``: RFC 3339 instants with their UTC offset (``2026-01-05T14:00:00Z``) or integer
  epoch milliseconds; ``end`` not before ``start``;
- ``expected_alerts``: ``;``-separated ``AlertName`` (every severity of that alert) or
  ``AlertName:severity`` (only the rule whose ``labels.severity`` is that; the part after the
  last colon is the severity); may be empty;
- ``params``: a JSON object (optional, free-form).

A ``.yaml``/``.yml`` file holds a list of mappings with the same keys (``expected_alerts`` may
also be a list). The result has ``start``/``end`` as ``datetime64[ns, UTC]``, ``expected_alerts``
as a tuple of the entries as written and ``params`` as a dict per row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from sloanalysis.errors import DataError, UserError
from sloanalysis.files import read_input_text
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
    "split_expected_alert",
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
        data = json.loads(read_input_text(path, DataError))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def load_incidents(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a ground-truth incidents file, CSV or (``.yaml``/``.yml``) YAML; see the module
    docstring for the schema. Errors name the file, the row and the column."""
    p = Path(path)
    text = read_input_text(p, DataError)
    rows = _yaml_rows(text, p) if p.suffix.lower() in (".yaml", ".yml") else _csv_rows(text, p)
    return _incident_frame(p, rows)


# A row to validate: where it is (for errors: "FILE:LINE" or "FILE: incident N (line L)"), its
# cells by column (text in CSV, YAML values) and the CSV header (for column numbers; None in YAML).
_Row = tuple[str, dict[str, Any], list[str] | None]


def _csv_rows(text: str, p: Path) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise DataError(f"{p}:{reader.line_num}: malformed CSV: {exc}") from None
    if not rows:
        raise DataError(f"{p}: empty file (expected the header {','.join(INCIDENT_COLUMNS)})")
    header = [h.strip() for h in rows[0][1]]
    _check_columns(header, f"{p}:1")
    out: list[_Row] = []
    for line, row in rows[1:]:
        if not row:
            continue  # a blank line
        if len(row) != len(header):
            raise DataError(f"{p}:{line}: expected {len(header)} fields, found {len(row)}")
        out.append((f"{p}:{line}", dict(zip(header, row, strict=True)), header))
    return out


def _yaml_rows(text: str, p: Path) -> list[_Row]:
    import yaml

    from sloanalysis.yamlload import compose_yaml, load_yaml

    data = load_yaml(text, str(p))
    if data is None:
        return []
    node = compose_yaml(text, str(p))
    if not isinstance(data, list) or not isinstance(node, yaml.SequenceNode):
        raise DataError(
            f"{p}: expected a list of incidents (mappings with keys {', '.join(INCIDENT_COLUMNS)})"
        )
    out: list[_Row] = []
    for i, (item, item_node) in enumerate(zip(data, node.value, strict=True)):
        where = f"{p}: incident {i + 1} (line {item_node.start_mark.line + 1})"
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a mapping, got {type(item).__name__}")
        _check_columns([str(k) for k in item], where)
        # scalars as written (a YAML timestamp stays the text the user wrote, as in CSV)
        cells: dict[str, Any] = dict(item)
        for key_node, value_node in item_node.value:
            if isinstance(value_node, yaml.ScalarNode) and key_node.value in ("id", "kind", "start", "end"):
                cells[key_node.value] = value_node.value
        out.append((where, cells, None))
    return out


def _check_columns(columns: list[str], where: str) -> None:
    missing = [c for c in INCIDENT_COLUMNS if c not in columns]
    if missing:
        raise DataError(
            f"{where}: missing column(s) {', '.join(missing)} (expected {','.join(INCIDENT_COLUMNS)}"
            "[,params])"
        )
    unknown = [c for c in columns if c not in (*INCIDENT_COLUMNS, "params")]
    if unknown:
        raise DataError(
            f"{where}: unknown column(s) {', '.join(map(repr, unknown))} "
            f"(expected {','.join(INCIDENT_COLUMNS)}[,params])"
        )


def _incident_frame(p: Path, rows: list[_Row]) -> pd.DataFrame:
    first: dict[str, str] = {}
    parsed = []
    for where, cells, header in rows:
        row = _incident(where, cells, header)
        if row["id"] in first:
            raise DataError(
                f"{_field(where, 'id', header)}: duplicate id {row['id']!r} (first at {first[row['id']]})"
            )
        first[row["id"]] = where
        parsed.append(row)
    columns = (*INCIDENT_COLUMNS, "params")
    frame = pd.DataFrame({c: pd.Series([r[c] for r in parsed], dtype=object) for c in columns})
    for col in ("start", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True).astype("datetime64[ns, UTC]")
    return frame


def _field(where: str, col: str, header: list[str] | None) -> str:
    """``FILE:LINE: field 'start' (column 3)`` for CSV, ``FILE: incident N (line L): field 'start'``."""
    column = f" (column {header.index(col) + 1})" if header and col in header else ""
    return f"{where}: field {col!r}{column}"


def _incident(where: str, cells: dict[str, Any], header: list[str] | None) -> dict[str, Any]:
    """One validated incident row."""
    start = _instant(cells["start"], _field(where, "start", header))
    end = _instant(cells["end"], _field(where, "end", header))
    if end < start:
        raise DataError(f"{_field(where, 'end', header)}: 'end' is before 'start'")
    return {
        "id": _text(cells["id"], _field(where, "id", header), required=True),
        "kind": _text(cells["kind"], _field(where, "kind", header)),
        "start": start,
        "end": end,
        "expected_alerts": _expected(cells["expected_alerts"], _field(where, "expected_alerts", header)),
        "params": _params(cells.get("params"), _field(where, "params", header)),
    }


def _text(value: Any, where: str, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise DataError(f"{where}: expected text, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise DataError(f"{where}: empty")
    return text


_EPOCH_MS = re.compile(r"^-?\d+$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _instant(value: Any, where: str) -> pd.Timestamp:
    """RFC 3339 (with its UTC offset) or integer epoch milliseconds, as a UTC timestamp."""
    text = _text(value, where)
    try:
        if _EPOCH_MS.match(text):
            return pd.Timestamp(int(text), unit="ms", tz="UTC")
        if _RFC3339.match(text):
            return pd.Timestamp(text).tz_convert("UTC")
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        pass
    raise DataError(f"{where}: not an RFC 3339 instant or epoch milliseconds: {text!r}")


_ALERT_NAME = re.compile(r"^[^\s;:]+(?::[^\s;:]+)*$")


def split_expected_alert(entry: str) -> tuple[str, str | None]:
    """``"Name"`` -> ``("Name", None)`` (every severity), ``"Name:page"`` -> ``("Name", "page")``;
    the part after the last colon is the severity."""
    name, sep, severity = entry.rpartition(":")
    return (name, severity) if sep else (entry, None)


def _expected(value: Any, where: str) -> tuple[str, ...]:
    """``;``-separated text (or, in YAML, a list) of ``AlertName`` / ``AlertName:severity``."""
    if value is None:
        items: list[Any] = []
    elif isinstance(value, list):
        items = value
    elif isinstance(value, str):
        items = value.split(";")
    else:
        raise DataError(f"{where}: expected 'Name;Name:severity', got {type(value).__name__}")
    out = []
    for item in items:
        entry = _text(item, where)
        if not entry:
            continue
        if not _ALERT_NAME.match(entry):
            raise DataError(f"{where}: not an alert name or AlertName:severity: {entry!r}")
        out.append(entry)
    return tuple(out)


def _params(value: Any, where: str) -> dict[str, Any]:
    """Free-form parameters: a JSON object in CSV, a mapping in YAML (empty: none)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: invalid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object (a mapping), got {type(value).__name__}")
    return value
