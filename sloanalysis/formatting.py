"""Render rows (a list of dicts) as a readable table, JSON or CSV, for every command.

``render(rows, "table")`` aligns columns (numbers right, text left) and shows ``-`` for None;
``formatters`` (per column) shape values for the table only, so JSON and CSV keep the raw,
unrounded numbers. In JSON, non-finite floats (an infinite time to exhaustion) become ``null``.
A native histogram (:class:`~sloanalysis.nativehist.FloatHistogram`) is Prometheus's text
``{count:4, sum:5, (0.5,1]:1, ...}`` in tables, and the Prometheus API's JSON object in JSON (as
compact JSON text in CSV): :mod:`sloanalysis.api_json`.
Helpers format ratios for tables (durations: :func:`sloanalysis.durations.format_duration_human`).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from sloanalysis.api_json import histogram_text, histogram_to_api
from sloanalysis.nativehist import FloatHistogram

__all__ = ["FORMATS", "fmt_number", "fmt_percent", "render"]

FORMATS = ("table", "json", "csv")
Format = Literal["table", "json", "csv"]


def fmt_number(x: float, digits: int = 3) -> str:
    """A number for people, the same in tables, Markdown and HTML: ``digits`` significant digits and
    never an exponent below 10^15; thousands separated from 1,000 on (``-11,567``, ``99.9``, ``0.0123``)."""
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if abs(x) >= 1e15 or magnitude < -9:
        return f"{x:.{digits}g}"
    if magnitude >= digits - 1:
        return f"{x:,.0f}"
    text = f"{x:.{digits - 1 - magnitude}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_percent(x: float | None, digits: int = 3) -> str:
    """A ratio as a percentage (:func:`fmt_number`): ``0.02`` -> ``2%``, ``-115.67`` -> ``-11,567%``;
    None or NaN -> ``-``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    pct = float(x) * 100
    gap = 100 - abs(pct)
    if 0 < gap < 1:  # 99.95% must not read as 100%: keep the digits that differ from 100
        decimals = min(9, math.floor(-math.log10(gap)) + 2)
        return f"{pct:.{decimals}f}".rstrip("0").rstrip(".") + "%"
    return fmt_number(pct, digits) + "%"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, FloatHistogram):
        return histogram_text(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.6g}"
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, FloatHistogram):
        return histogram_to_api(value)
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _json_value(value.item())
    return value


def _csv_value(value: Any) -> Any:
    if isinstance(value, FloatHistogram):
        return json.dumps(histogram_to_api(value), separators=(",", ":"))
    return "" if value is None else value


def _columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    seen: dict[str, None] = {}
    for row in rows:
        for k in row:
            seen.setdefault(k, None)
    return list(seen)


def render(
    rows: Sequence[Mapping[str, Any]],
    fmt: Format = "table",
    *,
    columns: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    formatters: Mapping[str, Callable[[Any], str]] | None = None,
) -> str:
    """Rows as text; ``columns`` picks and orders columns (default: all, in first-seen order)."""
    cols = _columns(rows, columns)
    if fmt == "json":
        return (
            json.dumps([{c: _json_value(r.get(c)) for c in cols} for r in rows], indent=2, allow_nan=False)
            + "\n"
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(cols)
        for r in rows:
            writer.writerow([_csv_value(r.get(c)) for c in cols])
        return buf.getvalue()
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    heads = [(headers or {}).get(c, c) for c in cols]
    fmts = formatters or {}
    body = [[fmts[c](r.get(c)) if c in fmts else _cell(r.get(c)) for c in cols] for r in rows]
    numeric = [
        all(
            isinstance(r.get(c), int | float) and not isinstance(r.get(c), bool)
            for r in rows
            if r.get(c) is not None
        )
        for c in cols
    ]
    widths = [max([len(h)] + [len(line[i]) for line in body]) for i, h in enumerate(heads)]

    def line(cells: Sequence[str]) -> str:
        out = [
            cell.rjust(w) if num else cell.ljust(w)
            for cell, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(out).rstrip()

    lines = [line(heads), "  ".join("-" * w for w in widths)]
    lines.extend(line(cells) for cells in body)
    return "\n".join(lines) + "\n"
