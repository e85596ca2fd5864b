"""The capacity plot: processing time, success rate and throughput against load, per configuration.

Three panels share the load axis (with its unit): processing-time P50/P95/P99 on a log scale
with the SLO line and each configuration's knee; success rate (logit scale) with its SLO line;
throughput beside the offered load. A thick vertical line marks each configuration's sustainable
rate (the lower of its two SLOs'; none when an SLO fails at the lowest load). Configurations are
coloured and named C1, C2 ... with their full labels in a legend below the panels, wrapped,
never cut.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np
import pandas as pd

from simulator.capacity.stats import config_ids

__all__ = ["UNITS", "axis_label", "capacity_figure", "config_legend"]

UNITS = {"load.payout_rate": "payouts/s", "load.api_rate": "requests/s"}
_COLORS = [f"C{i}" for i in range(10)]


def axis_label(x_path: str) -> str:
    """The load axis with its unit when the path has a known one: ``load.payout_rate (payouts/s)``."""
    unit = UNITS.get(x_path)
    return f"{x_path} ({unit})" if unit else x_path


def config_legend(configs: list[str], width: int = 100) -> list[str]:
    """``C1: full label`` per configuration, wrapped between words at ``width`` (never inside one)."""
    ids = config_ids(configs)
    return [
        textwrap.fill(
            f"{ids[c]}: {c}", width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False
        )
        for c in configs
    ]


def _band(ax: Any, g: pd.DataFrame, metric: str, color: str, style: str = "-", cap: float = math.inf) -> None:
    """The estimate with its interval as a band; values above ``cap`` drawn at it (logit: 1 is off-axis)."""
    y = np.minimum(g[metric].to_numpy(dtype=np.float64), cap)
    ax.plot(g["x"], y, style, marker="o", markersize=3, color=color)
    lo = np.minimum(g[f"{metric}_lo"].to_numpy(dtype=np.float64), cap)
    hi = np.minimum(g[f"{metric}_hi"].to_numpy(dtype=np.float64), cap)
    ax.fill_between(
        g["x"], np.where(np.isnan(lo), y, lo), np.where(np.isnan(hi), y, hi), color=color, alpha=0.15
    )


def _max_rates(limits: pd.DataFrame | None) -> dict[str, float]:
    """Per configuration the sustainable rate: the lower of its SLOs' ``max_rate``; none (no
    marker) when some SLO fails already at the lowest load."""
    if limits is None or limits.empty:
        return {}
    return {
        str(c): float(g["max_rate"].min())
        for c, g in limits.groupby("config", sort=False)
        if not (g["bound"] == "below grid").any()
    }


def _success_axis(ax: Any, results: pd.DataFrame, slo_success: float | None) -> float:
    """Logit scale, so 0.99, 0.995 and 0.999 are apart; the range covers estimates and the SLO.

    Returns the top of the axis (a success rate of 1 is drawn there)."""
    ax.set_yscale("logit", nonpositive="clip")
    y = results["success_rate"].to_numpy(dtype=np.float64)
    y = y[np.isfinite(y) & (y > 0) & (y < 1)]
    low = min([*y.tolist(), slo_success if slo_success is not None else 0.99, 0.99])
    top = max([*y.tolist(), 0.999])
    bottom, upper = low / (low + (1 - low) * 3), 1 - (1 - top) / 3  # 3x the odds either side
    ax.set_ylim(bottom, upper)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ticks = [
        t
        for t in (0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
        if bottom <= t <= upper
    ]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    return upper


def _knees(limits: pd.DataFrame | None) -> dict[str, float]:
    if limits is None or limits.empty or "knee" not in limits:
        return {}
    return {str(c): float(g["knee"].iloc[0]) for c, g in limits.groupby("config", sort=False)}


def capacity_figure(
    results: pd.DataFrame,
    *,
    x_label: str = "load",
    slo_seconds: float = 30.0,
    slo_success: float | None = None,
    limits: pd.DataFrame | None = None,
) -> Any:
    """The three-panel capacity figure; ``limits`` (:func:`.stats.sustainable`) adds the markers.

    ``x_label`` is the load's scenario path (its unit is added when known); bands are the 95 %
    intervals over replications.
    """
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend
    from matplotlib.lines import Line2D

    configs = list(dict.fromkeys(results["config"]))
    legend = config_legend(configs)
    lines = sum(text.count("\n") + 1 for text in legend)
    fig = Figure(figsize=(9, 10 + 0.2 * lines), layout="constrained")
    ax_time, ax_ok, ax_tput = fig.subplots(3, 1, sharex=True, height_ratios=(1.4, 1, 1))
    styles: dict[str, Any] = {"processing_p50": ":", "processing_p95": "-", "processing_p99": "--"}
    max_rates, knees = _max_rates(limits), _knees(limits)
    success_top = _success_axis(ax_ok, results, slo_success)
    for n, config in enumerate(configs):
        color = _COLORS[n % len(_COLORS)]
        g = results[results["config"] == config].sort_values("x")
        for metric, style in styles.items():
            _band(ax_time, g, metric, color, style)
        _band(ax_ok, g, "success_rate", color, cap=success_top)
        _band(ax_tput, g, "throughput", color)
        knee_x = knees.get(config, math.nan)
        if math.isfinite(knee_x):
            y = float(np.interp(knee_x, g["x"], g["processing_p95"]))
            ax_time.plot([knee_x], [y], marker="v", markersize=11, color=color, markeredgecolor="black")
        rate = max_rates.get(config, math.nan)
        if math.isfinite(rate):
            for ax in (ax_time, ax_ok, ax_tput):
                ax.axvline(rate, color=color, linewidth=2.5, alpha=0.55)
    ax_time.axhline(slo_seconds, color="black", linestyle="-.", linewidth=1.2)
    ax_time.set_yscale("log")
    ax_time.set_ylabel("processing time (s)")
    ax_time.set_title("Payout processing time, success and throughput vs load (bands: 95 % intervals)")
    pct = [Line2D([], [], color="grey", linestyle=st) for st in styles.values()]
    pct += [
        Line2D([], [], color="black", linestyle="-."),
        Line2D([], [], color="grey", marker="v", linestyle="", markeredgecolor="black"),
        Line2D([], [], color="grey", marker="|", markersize=14, markeredgewidth=2.5, linestyle=""),
    ]
    names = ["P50", "P95", "P99", f"SLO {slo_seconds:g} s", "knee (P95)", "max sustainable rate"]
    ax_time.legend(pct, names, fontsize="small", loc="upper left")
    if slo_success is not None:
        ax_ok.axhline(slo_success, color="black", linestyle="-.", linewidth=1.2)
        slo_line = Line2D([], [], color="black", linestyle="-.")
        ax_ok.legend([slo_line], [f"SLO {slo_success:g}"], fontsize="small", loc="lower left")
    ax_ok.set_ylabel("success rate (logit scale)")
    ax_tput.set_ylabel("throughput (confirmed payouts/s)")
    if x_label == "load.payout_rate":  # throughput can at most follow the offered payout rate
        xs = np.unique(results["x"].to_numpy(dtype=np.float64))
        ax_tput.plot(xs, xs, color="black", linestyle=":", linewidth=1)
        ax_tput.legend([Line2D([], [], color="black", linestyle=":")], ["offered load"], fontsize="small")
    ax_tput.set_xlabel(axis_label(x_label))
    for ax in (ax_time, ax_ok, ax_tput):
        ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=_COLORS[n % len(_COLORS)], marker="o") for n in range(len(configs))]
    fig.legend(handles, legend, loc="outside lower left", fontsize="small", ncol=1, alignment="left")
    return fig
