"""A Grafana dashboard's panels evaluated from the PromQL they declare, the way Grafana shows them.

:func:`read_dashboard` is the one reader of Grafana dashboard JSON (bare, or wrapped in
``{"dashboard": ...}`` as the seed writes it), validated by pydantic models of the parts used;
:func:`load_dashboard` turns it into :class:`Panel` objects; :func:`evaluate_panel` runs every
target over a range through the embedded engine; the pure helpers below reproduce Grafana's display rules:

- stat panels reduce each series to its last non-null value (Grafana's default ``lastNotNull``),
  map it through the panel's value mappings and colour it by its threshold steps (the last step
  whose value is at or below the number; a panel without thresholds gets Grafana's defaults,
  green and red from 80, which is what Grafana really shows for it);
- graph panels name each series with ``legendFormat`` (``{{label}}`` replaced by the label's
  value; an empty format shows the whole label set);
- units format numbers as Grafana's ``percent``, ``currencyUSD``, ``s``, ``reqps`` and ``short``.

Drawing lives in :mod:`sloanalysis.report.plots`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, StrictStr, model_validator

from sloanalysis.config import null_is_absent, validate
from sloanalysis.errors import UserError
from sloanalysis.files import read_input_text
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.store import Labels, SeriesStore

__all__ = [
    "DEFAULT_THRESHOLDS",
    "GRAFANA_COLORS",
    "GrafanaDashboard",
    "GrafanaPanel",
    "Panel",
    "PanelData",
    "SeriesData",
    "Target",
    "Threshold",
    "evaluate_dashboard",
    "evaluate_panel",
    "format_value",
    "last_not_null",
    "legend",
    "load_dashboard",
    "map_value",
    "read_dashboard",
    "threshold_color",
]

GRAFANA_COLORS = {
    "green": "#73BF69",
    "yellow": "#FADE2A",
    "orange": "#FF9830",
    "red": "#F2495C",
    "blue": "#5794F2",
    "purple": "#B877D9",
    "text": "#464C54",
}


@dataclass(frozen=True)
class Threshold:
    """One threshold step: ``color`` from ``value`` upwards (None: the base step, from -inf)."""

    color: str
    value: float | None


DEFAULT_THRESHOLDS = (Threshold("green", None), Threshold("red", 80.0))
"""Grafana's thresholds for a panel that declares none."""


@dataclass(frozen=True)
class Target:
    expr: str
    legend_format: str = ""
    ref_id: str = ""


@dataclass(frozen=True)
class Panel:
    id: int | None
    title: str
    type: str
    targets: tuple[Target, ...]
    unit: str = ""
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    thresholds_declared: bool = False
    mappings: dict[str, str] = field(default_factory=dict)
    grid: tuple[int, int, int, int] = (0, 0, 12, 8)
    """``gridPos`` as (x, y, w, h) in Grafana's 24-column grid."""

    @property
    def label(self) -> str:
        """``<id>. <title>``, or the title of a panel without an id."""
        return self.title if self.id is None else f"{self.id}. {self.title}"


@dataclass(frozen=True)
class SeriesData:
    """One series of one target: its legend, labels and values at the steps (NaN: no value)."""

    target: int
    legend: str
    labels: Labels
    values: np.ndarray


@dataclass(frozen=True)
class PanelData:
    panel: Panel
    steps_ms: np.ndarray
    series: tuple[SeriesData, ...]
    errors: tuple[str, ...] = ()


# -- loading ----------------------------------------------------------------------------------
# The parts of Grafana's dashboard JSON this package reads, as pydantic models. Grafana JSON is
# open (every plugin adds its own fields), so unknown fields are allowed and ignored.


class _Open(BaseModel):
    """Unknown fields are kept (and ignored); ``null`` for a modelled field means its default."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        return null_is_absent(cls, data)


class GrafanaTarget(_Open):
    """A query of a panel; ``expr`` is PromQL (targets of other data sources have none)."""

    expr: StrictStr | None = None
    legendFormat: StrictStr = ""
    refId: StrictStr = ""


class GrafanaThresholdStep(_Open):
    color: StrictStr = "green"
    value: FiniteFloat | None = None


class GrafanaThresholds(_Open):
    steps: Annotated[list[GrafanaThresholdStep], Field(min_length=1)]


class GrafanaMapping(_Open):
    """A value mapping; only ``type: value`` ones are applied (``options``: value -> {text})."""

    type: StrictStr = "value"
    options: dict[str, Any] = Field(default_factory=dict)


class GrafanaFieldDefaults(_Open):
    unit: StrictStr = ""
    decimals: Annotated[int, Field(ge=0, le=20)] | None = None
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None
    thresholds: GrafanaThresholds | None = None
    mappings: list[GrafanaMapping] = Field(default_factory=list)


class GrafanaFieldConfig(_Open):
    defaults: GrafanaFieldDefaults = GrafanaFieldDefaults()


class GrafanaGridPos(_Open):
    x: int = 0
    y: int = 0
    w: int = 12
    h: int = 8


class GrafanaPanel(_Open):
    """A panel; a ``row`` holds the panels it collapses in ``panels``."""

    type: StrictStr
    id: int | None = None
    title: StrictStr = ""
    targets: list[GrafanaTarget] = Field(default_factory=list)
    fieldConfig: GrafanaFieldConfig = GrafanaFieldConfig()
    gridPos: GrafanaGridPos = GrafanaGridPos()
    panels: list[GrafanaPanel] = Field(default_factory=list)


class GrafanaDashboard(_Open):
    panels: list[GrafanaPanel]
    title: StrictStr | None = None


def _value_mappings(mappings: list[GrafanaMapping]) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in mappings:
        if m.type != "value":
            continue  # range/regex/special mappings: not used by the seed's dashboard
        for key, opt in m.options.items():
            if isinstance(opt, dict) and "text" in opt:
                out[str(key)] = str(opt["text"])
    return out


def _panel(raw: GrafanaPanel) -> Panel:
    defaults = raw.fieldConfig.defaults
    thresholds: tuple[Threshold, ...] = DEFAULT_THRESHOLDS
    if defaults.thresholds is not None:
        thresholds = tuple(Threshold(s.color, s.value) for s in defaults.thresholds.steps)
    g = raw.gridPos
    return Panel(
        id=raw.id,
        title=raw.title,
        type=raw.type,
        targets=tuple(Target(t.expr, t.legendFormat, t.refId) for t in raw.targets if t.expr is not None),
        unit=defaults.unit,
        decimals=defaults.decimals,
        min=defaults.min,
        max=defaults.max,
        thresholds=thresholds,
        thresholds_declared=defaults.thresholds is not None,
        mappings=_value_mappings(defaults.mappings),
        grid=(g.x, g.y, g.w, g.h),
    )


def _flat(panels: list[GrafanaPanel]) -> list[GrafanaPanel]:
    """Panels in file order, a row replaced by the panels it holds (a row shows no data)."""
    out: list[GrafanaPanel] = []
    for p in panels:
        if p.type != "row":
            out.append(p)
        out.extend(_flat(p.panels))
    return out


def read_dashboard(path: str | os.PathLike[str]) -> GrafanaDashboard:
    """The dashboard JSON (bare, or wrapped in ``{"dashboard": ...}``) validated; errors are one
    line naming the file and the JSON path (``dash.json: panels[2].targets[0].expr: ...``)."""
    p = Path(path)
    try:
        doc = json.loads(read_input_text(p))
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if isinstance(doc, dict) and isinstance(doc.get("dashboard"), dict):
        return validate(GrafanaDashboard, doc["dashboard"], str(p), prefix=("dashboard",))
    if not isinstance(doc, dict):
        raise UserError(f"{p}: expected a Grafana dashboard object, got a JSON {type(doc).__name__}")
    return validate(GrafanaDashboard, doc, str(p))


def load_dashboard(path: str | os.PathLike[str]) -> tuple[str, list[Panel]]:
    """The dashboard's title and panels in file order, those of rows included (rows themselves
    are left out); only targets with a PromQL ``expr`` are kept."""
    board = read_dashboard(path)
    return board.title or Path(path).stem, [_panel(raw) for raw in _flat(board.panels)]


# -- display rules ------------------------------------------------------------------------------


def legend(fmt: str, labels: Labels) -> str:
    """Grafana's series name: ``{{name}}`` replaced by label values, or the label set if no format."""
    lab = dict(labels)
    if not fmt:
        inner = ", ".join(f'{k}="{v}"' for k, v in labels if k != "__name__")
        return f"{lab.get('__name__', '')}{{{inner}}}"
    return re.sub(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}", lambda m: lab.get(m.group(1), ""), fmt)


def last_not_null(values: np.ndarray) -> float | None:
    """Grafana's ``lastNotNull`` reducer: the last finite value, None if there is none."""
    ok = np.flatnonzero(np.isfinite(values))
    return None if ok.size == 0 else float(values[ok[-1]])


def threshold_color(value: float, steps: tuple[Threshold, ...]) -> str:
    """Colour name of the last step whose value is at or below ``value`` (the base step has None)."""
    color = steps[0].color
    for step in steps:
        if step.value is None or value >= step.value:
            color = step.color
    return color


def _value_key(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def map_value(value: float, mappings: dict[str, str]) -> str | None:
    """The text of a value mapping matching ``value`` exactly (``1.0`` matches ``"1"``), else None."""
    return mappings.get(_value_key(value))


def _scaled(value: float, decimals: int | None, steps: tuple[tuple[float, str], ...]) -> str:
    for size, suffix in steps:
        if abs(value) >= size:
            return f"{_fixed(value / size, decimals)}{suffix}"
    return _fixed(value, decimals)


def _fixed(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:,.{decimals}f}"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}" if abs(value) >= 100 else "0"
    return f"{value:.3g}"


_SHORT = ((1e12, " Tri"), (1e9, " Bil"), (1e6, " Mil"), (1e3, " K"))


def format_value(value: float | None, unit: str, decimals: int | None = None) -> str:
    """A number the way Grafana formats it for the units used by the seed's dashboard."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "No data"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if unit == "percent":
        return f"{_fixed(value, decimals)}%"
    if unit == "percentunit":
        return f"{_fixed(value * 100, decimals)}%"
    if unit == "currencyUSD":
        return f"${_scaled(value, decimals, ((1e9, 'B'), (1e6, 'M'), (1e3, 'K')))}"
    if unit == "s":
        if abs(value) < 1 and value != 0:
            return f"{_fixed(value * 1000, decimals)} ms"
        if abs(value) >= 3600:
            return f"{_fixed(value / 3600, decimals)} hour"
        if abs(value) >= 60:
            return f"{_fixed(value / 60, decimals)} min"
        return f"{_fixed(value, decimals)} s"
    if unit == "reqps":
        return f"{_fixed(value, decimals)} req/s"
    return _scaled(value, decimals, _SHORT)


# -- evaluation -----------------------------------------------------------------------------------


def evaluate_panel(engine: Engine, panel: Panel, start_ms: int, end_ms: int, step_ms: int) -> PanelData:
    """Every target of ``panel`` as a range query; a query the engine rejects is reported, not raised
    (one broken panel must not hide the others)."""
    steps = np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)
    series: list[SeriesData] = []
    errors: list[str] = []
    for i, target in enumerate(panel.targets):
        try:
            res = engine.range(target.expr, start_ms, end_ms, step_ms)
        except PromQLError as exc:
            errors.append(f"{target.expr}: {exc}")
            continue
        values = np.where(res.present, res.values, np.nan)
        for k, labels in enumerate(res.labels):
            series.append(SeriesData(i, legend(target.legend_format, labels), labels, values[k]))
    return PanelData(panel, steps, tuple(series), tuple(errors))


def evaluate_dashboard(
    store: SeriesStore, panels: list[Panel], start_ms: int, end_ms: int, step_ms: int
) -> list[PanelData]:
    engine = Engine(store)
    return [evaluate_panel(engine, p, start_ms, end_ms, step_ms) for p in panels]


def panel_table(panels: list[PanelData]) -> list[dict[str, str]]:
    """One row per target: panel, type, PromQL, legend, series count and the stat value shown."""
    rows = []
    for d in panels:
        p = d.panel
        for i, t in enumerate(p.targets):
            series = [s for s in d.series if s.target == i]
            shown = ""
            if p.type == "stat":
                parts = []
                for s in series:
                    v = last_not_null(s.values)
                    mapped = None if v is None else map_value(v, p.mappings)
                    parts.append(mapped if mapped is not None else format_value(v, p.unit, p.decimals))
                shown = ", ".join(parts) or "No data"
            rows.append(
                {
                    "panel": p.label,
                    "type": p.type,
                    "PromQL": t.expr,
                    "legend": t.legend_format,
                    "series": str(len(series)),
                    "unit": p.unit or "-",
                    "stat value": shown,
                }
            )
        for err in d.errors:
            rows.append(
                {
                    "panel": p.label,
                    "type": p.type,
                    "PromQL": err,
                    "legend": "",
                    "series": "0",
                    "unit": p.unit or "-",
                    "stat value": "query error",
                }
            )
    return rows
