"""The alert part of the report, shown: score tables, firing timelines, Pareto figures and the
tuning sliders of the notebooks.

The backtests and sweeps themselves are computed by :mod:`sloanalysis.rules.backtest` and
:mod:`sloanalysis.rules.tuning` (through :class:`~sloanalysis.report.context.Context`); this
module only presents them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sloanalysis.formatting import fmt_percent
from sloanalysis.report import plots
from sloanalysis.report.context import Context, html_table
from sloanalysis.report.gates import alert_labels
from sloanalysis.report.model import MINUTE_MS
from sloanalysis.rules.backtest import Backtest
from sloanalysis.rules.tuning import Tunable, evaluate_setting

if TYPE_CHECKING:
    from matplotlib.figure import Figure


__all__ = [
    "pareto_figures",
    "score_table",
    "score_tables",
    "timeline_figures",
    "tuning_view",
]


# -- display --------------------------------------------------------------------------------------


def _pct(x: Any, na: str = "-") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return na
    return fmt_percent(float(x))


def _fixed(x: Any, na: str = "-") -> str:
    return na if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.2f}"


def _dur(ms: Any) -> str:
    from sloanalysis.durations import format_duration_human

    return (
        "-" if ms is None or (isinstance(ms, float) and math.isnan(ms)) else format_duration_human(float(ms))
    )


def _count(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else str(int(x))


def score_table(bt: Backtest) -> pd.DataFrame:
    """The scores of one backtest for people: one row per alert (name and severity) and the overall
    row; without ground truth the measures read ``n/a``."""
    s = bt.scores
    na = "-" if getattr(bt, "ground_truth", True) else "n/a"
    severity = list(s["severity"]) if "severity" in s else None
    return pd.DataFrame(
        {
            "alert": alert_labels(list(s["alert"]), severity),
            "incidents": [_count(x) for x in s["incidents"]],
            "detected": [_count(x) for x in s["detected"]],
            "recall": [_pct(x, na) for x in s["recall"]],
            "precision": [_pct(x, na) for x in s["precision"]],
            "detection": [_dur(x) for x in s["detection_ms"]],
            "FP/day": [_fixed(x, na) for x in s["fp_per_day"]],
            "firings": [_count(x) for x in s["firings"]],
        }
    )


def score_tables(ctx: Context) -> list[tuple[str, pd.DataFrame]]:
    return [(f"### `{name}`", score_table(bt)) for name, bt in zip(_names(ctx), ctx.backtests, strict=True)]


def _names(ctx: Context) -> list[str]:
    """Each backtest's rules file by its name (its full path where two share a name)."""
    from sloanalysis.report.wording import display_names

    return display_names([bt.path for bt in ctx.backtests])


def timeline_figures(ctx: Context) -> list[Figure]:
    return [
        plots.firing_timeline_figure(
            bt.alerts, bt.alert_names, ctx.incidents, ctx.start_ms, ctx.end_ms, f"Firing timeline: {name}"
        )
        for name, bt in zip(_names(ctx), ctx.backtests, strict=True)
    ]


def pareto_figures(ctx: Context) -> list[Figure]:
    return [
        plots.pareto_figure(ts.candidates, f"Detection time vs false positives per day: {Path(path).name}")
        for path, ts in ctx.tuning.items()
        if len(ts.candidates)
    ]


def _setting_view(ctx: Context, t: Tunable, factor: float, for_minutes: int) -> None:
    """Backtest ``t``'s rule with its threshold times ``factor`` and ``for`` in minutes; show the
    score and the timeline next to the rule as written."""
    from IPython.display import Markdown, display

    from sloanalysis.durations import format_duration_human

    threshold = t.threshold * factor
    for_ms = int(for_minutes) * MINUTE_MS
    alerts, row = evaluate_setting(t, threshold, for_ms, ctx.incidents, ctx.start_ms, ctx.end_ms)
    _, base = evaluate_setting(t, t.threshold, t.rule.for_ms, ctx.incidents, ctx.start_ms, ctx.end_ms)
    table = pd.DataFrame(
        [
            {
                "setting": f"as written: {t.op} {t.threshold:g}, for {format_duration_human(t.rule.for_ms)}",
                **_brief(base),
            },
            {"setting": f"tried: {t.op} {threshold:.4g}, for {format_duration_human(for_ms)}", **_brief(row)},
        ]
    )
    display(Markdown(f"**{t.rule.name}** (`{t.path}`): `{t.rule.expr}`"), html_table(table))
    plots.firing_timeline_figure(
        alerts, [t.rule.name], ctx.incidents, ctx.start_ms, ctx.end_ms, f"{t.rule.name}, tried setting"
    )
    import matplotlib.pyplot as plt

    plt.show()


def _brief(row: dict[str, Any]) -> dict[str, str]:
    return {
        "recall": _pct(row["recall"]),
        "precision": _pct(row["precision"]),
        "detection": _dur(row["detection_ms"]),
        "FP/day": _fixed(row["fp_per_day"]),
        "firings": str(row["firings"]),
    }


def tuning_view(ctx: Context, *, interactive: bool) -> None:
    """JupyterLab: sliders (rule, threshold factor, ``for``) that re-run the chosen rule's backtest.
    Headless: the first tunable rule as written (widgets do not survive a static export)."""
    from IPython.display import Markdown, display

    choices = {f"{name} ({path})": t for path, ts in ctx.tuning.items() for name, t in ts.tunables.items()}
    if not choices:
        display(Markdown("*No rule with a numeric threshold to tune.*"))
        return
    first = next(iter(choices.values()))
    if not interactive:
        _setting_view(ctx, first, 1.0, first.rule.for_ms // MINUTE_MS)
        return
    import ipywidgets as w

    rule = w.Dropdown(options=list(choices), description="rule", layout=w.Layout(width="60%"))
    factor = w.FloatLogSlider(
        value=1.0, base=2, min=-3, max=3, step=0.25, description="threshold ×", continuous_update=False
    )
    for_min = w.IntSlider(
        value=first.rule.for_ms // MINUTE_MS, min=0, max=30, description="for (min)", continuous_update=False
    )

    def show(rule: str, factor: float, for_minutes: int) -> None:
        _setting_view(ctx, choices[rule], factor, for_minutes)

    w.interact(show, rule=rule, factor=factor, for_minutes=for_min)
