"""The capacity plot: processing-time percentiles against load, one colour per configuration."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["capacity_figure"]


def capacity_figure(results: pd.DataFrame, *, x_label: str = "load", slo_seconds: float = 30.0) -> Any:
    """Processing-time P50/P95/P99 against load with 95 % intervals, one colour per configuration."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend
    from matplotlib.lines import Line2D

    configs = list(dict.fromkeys(results["config"]))
    fig = Figure(figsize=(9, 5.5 + 0.22 * len(configs)), layout="constrained")
    ax = fig.add_subplot()
    styles: dict[str, Any] = {"processing_p50": ":", "processing_p95": "-", "processing_p99": "--"}
    colors = [f"C{i}" for i in range(10)]
    for n, config in enumerate(configs):
        g = results[results["config"] == config].sort_values("x")
        for metric, style in styles.items():
            y = g[metric].to_numpy(dtype=np.float64)
            err = np.vstack([y - g[f"{metric}_lo"].to_numpy(), g[f"{metric}_hi"].to_numpy() - y])
            ax.errorbar(
                g["x"], y, yerr=np.nan_to_num(err), fmt=style, marker="o", markersize=3, capsize=2,
                color=colors[n % len(colors)],
            )  # fmt: skip
    ax.axhline(slo_seconds, color="black", linestyle="-.", linewidth=1.2)
    ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel("payout processing time (s)")
    ax.set_title("Payout processing time vs load (95 % CI over replications)")
    ax.grid(True, which="both", alpha=0.3)
    # Two legends: colours name configurations, line styles name percentiles.
    handles = [Line2D([], [], color=colors[n % len(colors)], marker="o") for n in range(len(configs))]
    fig.legend(handles, configs, loc="outside lower center", fontsize="small", ncol=1)
    pct = [Line2D([], [], color="grey", linestyle=st) for st in styles.values()]
    pct.append(Line2D([], [], color="black", linestyle="-."))
    ax.legend(pct, ["P50", "P95", "P99", f"SLO {slo_seconds:g} s"], fontsize="small", loc="upper left")
    return fig
