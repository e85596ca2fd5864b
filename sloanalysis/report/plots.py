"""Matplotlib figures of the report: SLO burn-down, burn rates, firing timelines, Pareto fronts and
the Grafana dashboard. Every function takes already-computed data and returns a new Figure; every
time axis is UTC and shows the incidents of the run as shaded spans (ground truth at a glance).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from sloanalysis.dashboard import (
    GRAFANA_COLORS,
    PanelData,
    format_value,
    last_not_null,
    map_value,
    threshold_color,
)
from sloanalysis.durations import format_duration_human
from sloanalysis.formatting import fmt_percent
from sloanalysis.report.model import SLOResult
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.rulegen import BurnWindow, alert_windows, burn_windows
from sloanalysis.slo.spec import SLO
from sloanalysis.slo.status import calendar_of

__all__ = [
    "alert_thresholds",
    "burn_down_figure",
    "burn_rate_figure",
    "dashboard_figure",
    "firing_timeline_figure",
    "pareto_figure",
    "shade_incidents",
]

INCIDENT_COLOR = "#d62728"
LINEAR_BUDGET_PCT = 200.0
"""Budget plots are linear down to -200 %; further down the axis turns symmetric-log (linear
within ±100 %) so that the lowest value in the table is on the plot."""


def _utc(ms: np.ndarray | Sequence[int]) -> np.ndarray:
    """Naive UTC datetime64 for matplotlib (tz-aware indexes convert element by element: slow)."""
    return np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")


def _peaks(x: np.ndarray, y: np.ndarray, n: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``n`` points, each the maximum of its bin (a 5-minute spike in 30 days stays
    visible; a figure 1,200 pixels wide cannot show more points anyway)."""
    k = len(y) // n
    if k < 2:
        return x, y
    m = (len(y) // k) * k
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN bins stay NaN: gaps in the plot
        return x[:m:k], np.nanmax(y[:m].reshape(-1, k), axis=1)


def _rows(frame: pd.DataFrame) -> list[Any]:
    """Rows as named tuples (typed Any: the columns are the contract, not the tuple type)."""
    return list(frame.itertuples(index=False))


def _x(index: pd.Index) -> np.ndarray:
    idx = pd.DatetimeIndex(index)
    return (idx.tz_convert("UTC").tz_localize(None) if idx.tz is not None else idx).to_numpy()


def _time_axis(ax: Any, *, offset: bool = True) -> None:
    loc = mdates.AutoDateLocator(tz="UTC", minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz="UTC", show_offset=offset))
    ax.grid(True, alpha=0.3)


def shade_incidents(ax: Any, incidents: pd.DataFrame | None, *, label: bool = False) -> None:
    """Shade each incident's [start, end] on ``ax``; with ``label`` name it above the axes."""
    if incidents is None or len(incidents) == 0:
        return
    lo, hi = ax.get_xlim()
    for row in _rows(incidents):
        ax.axvspan(row.start, row.end, color=INCIDENT_COLOR, alpha=0.13, lw=0)
        if label:
            ax.annotate(
                str(row.id),
                xy=(mdates.date2num(row.start), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(1, 2),
                textcoords="offset points",
                rotation=90,
                fontsize=7,
                color=INCIDENT_COLOR,
                ha="left",
                va="bottom",
                annotation_clip=True,
            )
    ax.set_xlim(lo, hi)


def _incident_legend(ax: Any, incidents: pd.DataFrame | None) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if incidents is not None and len(incidents):
        handles.append(plt.Rectangle((0, 0), 1, 1, color=INCIDENT_COLOR, alpha=0.13))
        labels.append("incident (ground truth)")
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


# -- SLOs -------------------------------------------------------------------------------------


def _budget_axis(ax: Any, x: np.ndarray, pct: np.ndarray) -> None:
    """Limits that hold every value (symlog below -200 %) and the minimum annotated when negative."""
    finite = np.isfinite(pct)
    if not finite.any():
        ax.set_ylim(-5.0, 105.0)
        return
    i = int(np.flatnonzero(finite)[np.argmin(pct[finite])])
    low = float(pct[i])
    if low < -LINEAR_BUDGET_PCT:
        ax.set_yscale("symlog", linthresh=100.0)
        ax.set_ylim(low * 1.5, 105.0)
    else:
        ax.set_ylim(min(-5.0, low - 5.0), 105.0)
    if low < 0:
        ax.plot([x[i]], [low], "v", color="black", ms=5)
        ax.annotate(
            f"min {fmt_percent(low / 100)}, {pd.Timestamp(x[i]).strftime('%Y-%m-%d %H:%M')}",
            xy=(x[i], low),
            xytext=(4, 2),
            textcoords="offset points",
            fontsize=7,
            va="bottom",
        )


def _verdict(res: SLOResult) -> str:
    """The state at the end, and the misses over the range when there were any."""
    c = res.compliance
    if c is None or not c.missed or res.state not in ("met", "missed"):
        return res.state
    kind = "calendar periods" if getattr(c, "calendar", None) is not None else "periods"
    where = (
        f"in {len(c.missed)} of {len(c.windows)} {kind}" if c.method == "periods" else "in a rolling window"
    )
    return f"{res.state} at the end, missed {where}"


def _period_words(res: SLOResult) -> str:
    """``30 days`` for a rolling SLO; a calendar one's window and its period at the range's end."""
    cal, current = calendar_of(res.slo), getattr(res.status, "period_label", None)
    if cal is None:
        return res.period_label
    return f"{cal}, now {current}" if current else str(cal)


def _mark_boundaries(ax: Any, cal: CalendarWindow, index: pd.Index) -> None:
    """Dashed lines where a calendar SLO's budget resets, each named by the period it opens."""
    ms = pd.DatetimeIndex(index).as_unit("ms").asi8
    if len(ms) < 2:
        return
    starts = cal.boundaries(int(ms[0]), int(ms[-1]))
    for i, (b, x) in enumerate(zip(starts, _x(pd.to_datetime(starts, unit="ms", utc=True)), strict=True)):
        label = "budget reset (calendar period)" if i == 0 else None
        ax.axvline(x, color="grey", ls="--", lw=0.8, label=label)
        name = cal.period_label(b).rsplit(" (", 1)[0]
        ax.annotate(
            name,
            xy=(x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -10),
            textcoords="offset points",
            fontsize=7,
            color="grey",
        )


def burn_down_figure(results: Sequence[SLOResult], incidents: pd.DataFrame | None) -> Figure:
    """Error budget remaining over each SLO's rolling period, one panel per SLO; the y axis holds
    every value (symmetric-log below -200 %), the minimum is marked when negative."""
    n = max(len(results), 1)
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.1 * n + 0.8), sharex=True, squeeze=False)
    for ax, res in zip(axes[:, 0], results, strict=False):
        remaining = res.budget_remaining
        x = _x(remaining.index)
        pct = remaining.to_numpy(dtype=np.float64) * 100
        ax.plot(x, pct, color="#1f77b4", lw=1.2, label="budget left")
        ax.axhline(0, color="black", lw=0.8)
        ax.fill_between(x, pct, 0, where=pct < 0, color="red", alpha=0.3)
        _budget_axis(ax, x, pct)
        cal = calendar_of(res.slo)
        if cal is not None:
            _mark_boundaries(ax, cal, remaining.index)
        objective = f"objective {res.slo.objective * 100:g}% over {_period_words(res)}"
        ax.set_title(
            f"{res.slo.name}: {objective} ({_verdict(res)})",
            fontsize=10,
            loc="left",
        )
        ax.set_ylabel("% of budget")
        _time_axis(ax)
        shade_incidents(ax, incidents)
    _incident_legend(axes[0, 0], incidents)
    window = "rolling SLO period"
    if any(calendar_of(r.slo) is not None for r in results):
        window += ", or since the calendar period's start"
    fig.suptitle(f"Error budget remaining ({window}; below 0: SLO missed)", fontsize=12)
    fig.tight_layout()
    return fig


def alert_thresholds(slo: SLO | int) -> list[BurnWindow]:
    """The burn-rate alert pairs ``sloanalysis generate-rules`` writes for an SLO in its own style
    (:func:`~sloanalysis.slo.rulegen.alert_windows`: Sloth's windows and factors for a Sloth spec,
    Pyrra's for a Pyrra one), or the native ones for a bare period: the plot's thresholds."""
    return burn_windows(slo) if isinstance(slo, int) else alert_windows(slo)


def _threshold_label(w: BurnWindow) -> str:
    long, short = format_duration_human(w.long_ms), format_duration_human(w.short_ms)
    share = fmt_percent(w.budget_fraction)
    hold = f" for {format_duration_human(w.for_ms)}" if w.for_ms else ""
    return f"{w.severity} {long}/{short}{hold}: {w.factor:.4g}× ({share} of the budget in {long})"


def burn_rate_figure(results: Sequence[SLOResult], incidents: pd.DataFrame | None) -> Figure:
    """Burn rate over each window (log scale), with the thresholds of the burn-rate alerts
    ``generate-rules`` writes for the SLO in its own style (dashed, in the colour of their long window)."""
    n = max(len(results), 1)
    fig, axes = plt.subplots(n, 1, figsize=(12, 2.3 * n + 0.8), sharex=True, squeeze=False)
    for ax, res in zip(axes[:, 0], results, strict=False):
        x = _x(res.burn_rates.index)
        colors: dict[str, Any] = {}
        for col in res.burn_rates.columns:
            px, py = _peaks(x, res.burn_rates[col].clip(lower=1e-3).to_numpy())
            (line,) = ax.plot(px, py, lw=0.9, label=f"{col} window")
            colors[col] = line.get_color()
        for w in alert_thresholds(res.slo):
            color = colors.get(format_duration_human(w.long_ms), "grey")
            ax.axhline(w.factor, color=color, ls="--", lw=0.8, label=_threshold_label(w))
        ax.axhline(1.0, color="grey", ls=":", lw=0.8, label="1: spends the budget over the period")
        ax.set_yscale("log")
        ax.set_ylim(1e-2, max(1000.0, float(np.nanmax(res.burn_rates.to_numpy(), initial=1.0)) * 1.5))
        ax.set_title(
            f"{res.slo.name} (error budget {(1 - res.slo.objective) * 100:.3g}% over {res.period_label})",
            fontsize=10,
            loc="left",
        )
        ax.set_ylabel("burn rate")
        _time_axis(ax)
        shade_incidents(ax, incidents)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.suptitle(
        "Burn rate per window; dashed: the generated alerts' thresholds (page or ticket when both windows "
        "of a pair are above)",
        fontsize=11,
    )
    fig.tight_layout()
    return fig


# -- alerts -----------------------------------------------------------------------------------


def firing_timeline_figure(
    alerts: pd.DataFrame,
    alertnames: Sequence[str],
    incidents: pd.DataFrame | None,
    start_ms: int,
    end_ms: int,
    title: str,
) -> Figure:
    """One row per alert rule: pending (light) and firing (dark) intervals; the incidents that
    expect the alert are outlined on its row, every incident is shaded."""
    names = list(alertnames)
    labelled = incidents is not None and len(incidents) > 0
    fig, ax = plt.subplots(figsize=(12, 0.42 * len(names) + (2.8 if labelled else 1.6)))
    rows = {name: i for i, name in enumerate(names)}
    end_t = pd.Timestamp(end_ms, unit="ms", tz="UTC")
    if incidents is not None:
        for inc in _rows(incidents):
            for name in inc.expected_alerts:
                if name in rows:
                    ax.add_patch(
                        plt.Rectangle(
                            (mdates.date2num(inc.start), rows[name] - 0.42),
                            mdates.date2num(inc.end) - mdates.date2num(inc.start),
                            0.84,
                            fill=False,
                            ec=INCIDENT_COLOR,
                            lw=1.0,
                        )
                    )
    for alert in _rows(alerts):
        y = rows.get(alert.alertname)
        if y is None:
            continue
        active = pd.Timestamp(alert.active_at_ms, unit="ms", tz="UTC")
        firing = (
            None if _missing(alert.firing_at_ms) else pd.Timestamp(alert.firing_at_ms, unit="ms", tz="UTC")
        )
        # The end of the activation: resolved (firing) or dropped (pending); still active: the range end.
        stop: Any = getattr(alert, "ended_at_ms", None)
        stop = alert.resolved_at_ms if _missing(stop) else stop
        resolved = end_t if _missing(stop) else pd.Timestamp(int(stop), unit="ms", tz="UTC")
        pend_end = firing if firing is not None else resolved
        _bar(ax, active, pend_end, y, "#f5b041", 0.5)
        if firing is not None:
            _bar(ax, firing, resolved, y, "#c0392b", 0.7)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(mdates.date2num(pd.Timestamp(start_ms, unit="ms", tz="UTC")), mdates.date2num(end_t))
    _time_axis(ax)
    shade_incidents(ax, incidents, label=True)
    ax.legend(
        [
            plt.Rectangle((0, 0), 1, 1, color="#c0392b"),
            plt.Rectangle((0, 0), 1, 1, color="#f5b041"),
            plt.Rectangle((0, 0), 1, 1, fill=False, ec=INCIDENT_COLOR),
            plt.Rectangle((0, 0), 1, 1, color=INCIDENT_COLOR, alpha=0.13),
        ],
        ["firing", "pending", "incident expecting the alert", "incident"],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )
    ax.set_title(title, fontsize=11, loc="left", pad=80 if labelled else 6)
    fig.tight_layout()
    return fig


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def _bar(ax: Any, t0: pd.Timestamp, t1: pd.Timestamp, y: int, color: str, height: float) -> None:
    x0 = mdates.date2num(t0)
    # Give short intervals a visible minimum width (a 1-minute alert in a 30-day plot).
    width = max(mdates.date2num(t1) - x0, (ax.get_xlim()[1] - ax.get_xlim()[0]) * 0.0015, 1e-5)
    ax.add_patch(plt.Rectangle((x0, y - height / 2), width, height, color=color, lw=0))


def pareto_figure(candidates: pd.DataFrame, title: str) -> Figure:
    """Mean detection time against false positives per day for every candidate setting of each
    rule (``candidates``: alertname, fp_per_day, detection_s, pareto, current); the Pareto front
    joined by a line, the rule as written starred. Settings that detect nothing have no point."""
    fig, ax = plt.subplots(figsize=(11, 5.5))
    shown = candidates[np.isfinite(candidates["detection_s"].to_numpy(dtype=np.float64))]
    for i, (name, group) in enumerate(shown.groupby("alertname", sort=True)):
        color = plt.get_cmap("tab10")(i % 10)
        ax.scatter(group["fp_per_day"], group["detection_s"] / 60, s=14, color=color, alpha=0.35)
        front = group[group["pareto"].astype(bool)].sort_values(["fp_per_day", "detection_s"])
        ax.plot(front["fp_per_day"], front["detection_s"] / 60, "-o", color=color, ms=4, lw=1.2, label=name)
        cur = group[group["current"].astype(bool)]
        ax.scatter(
            cur["fp_per_day"], cur["detection_s"] / 60, marker="*", s=180, color=color, ec="black", zorder=5
        )
    ax.set_xscale("symlog", linthresh=1.0)
    top = float(shown["fp_per_day"].max()) if len(shown) else 0.0
    ax.set_xlim(-0.1, max(2.0, top * 1.5))
    ax.set_xlabel("false positives per day")
    ax.set_ylabel("mean detection time (minutes)")
    ax.grid(True, alpha=0.3)
    ax.set_title(title, fontsize=11, loc="left")
    handles, labels = ax.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], marker="*", ls="", color="grey", mec="black", ms=12))
    labels.append("rule as written")
    ax.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
        title="Pareto front per rule",
    )
    if shown.empty:
        ax.text(
            0.5, 0.5, "no setting detected any incident", ha="center", va="center", transform=ax.transAxes
        )
    fig.tight_layout()
    return fig


# -- the Grafana dashboard ------------------------------------------------------------------------


def _stat_panel(ax: Any, data: PanelData) -> None:
    p = data.panel
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_color("#cccccc")
    if not data.series:
        ax.text(
            0.5, 0.5, "No data", ha="center", va="center", fontsize=16, color="grey", transform=ax.transAxes
        )
        return
    n = len(data.series)
    spark = ax.inset_axes((0.0, 0.0, 1.0, 0.35))
    spark.set_axis_off()
    for k, s in enumerate(data.series):
        value = last_not_null(s.values)
        text = format_value(value, p.unit, p.decimals)
        color = GRAFANA_COLORS["text"]
        if value is not None:
            mapped = map_value(value, p.mappings)
            text = mapped if mapped is not None else text
            name = threshold_color(value, p.thresholds)
            color = GRAFANA_COLORS.get(name, name)
        y = 0.62 if n == 1 else 0.88 - k * (0.55 / n)
        size = 24 if n == 1 else max(9, 17 - 2 * n)
        label = f"{s.legend}: " if n > 1 else ""
        ax.text(
            0.5,
            y,
            f"{label}{text}",
            ha="center",
            va="center",
            fontsize=size,
            color=color,
            fontweight="bold",
            transform=ax.transAxes,
        )
        spark.plot(_utc(data.steps_ms), s.values, color=color, lw=0.8, alpha=0.6)
    if n == 1:
        ax.text(
            0.5,
            0.88,
            data.series[0].legend,
            ha="center",
            va="center",
            fontsize=8,
            color="grey",
            transform=ax.transAxes,
        )


def _graph_panel(ax: Any, data: PanelData, incidents: pd.DataFrame | None) -> None:
    p = data.panel
    times = _utc(data.steps_ms)
    for s in data.series:
        ax.plot(times, s.values, lw=0.8, label=s.legend)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_value(v, p.unit, None)))
    ax.tick_params(labelsize=7)
    if p.min is not None or p.max is not None:
        ax.set_ylim(p.min, p.max)
    _time_axis(ax, offset=False)
    shade_incidents(ax, incidents)
    if data.series:
        ncol = 1 if len(data.series) <= 4 else (2 if len(data.series) <= 12 else 3)
        ax.legend(fontsize=6, loc="upper left", ncol=ncol, frameon=True, framealpha=0.6)
    else:
        ax.text(
            0.5, 0.5, "No data", ha="center", va="center", fontsize=14, color="grey", transform=ax.transAxes
        )


def dashboard_figure(title: str, panels: Sequence[PanelData], incidents: pd.DataFrame | None) -> Figure:
    """Every panel at its ``gridPos`` in Grafana's 24-column grid."""
    rows = max((d.panel.grid[1] + d.panel.grid[3] for d in panels), default=8)
    height = rows * 0.5 + 0.8
    fig = plt.figure(figsize=(16, height))
    grid = fig.add_gridspec(rows, 24, hspace=8.0, wspace=2.0)
    for d in panels:
        x, y, w, h = d.panel.grid
        ax = fig.add_subplot(grid[y : y + h, x : x + w])
        if d.panel.type == "stat":
            _stat_panel(ax, d)
        else:
            _graph_panel(ax, d, incidents)
        note = "  (query error)" if d.errors else ""
        ax.set_title(f"{d.panel.title}{note}", fontsize=9, loc="left")
    fig.suptitle(
        f"{title} (stat values at the end of the range; times in UTC)", fontsize=13, x=0.01, ha="left"
    )
    fig.subplots_adjust(left=0.05, right=0.99, top=1 - 0.75 / height, bottom=0.03)
    return fig
