"""CI gates: an SLO missed or without (enough) data, or an alert whose recall or precision falls
below a threshold, fails.

:func:`slo_checks` and :func:`alert_checks` turn the report's rows into :class:`Check` results
(passed, failed, skipped or n/a, with a one-line message); :func:`junit_xml` writes them as JUnit
XML (one ``testsuite`` per SLO file or rules file, one ``testcase`` per SLO or alert; skipped and
n/a as ``skipped``) and :func:`summary_markdown` as a short table for a CI job summary or a
pull-request comment.

SLO gates. No data is never a pass: an SLO whose state is ``no data`` or ``low coverage`` fails,
naming the span where its data is. Otherwise, by default (``gate_at="range"``) the gate fails when
the SLO was missed anywhere in the range: in any complete period, or in the worst rolling window
when the range is shorter than two periods (:mod:`sloanalysis.report.compliance`);
``gate_at="end"`` judges the window ending at the range's end only.

Alert gates. Without ground truth (no incidents given) precision and recall mean nothing: every
alert's gate is ``n/a``, never a failure. With ground truth, a measure that is undefined for an
alert (None: recall of an alert no incident expects, precision of one that never fired) is not
gated.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import pandas as pd

from sloanalysis.durations import format_duration_human
from sloanalysis.formatting import fmt_percent

__all__ = [
    "GATE_AT",
    "Check",
    "alert_checks",
    "alert_labels",
    "failed",
    "junit_xml",
    "no_ground_truth_note",
    "slo_checks",
    "summary_markdown",
]

Status = Literal["passed", "failed", "skipped", "n/a"]
GateAt = Literal["range", "end"]
GATE_AT: tuple[GateAt, ...] = ("range", "end")


@dataclass(frozen=True)
class Check:
    """One gate: ``suite`` groups checks (``slo`` or ``alerts:<rules file>``), ``name`` is the SLO
    or alert name."""

    suite: str
    name: str
    status: Status
    message: str
    value: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(x: float | None, digits: int = 4) -> str:
    return fmt_percent(x, digits)


def _time(ms: Any) -> str:
    return pd.Timestamp(int(ms), unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def _span(row: Mapping[str, Any]) -> str:
    lo, hi = row.get("data_start_ms"), row.get("data_end_ms")
    if lo is None or hi is None:
        return "its SLI's series have no sample at all"
    return f"its data spans {_time(lo)} to {_time(hi)}"


def _state(row: Mapping[str, Any]) -> str:
    state = row.get("state")
    if state is not None:
        return str(state)
    return "no data" if row.get("met") is None else ("met" if row["met"] else "missed")


def _end_check(suite: str, name: str, row: Mapping[str, Any], value: dict[str, Any]) -> Check:
    sli, objective = row.get("sli"), float(row["objective"])
    if row.get("met"):
        return Check(
            suite, name, "passed", f"SLO {name} met: SLI {_pct(sli, 6)} >= {_pct(objective, 6)}", value
        )
    return Check(
        suite,
        name,
        "failed",
        f"SLO {name} missed: SLI {_pct(sli, 6)} < objective {_pct(objective, 6)}, "
        f"budget left {_pct(row.get('budget_remaining_ratio'))}",
        value,
    )


def _range_check(suite: str, name: str, row: Mapping[str, Any], value: dict[str, Any]) -> Check | None:
    """The gate over the whole range from the row's ``compliance`` (None: the row has none)."""
    c = row.get("compliance")
    if not c or not c.get("worst"):
        return None
    worst, objective = c["worst"], float(row["objective"])
    where = f"{_time(worst['start_ms'])} to {_time(worst['end_ms'])}"
    period = format_duration_human(c["period_ms"])
    value = {**value, "worst_budget_remaining_ratio": worst["budget_remaining_ratio"], "worst_window": where}
    if c.get("calendar"):  # a calendar SLO: its periods by name
        where = worst.get("label") or where
        scope = f"in {c['missed']} of {c['windows']} calendar periods ({c['assessed']})"
        ok = f"in all {c['measured']} calendar periods with traffic ({c['assessed']})"
    elif c["method"] == "periods":
        scope = f"in {c['missed']} of {c['windows']} periods of {period}"
        ok = f"in all {c['measured']} periods of {period} with traffic"
    else:
        scope = f"over a rolling {period} window"
        ok = f"in every rolling {period} window"
    if c["missed"] or row.get("met") is False:
        return Check(
            suite,
            name,
            "failed",
            f"SLO {name} missed {scope} (worst {where}: SLI {_pct(worst['sli'], 6)} < objective "
            f"{_pct(objective, 6)}, budget left {_pct(worst['budget_remaining_ratio'])})",
            value,
        )
    return Check(
        suite,
        name,
        "passed",
        f"SLO {name} met {ok} (least budget left {_pct(worst['budget_remaining_ratio'])}, {where})",
        value,
    )


def slo_checks(
    rows: Iterable[Mapping[str, Any]], suite: str = "slo", *, gate_at: GateAt = "range"
) -> list[Check]:
    """One check per SLO row (``sloanalysis slo``'s columns, plus ``state``, ``coverage``, the data
    span and ``compliance`` where known): see the module's docstring."""
    if gate_at not in GATE_AT:
        raise ValueError(f"gate_at must be one of {GATE_AT}, got {gate_at!r}")
    out = []
    for row in rows:
        name = str(row["slo"])
        value = {
            k: row.get(k) for k in ("sli", "objective", "window_ms", "budget_remaining_ratio", "coverage")
        }
        state = _state(row)
        if state == "no data":
            out.append(
                Check(suite, name, "failed", f"SLO {name}: no data in its window ({_span(row)})", value)
            )
            continue
        if state == "low coverage":
            coverage = row.get("coverage")
            out.append(
                Check(
                    suite,
                    name,
                    "failed",
                    f"SLO {name}: low coverage, samples in {_pct(coverage, 3)} of its window ({_span(row)})",
                    value,
                )
            )
            continue
        check = _range_check(suite, name, row, value) if gate_at == "range" else None
        out.append(check or _end_check(suite, name, row, value))
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def alert_labels(names: Sequence[Any], severities: Sequence[Any] | None = None) -> list[str]:
    """Alerts for people: each name, with its severity where the name comes with more than one
    (``PayoutBurn (page)``, ``PayoutBurn (ticket)``: two alerts, scored apart)."""
    sev = [s if isinstance(s, str) and s else None for s in (severities or [None] * len(names))]
    shared = {n for n in names if sum(m == n for m in names) > 1}
    return [f"{n} ({s})" if n in shared and s else str(n) for n, s in zip(names, sev, strict=True)]


def no_ground_truth_note(path: str) -> str:
    """The one line said when a rules file's alerts cannot be scored."""
    return (
        f"Alert gates of `{path}` are n/a: no ground truth (no incidents given), so precision and "
        "recall are not measured; give `--incidents FILE` to score the alerts."
    )


def alert_checks(
    rows: Iterable[Mapping[str, Any]],
    suite: str,
    *,
    min_recall: float,
    min_precision: float,
    ground_truth: bool = True,
) -> list[Check]:
    """One check per alert score row (``alert`` or ``alertname``, optional ``severity``, ``recall``,
    ``precision``; NaN or None where undefined; scoring's ``(overall)`` row is skipped), named by
    :func:`alert_labels`.

    Without ``ground_truth`` every alert is ``n/a``. Recall is undefined for an alert that no
    incident expects, precision for one that never fired: an undefined measure is not gated; an
    alert with neither is ``n/a``."""
    out = []
    rows = list(rows)
    labels = alert_labels(
        [r.get("alert", r.get("alertname")) for r in rows], [r.get("severity") for r in rows]
    )
    for row, name in zip(rows, labels, strict=True):
        if name.startswith("("):  # scoring's "(overall)" row: a summary, not a policy of one alert
            continue
        recall, precision = _num(row.get("recall")), _num(row.get("precision"))
        value = {"recall": recall, "precision": precision}
        if not ground_truth:
            out.append(Check(suite, name, "n/a", f"alert {name}: n/a (no ground truth)", value))
            continue
        problems = []
        if recall is not None and recall < min_recall:
            problems.append(f"recall {_pct(recall, 3)} < {_pct(min_recall, 3)}")
        if precision is not None and precision < min_precision:
            problems.append(f"precision {_pct(precision, 3)} < {_pct(min_precision, 3)}")
        if problems:
            out.append(Check(suite, name, "failed", f"alert {name}: {', '.join(problems)}", value))
        elif recall is None and precision is None:
            out.append(
                Check(
                    suite, name, "n/a", f"alert {name}: n/a (never fired and no incident expects it)", value
                )
            )
        else:
            out.append(
                Check(
                    suite,
                    name,
                    "passed",
                    f"alert {name}: recall {_pct(recall, 3)}, precision {_pct(precision, 3)}",
                    value,
                )
            )
    return out


def failed(checks: Iterable[Check]) -> list[Check]:
    return [c for c in checks if c.status == "failed"]


def junit_xml(checks: Sequence[Check], *, name: str = "sloanalysis report", time_s: float = 0.0) -> str:
    """JUnit XML: ``testsuites`` > one ``testsuite`` per suite > one ``testcase`` per check, with a
    ``failure`` (message attribute and text) or ``skipped`` child where due."""
    root = ET.Element("testsuites", name=name, tests=str(len(checks)), failures=str(len(failed(checks))))
    root.set("errors", "0")
    root.set("time", f"{time_s:.3f}")
    suites: dict[str, list[Check]] = {}
    for c in checks:
        suites.setdefault(c.suite, []).append(c)
    for suite, cases in suites.items():
        el = ET.SubElement(
            root,
            "testsuite",
            name=suite,
            tests=str(len(cases)),
            failures=str(sum(c.status == "failed" for c in cases)),
            errors="0",
            skipped=str(sum(c.status in ("skipped", "n/a") for c in cases)),
            time="0.000",
        )
        for c in cases:
            case = ET.SubElement(el, "testcase", classname=suite, name=c.name, time="0.000")
            if c.status == "failed":
                ET.SubElement(case, "failure", message=c.message, type="GateFailure").text = c.message
            elif c.status in ("skipped", "n/a"):
                ET.SubElement(case, "skipped", message=c.message)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(esc(c) for c in row) + " |" for row in rows)
    return lines


_MARK = {"passed": "pass", "failed": "**FAIL**", "skipped": "skip", "n/a": "n/a", "none": "-"}


def summary_markdown(
    title: str,
    slo_table: Sequence[Mapping[str, str]],
    alert_tables: Mapping[str, Sequence[Mapping[str, str]]],
    checks: Sequence[Check],
    notes: Sequence[str] = (),
    compliance_table: Sequence[Mapping[str, str]] = (),
) -> str:
    """A short Markdown summary: verdict, notes, SLO table, compliance over the range, alert scores
    per rules file, failed gates."""
    bad = failed(checks)
    verdict = f"**{len(bad)} of {len(checks)} gates failed**" if bad else f"all {len(checks)} gates passed"
    lines = [f"## {title}", "", verdict, ""]
    lines.extend(notes)
    if notes:
        lines.append("")
    status = {(c.suite, c.name): c.status for c in checks}
    if slo_table:
        cols = list(slo_table[0])
        rows = [
            [str(r[c]) for c in cols] + [_MARK[status.get(("slo", r[cols[0]]), "skipped")]] for r in slo_table
        ]
        lines += ["### SLOs", "", *_md_table([*cols, "gate"], rows), ""]
    if compliance_table:
        cols = list(compliance_table[0])
        rows = [[str(r[c]) for c in cols] for r in compliance_table]
        lines += ["### Compliance over the range", "", *_md_table(cols, rows), ""]
    for path, table in alert_tables.items():
        if not table:
            continue
        cols = list(table[0])
        suite = f"alerts:{path}"
        rows = [[str(r[c]) for c in cols] + [_MARK[status.get((suite, r[cols[0]]), "none")]] for r in table]
        lines += [f"### Alerts: `{path}`", "", *_md_table([*cols, "gate"], rows), ""]
    if bad:
        lines += ["### Failed gates", ""]
        lines.extend(
            f"- {c.message}" + ("" if c.suite == "slo" else f" (`{c.suite.removeprefix('alerts:')}`)")
            for c in bad
        )
        lines.append("")
    return "\n".join(lines)
