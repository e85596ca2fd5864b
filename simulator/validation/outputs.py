"""The outputs of an alert validation: JSON, tables, plots and a report page (Markdown and HTML).

Files in the output directory (each written atomically): ``validation.json``, ``alerts.txt``,
``detection.png`` (detection probability against incident severity, 95 % bands),
``pareto.png`` and ``tuning.txt`` (with threshold selection), ``report.md`` and ``report.html``.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from simulator.validation.budget import budget_description
from simulator.validation.run import (
    PARETO,
    PLOT,
    REPORT_HTML,
    REPORT_MD,
    RESULTS,
    TABLE,
    TUNING_TABLE,
    Validation,
    ValidationResult,
)
from sloanalysis.files import atomic_write_text, atomic_write_with
from sloanalysis.formatting import render
from sloanalysis.rules.scoring import DEFAULT_SLI

__all__ = [
    "alert_rows",
    "detection_figure",
    "pareto_figure",
    "result_document",
    "tuning_table_rows",
    "write_outputs",
]


def result_document(r: ValidationResult) -> dict[str, Any]:
    v = r.validation
    return {
        "family": v.family.model_dump(mode="json"),
        "severity_parameter": v.family.severity_param or None,
        "scenario": v.scenario.name,
        "rules": v.rules_label,
        "replications": v.replications,
        "reused_replications": r.reused,
        "root_seed": v.root_seed,
        "evaluation_interval_ms": v.settings.interval_ms,
        "budget_slo": _budget_slo(v),
        "alerts": r.alerts,
        "tuning": None
        if v.tuning is None
        else {
            "alert": v.tuning.alert,
            "severity": v.tuning.severity,
            "max_fp_per_day": v.tuning.max_fp_per_day,
            "points": r.tuning,
        },
        "warnings": r.warnings,
    }


def _budget_slo(v: Validation) -> dict[str, Any]:
    """The SLO "budget before detection" is measured against, for the JSON."""
    b = DEFAULT_SLI if v.budget is None else v.budget
    return {
        "name": b.name,
        "objective": b.objective,
        "period_ms": b.period_ms,
        "default": v.budget is None,
        "description": budget_description(v.budget),
    }


def _never(value: Any, lo: Any, hi: Any, incidents: int) -> str:
    """A median detection time counting misses: None is "never" (with incidents to miss)."""
    if not incidents:
        return "-"
    text = "never" if value is None else f"{value:.3g}"
    if lo is None and hi is None:
        return text
    ends = ["never" if x is None else f"{x:.3g}" for x in (lo, hi)]
    return f"{text} [{ends[0]}, {ends[1]}]"


def _iv(value: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    text = f"{value:.{digits}g}"
    if lo is None or hi is None:
        return text
    return f"{text} [{lo:.{digits}g}, {hi:.{digits}g}]"


def _stat(s: dict[str, Any]) -> str:
    return _iv(s["value"], s["lo"], s["hi"])


def alert_rows(r: ValidationResult | dict[str, Any]) -> list[dict[str, Any]]:
    """One row per alert: detection probability, times, reset, budget, false positives (95 % CIs);
    of a result or of its document (``validation.json`` as read)."""
    rows = []
    for a in r["alerts"] if isinstance(r, dict) else r.alerts:
        d = a["detection"]
        rows.append(
            {
                "alert": a["alert"],
                "severity": a["severity"] or "-",
                "detected": f"{d['detected']}/{d['incidents']}",
                "P(detect)": _iv(d["p"], d["lo"], d["hi"]),
                "median s": _stat(a["detection_s_median"]),
                "P90 s": _stat(a["detection_s_p90"]),
                "median s, miss=never": _never(
                    **a["detection_s_median_with_misses"], incidents=d["incidents"]
                ),
                "reset s": _stat(a["reset_s_median"]),
                "budget": _stat(a["budget_before_detection_median"]),
                "FP/day": _iv(a["fp_per_day"], a["fp_per_day_lo"], a["fp_per_day_hi"]),
            }
        )
    return rows


def tuning_table_rows(r: ValidationResult | dict[str, Any]) -> list[dict[str, Any]]:
    """One row per grid point of threshold selection, of a result or of its document."""
    points = ((r.get("tuning") or {}).get("points") or []) if isinstance(r, dict) else r.tuning
    return [
        {
            "setting": t["setting"],
            "P(detect)": _iv(t["detection_p"], t["detection_p_lo"], t["detection_p_hi"]),
            "median s": _iv(t["detection_s_median"], t["detection_s_median_lo"], t["detection_s_median_hi"]),
            "median s, miss=never": _never(
                t["detection_s_with_misses"],
                t["detection_s_with_misses_lo"],
                t["detection_s_with_misses_hi"],
                incidents=1,
            ),
            "FP/day": _iv(t["fp_per_day"], t["fp_per_day_lo"], t["fp_per_day_hi"]),
            "feasible": "yes" if t["feasible"] else "no",
            "pareto": "yes" if t["pareto"] else "",
            "chosen": "<==" if t["chosen"] else "",
        }
        for t in points
    ]


def _severity_label(doc: dict[str, Any]) -> str:
    kind, param = doc["family"]["kind"], doc.get("severity_parameter")
    return f"{kind} severity ({param})" if param else f"{kind} (no severity)"


def _log_scale(doc: dict[str, Any]) -> bool:
    return (doc["family"].get("severity") or {}).get("log_uniform") is not None


def detection_figure(doc: dict[str, Any]) -> Any:
    """Detection probability against incident severity, one line and 95 % Wilson band per alert,
    from a validation document (:func:`result_document`, or ``validation.json`` as read)."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.add_subplot()
    log = _log_scale(doc)
    for n, a in enumerate(doc["alerts"]):
        bins = [b for b in a["by_severity"] if b["incidents"]]
        if not bins:
            continue
        if log:
            x = [math.sqrt(b["bin_lo"] * b["bin_hi"]) for b in bins]
        else:
            x = [(b["bin_lo"] + b["bin_hi"]) / 2 for b in bins]
        color = f"C{n % 10}"
        label = f"{a['alert']} ({a['severity']})" if a["severity"] else a["alert"]
        ax.plot(x, [b["p"] for b in bins], marker="o", color=color, label=label)
        ax.fill_between(x, [b["lo"] for b in bins], [b["hi"] for b in bins], color=color, alpha=0.15)
    if log:
        ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(_severity_label(doc))
    ax.set_ylabel("detection probability")
    ax.set_title(f"Detection probability, {doc['replications']} replications (95 % Wilson bands)")
    ax.grid(True, alpha=0.3)
    if doc["alerts"]:
        ax.legend(fontsize="small", loc="best")
    return fig


def pareto_figure(doc: dict[str, Any]) -> Any:
    """Median detection time counting misses as never (what selection ranks by) against false
    positives per day for every grid point of a validation document's ``tuning``, with 95 %
    bars. "Never" sits on a line at the top: a median of never is a triangle there (its bar from
    the low end up), an upper end of never a bar up to it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5.5), layout="constrained")
    ax = fig.add_subplot()
    tuning = doc.get("tuning") or {}
    rows = tuning.get("points") or []
    keys = ("detection_s_with_misses", "detection_s_with_misses_lo", "detection_s_with_misses_hi")
    finite = [r.get(k) for r in rows for k in keys if r.get(k) is not None]
    never = max(finite, default=60.0) * 1.15
    for row in rows:
        y, x = row["detection_s_with_misses"], row["fp_per_day"] or 0.0
        # .get: a validation.json of an earlier version has no ends of this median
        lo, hi = row.get("detection_s_with_misses_lo"), row.get("detection_s_with_misses_hi")
        at = never if y is None else y
        xerr = [[x - (row["fp_per_day_lo"] or 0.0)], [(row["fp_per_day_hi"] or x) - x]]
        yerr = [[at - (lo if lo is not None else at)], [(hi if hi is not None else never) - at]]
        color = "C3" if row["chosen"] else ("C0" if row["pareto"] else "0.6")
        ax.errorbar([x], [at], xerr=xerr, yerr=yerr, fmt="^" if y is None else "o", color=color, capsize=2)
        if row["pareto"] or row["chosen"]:
            ax.annotate(
                row["setting"], (x, at), fontsize="x-small", xytext=(4, 4), textcoords="offset points"
            )
    ax.axhline(never, color="0.3", linestyle=":", linewidth=1)
    ax.annotate("never", (0, never), xycoords=("axes fraction", "data"), xytext=(4, 3),
                textcoords="offset points", fontsize="small")  # fmt: skip
    if tuning.get("max_fp_per_day") is not None:
        ax.axvline(tuning["max_fp_per_day"], color="black", linestyle="-.", linewidth=1)
    ax.set_ylim(bottom=0, top=never * 1.08)
    ax.set_xlabel("false positives per day (95 % exact Poisson)")
    ax.set_ylabel("median detection time, a miss = never, s (95 % bootstrap)")
    ax.set_title("Threshold grid: Pareto front (blue), chosen (red), false-positive limit (dash-dot)")
    ax.grid(True, alpha=0.3)
    return fig


def _markdown(r: ValidationResult) -> str:
    v = r.validation
    fam = v.family
    lines = [
        f"# Alert validation: {fam.name}",
        "",
        f"{v.replications} replications of {fam.incidents} {fam.kind} incident(s) each "
        f"(scenario {v.scenario.name}, root seed {v.root_seed}); rules: {v.rules_label}.",
        "Intervals are 95 %: Wilson for detection probabilities, percentile bootstrap for times, "
        'exact Poisson for false positives per day over the quiet time. "miss=never" counts a '
        'missed incident as never detected: its median is "never" once half the incidents are '
        'missed, and its upper end "never" once more than 2.5 % of the bootstrap resamples are.',
        f"Budget before detection is measured against {budget_description(v.budget)}.",
        "",
        render(alert_rows(r), "table"),
        "",
        f"![detection probability]({PLOT})",
    ]
    if r.tuning and v.tuning is not None:
        chosen = next((t for t in r.tuning if t["chosen"]), None)
        lines += [
            "",
            f"## Threshold selection: {v.tuning.alert}",
            "",
            f"Fastest setting with false positives per day below {v.tuning.max_fp_per_day:g} at 95 % "
            f"confidence: {chosen['setting'] if chosen else 'none qualifies'}.",
            "",
            render(tuning_table_rows(r), "table"),
            "",
            f"![pareto front]({PARETO})",
        ]
    if r.warnings:
        lines += ["", "## Warnings", "", *(f"- {w}" for w in r.warnings)]
    return "\n".join(lines) + "\n"


def _html(markdown: str) -> str:
    """The Markdown page as HTML: tables kept as preformatted text, images embedded by name."""
    body = []
    for block in markdown.split("\n\n"):
        if block.startswith("# "):
            body.append(f"<h1>{html.escape(block[2:])}</h1>")
        elif block.startswith("## "):
            body.append(f"<h2>{html.escape(block[3:])}</h2>")
        elif block.startswith("!["):
            src = block[block.index("(") + 1 : block.rindex(")")]
            body.append(
                f'<p><img src="{html.escape(src)}" alt="{html.escape(src)}" style="max-width:100%"></p>'
            )
        elif block.startswith("- "):
            items = "".join(f"<li>{html.escape(x[2:])}</li>" for x in block.splitlines())
            body.append(f"<ul>{items}</ul>")
        elif "  " in block and "\n" in block:
            body.append(f"<pre>{html.escape(block)}</pre>")
        else:
            body.append(f"<p>{html.escape(block)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Alert validation</title>'
        "<style>body{font-family:sans-serif;max-width:72rem;margin:2rem auto}pre{font-size:0.85rem}</style>"
        "</head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_outputs(r: ValidationResult, *, plot: bool = True) -> list[Path]:
    """Write every output file into the validation directory; returns their paths."""
    out = r.out
    written = []
    for stale in (PARETO, TUNING_TABLE, PLOT):  # of an earlier run with other options
        (out / stale).unlink(missing_ok=True)

    def text(name: str, content: str) -> None:
        atomic_write_text(out / name, content)
        written.append(out / name)

    text(RESULTS, json.dumps(result_document(r), indent=2, allow_nan=False) + "\n")
    text(TABLE, render(alert_rows(r), "table") + "\n")
    if r.tuning:
        text(TUNING_TABLE, render(tuning_table_rows(r), "table") + "\n")
    if plot:
        doc = result_document(r)
        fig = detection_figure(doc)
        atomic_write_with(out / PLOT, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
        written.append(out / PLOT)
        if r.tuning:
            pfig = pareto_figure(doc)
            atomic_write_with(out / PARETO, lambda tmp: pfig.savefig(tmp, format="png", dpi=110))
            written.append(out / PARETO)
    md = _markdown(r)
    text(REPORT_MD, md)
    text(REPORT_HTML, _html(md))
    return written
