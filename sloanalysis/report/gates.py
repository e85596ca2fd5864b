"""CI gates: an SLO missed, or an alert whose recall or precision falls below a threshold, fails.

:func:`slo_checks` and :func:`alert_checks` turn the report's rows into :class:`Check` results
(passed, failed or skipped, with a one-line message); :func:`junit_xml` writes them as JUnit XML
(one ``testsuite`` per SLO file or rules file, one ``testcase`` per SLO or alert) and
:func:`summary_markdown` as a short table for a CI job summary or a pull-request comment.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from sloanalysis.formatting import fmt_percent

__all__ = ["Check", "alert_checks", "failed", "junit_xml", "slo_checks", "summary_markdown"]

Status = Literal["passed", "failed", "skipped"]


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


def slo_checks(rows: Iterable[Mapping[str, Any]], suite: str = "slo") -> list[Check]:
    """One check per SLO row (``sloanalysis slo``'s columns): failed when missed, skipped without data."""
    out = []
    for row in rows:
        name, sli, objective = str(row["slo"]), row.get("sli"), float(row["objective"])
        value = {k: row.get(k) for k in ("sli", "objective", "window_ms", "budget_remaining_ratio")}
        if row.get("met") is None:
            out.append(Check(suite, name, "skipped", f"SLO {name}: no data in the window", value))
        elif row["met"]:
            out.append(
                Check(
                    suite,
                    name,
                    "passed",
                    f"SLO {name} met: SLI {_pct(sli, 6)} >= {_pct(objective, 6)}",
                    value,
                )
            )
        else:
            out.append(
                Check(
                    suite,
                    name,
                    "failed",
                    f"SLO {name} missed: SLI {_pct(sli, 6)} < objective {_pct(objective, 6)}, "
                    f"budget left {_pct(row.get('budget_remaining_ratio'))}",
                    value,
                )
            )
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def alert_checks(
    rows: Iterable[Mapping[str, Any]], suite: str, *, min_recall: float, min_precision: float
) -> list[Check]:
    """One check per alert score row (``alertname``, ``recall``, ``precision``; NaN or None where
    undefined; scoring's ``(overall)`` row is skipped).
    Recall is undefined for an alert that no incident expects, precision for one that
    never fired: an undefined measure is not gated; an alert with neither is skipped."""
    out = []
    for row in rows:
        name = str(row.get("alert", row.get("alertname")))
        if name.startswith("("):  # scoring's "(overall)" row: a summary, not a policy of one alert
            continue
        recall, precision = _num(row.get("recall")), _num(row.get("precision"))
        value = {"recall": recall, "precision": precision}
        problems = []
        if recall is not None and recall < min_recall:
            problems.append(f"recall {_pct(recall, 3)} < {_pct(min_recall, 3)}")
        if precision is not None and precision < min_precision:
            problems.append(f"precision {_pct(precision, 3)} < {_pct(min_precision, 3)}")
        if problems:
            out.append(Check(suite, name, "failed", f"alert {name}: {', '.join(problems)}", value))
        elif recall is None and precision is None:
            out.append(
                Check(suite, name, "skipped", f"alert {name}: never fired and no incident expects it", value)
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
            skipped=str(sum(c.status == "skipped" for c in cases)),
            time="0.000",
        )
        for c in cases:
            case = ET.SubElement(el, "testcase", classname=suite, name=c.name, time="0.000")
            if c.status == "failed":
                ET.SubElement(case, "failure", message=c.message, type="GateFailure").text = c.message
            elif c.status == "skipped":
                ET.SubElement(case, "skipped", message=c.message)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines.extend("| " + " | ".join(esc(c) for c in row) + " |" for row in rows)
    return lines


_MARK = {"passed": "pass", "failed": "**FAIL**", "skipped": "skip", "none": "-"}


def summary_markdown(
    title: str,
    slo_table: Sequence[Mapping[str, str]],
    alert_tables: Mapping[str, Sequence[Mapping[str, str]]],
    checks: Sequence[Check],
    notes: Sequence[str] = (),
) -> str:
    """A short Markdown summary: verdict, SLO table, alert scores per rules file, failed gates."""
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
