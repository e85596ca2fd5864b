"""The report's prose, built from its inputs: page titles and opening paragraphs name the SLO
file's services and SLOs, the rules files, the dashboard's own title and where the ground truth
came from. Nothing here knows any particular service: what a page says about one comes from the
files it was given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sloanalysis.dashboard import PanelData
from sloanalysis.durations import format_duration_human, format_time_left
from sloanalysis.report.model import Inputs
from sloanalysis.slo.spec import SLO

__all__ = [
    "PAGES",
    "dashboard_note",
    "display_names",
    "ground_truth_phrase",
    "page_intro",
    "page_title",
    "services",
    "time_left",
]

PAGES = ("slo_report", "alert_tuning", "dashboard")


def display_names(paths: Sequence[str]) -> list[str]:
    """Each path by its file name, or by its full path where two files share a name."""
    names = [Path(p).name for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]


def _listing(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _code(names: Sequence[str]) -> list[str]:
    return [f"`{n}`" for n in names]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def services(slos: Sequence[SLO]) -> list[str]:
    """The services of the SLOs, in the order they first appear."""
    return list(dict.fromkeys(s.service for s in slos))


def ground_truth_phrase(inputs: Inputs) -> str | None:
    """Where the incidents come from, for a sentence; None without any."""
    if inputs.incidents:
        return f"the incidents of `{Path(inputs.incidents).name}`"
    if inputs.run_dir:
        return "the run's own incidents (`incidents.csv`)"
    return None


def page_title(page: str, inputs: Inputs, slos: Sequence[SLO], dashboard_title: str = "") -> str:
    """The title of a report page (and of its browser tab)."""
    if page == "slo_report":
        names = services(slos)
        return f"SLO report: {', '.join(names)}" if names else "SLO report"
    if page == "alert_tuning":
        files = display_names(inputs.rules)
        return f"Alert backtest and tuning: {', '.join(files)}" if files else "Alert backtest and tuning"
    if page == "dashboard":
        if dashboard_title:
            return f"Dashboard: {dashboard_title}"
        return f"Dashboard: {Path(inputs.dashboard).name}" if inputs.dashboard else "Dashboard"
    return page


def _shading(inputs: Inputs) -> str:
    truth = ground_truth_phrase(inputs)
    if truth is None:
        return "No ground truth was given (no incidents), so no time axis is shaded."
    return f"Shaded spans on every time axis are {truth} (ground truth)."


def _slo_intro(inputs: Inputs, slos: Sequence[SLO]) -> str:
    if not inputs.slos:
        return "No SLO file was given: there is nothing to measure."
    names = services(slos)
    whose = f"of {_listing(names)} " if names else ""
    return (
        f"The {_plural(len(slos), 'SLO')} {whose}in `{Path(inputs.slos).name}` measured over the data: "
        "whether each is met at the end of the range and in every period inside it, how much error "
        "budget is left, how the budget burned down, and how fast it burned over the windows of its "
        f"burn-rate alerts. {_shading(inputs)}"
    )


def _alert_intro(inputs: Inputs) -> str:
    files = display_names(inputs.rules)
    if not files:
        return "No rules file was given: there is no alert to replay."
    truth = ground_truth_phrase(inputs)
    text = (
        f"The alerting rules of {_listing(_code(files))} replayed over the data with Prometheus's "
        "rule-manager semantics (evaluation every interval, `for` as pending time)"
    )
    if truth is None:
        text += (
            ". No ground truth was given (no incidents), so the firings are shown but precision and "
            "recall are not measured: every alert's gate is n/a. Give incidents to score them."
        )
    else:
        text += (
            f", then scored against {truth}: which alerts fired during the incidents that expect "
            "them (recall), which firings had no incident behind them (precision, false positives "
            "per day), and how long detection took."
        )
    if len(files) > 1:
        text += f" Each of the {len(files)} files is scored on its own, so they compare side by side."
    return text


def _dashboard_intro(inputs: Inputs, title: str) -> str:
    if not inputs.dashboard:
        return "No dashboard was given."
    named = f" (“{title}”)" if title else ""
    return (
        f"Every panel of `{Path(inputs.dashboard).name}`{named} evaluated from the PromQL it declares, "
        "as Grafana would draw it: stat panels show each series' last value with the panel's value "
        "mappings and threshold colours (a panel without thresholds gets Grafana's defaults, green "
        "then red from 80), graph panels draw each series with its `legendFormat`. Stat values are "
        f"at the end of the range; graphs span the whole range. {_shading(inputs)}"
    )


def page_intro(page: str, inputs: Inputs, slos: Sequence[SLO], dashboard_title: str = "") -> str:
    """The page's title as a heading and its opening paragraph, in Markdown."""
    if page == "slo_report":
        body = _slo_intro(inputs, slos)
    elif page == "alert_tuning":
        body = _alert_intro(inputs)
    elif page == "dashboard":
        body = _dashboard_intro(inputs, dashboard_title)
    else:
        body = ""
    heading = f"# {page_title(page, inputs, slos, dashboard_title)}"
    return f"{heading}\n\n{body}" if body else heading


def dashboard_note(inputs: Inputs, title: str, panels: Sequence[PanelData]) -> str | None:
    """Why the dashboard page is left out (no dashboard, or not one panel query with data for this
    source); None when it has something to show."""
    if not inputs.dashboard:
        return "Dashboard page left out: no dashboard given."
    if any(p.series for p in panels):
        return None
    queries = sum(len(p.panel.targets) for p in panels)
    named = f" (“{title}”)" if title else ""
    return (
        f"Dashboard page left out: none of the {queries} panel {'query' if queries == 1 else 'queries'} "
        f"of `{Path(inputs.dashboard).name}`{named} returned data for {inputs.describe()}."
    )


def time_left(row: Mapping[str, Any]) -> str:
    """The time to exhaustion of a status row (:meth:`~sloanalysis.slo.status.SLOStatus.row`) in
    words: ``no data``, ``exhausted``, a duration, ``never`` (nothing burns), or for a calendar SLO
    whose budget outlasts its period (the budget resets when the period ends), ``not before the
    period ends (in 12d3h)``."""
    ms = row.get("time_to_exhaustion_ms")
    if ms is None:
        return "no data"
    ratio = row.get("budget_remaining_ratio")
    left = row.get("period_left_ms")
    if left is not None and not math.isnan(ms) and ms >= left and (ratio is None or ratio > 0):
        return f"not before the period ends (in {format_duration_human(left)})"
    return format_time_left(ms)
