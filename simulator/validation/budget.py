"""What "budget consumed before detection" is measured against in an alert validation.

By default the backtest's availability SLI (99.9 % over 30 days, over the availability counters);
with ``--slos FILE`` the user's SLO (``--slo NAME``, default the first), checked before any work
against what the replications' series hold: every metric its SLI reads must be exported (the
``error_step`` kind holds only the availability counters and ``up``; a simulated replication the
simulator's metric catalog), and an equality matcher on ``job`` or ``instance`` must name the
scenario's target, or the budget would silently read as zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from simulator.scenario import Scenario
from simulator.validation.family import ERROR_STEP, IncidentFamily
from sloanalysis.errors import UserError
from sloanalysis.rules.scoring import DEFAULT_SLI, BudgetSLI, budget_sli_from_slos

__all__ = ["STEP_METRICS", "budget_description", "budget_sli", "exported_metrics"]

STEP_METRICS = frozenset({"slo_total_requests_total", "slo_successful_requests_total", "up"})
"""The series of an ``error_step`` replication (:func:`simulator.validation.replication.step_store`)."""

_CHECK_WINDOW_MS = 3_600_000  # any window: the metrics an SLI reads do not depend on it


def exported_metrics(family: IncidentFamily) -> frozenset[str]:
    """The metric names a replication of ``family`` holds."""
    if family.kind == ERROR_STEP:
        return STEP_METRICS
    from simulator.catalog import metric_catalog

    families = metric_catalog()["families"]
    return frozenset(s["name"] for f in families for s in f["samples"]) | {f["name"] for f in families}


def _check(sli: BudgetSLI, family: IncidentFamily, scenario: Scenario, where: str) -> None:
    from sloanalysis._go import match_op
    from sloanalysis.promql.parse import PromQLError, parse
    from sloanalysis.promql.walk import metric_names, selectors

    try:
        node = parse(sli.error_ratio_expr(_CHECK_WINDOW_MS))
    except PromQLError as exc:
        raise UserError(f"--slos {where}: SLO {sli.name}: its SLI does not parse: {exc}") from None
    missing = sorted(metric_names(node) - exported_metrics(family))
    if missing:
        source = "the error_step kind" if family.kind == ERROR_STEP else "the simulator (tronsim catalog)"
        raise UserError(
            f"--slos {where}: SLO {sli.name}: its SLI reads {', '.join(missing)}, which {source} "
            f"does not export"
        )
    target = {"job": scenario.job, "instance": scenario.instance}
    for vs in selectors(node):
        for m in vs.matchers.matchers:
            if m.name in target and match_op(m.op) == "=" and m.value != target[m.name]:
                raise UserError(
                    f"--slos {where}: SLO {sli.name}: its SLI selects {m.name}={m.value!r}, but the "
                    f"scenario's target is {m.name}={target[m.name]!r}"
                )


def budget_sli(
    paths: Sequence[str | Path] | None,
    name: str | None,
    family: IncidentFamily,
    scenario: Scenario,
) -> BudgetSLI | None:
    """The SLO of ``paths`` named ``name`` (default the first) as the budget measure, checked
    against what the replications export; None without ``paths`` (the default SLI)."""
    from sloanalysis.slo.formats import load_slo_files

    if not paths:
        if name is not None:
            raise UserError("--slo: needs --slos FILE")
        return None
    where = ", ".join(str(p) for p in paths)
    sli = budget_sli_from_slos(load_slo_files(list(paths)), name, where=where)
    _check(sli, family, scenario, where)
    return sli


def budget_description(sli: BudgetSLI | None) -> str:
    """One line naming the SLO the budget is measured against."""
    b = DEFAULT_SLI if sli is None else sli
    period_days = b.period_ms / 86_400_000
    text = f"{b.name}: objective {b.objective * 100:.6g} % over {period_days:g} d"
    return text + (" (the default; --slos FILE sets another)" if sli is None else "")
