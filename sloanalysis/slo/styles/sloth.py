"""Rules exactly as Sloth generates them (slok/sloth ``internal/alert``, ``internal/prometheus``).

Windows come from Sloth's catalog (``internal/alert/windows/google-{28d,30d}.yaml``): the
windows stay 5m/1h, 30m/6h, 2h/1d, 6h/3d and the factors follow the period:
``factor = budget_percent * period_hours / 100 / long_hours`` (30 days: 14.4, 6, 3, 1; 28 days:
13.44, 5.6, 2.8, 0.93). Sloth has no catalog for other periods, and neither has this style.

Per SLO three groups, as Sloth names them: ``sloth-slo-sli-recordings-<id>`` with
``slo:sli_error:ratio_rate<w>`` for every window and the period -- the period one the average
of the 5-minute ratios (``sum_over_time / count_over_time``, Sloth's "optimized" SLI), not a
request-weighted ratio; ``sloth-slo-meta-recordings-<id>`` with the objective, the budget, the
period, the current and period burn rates, the budget remaining and ``sloth_slo_info``; and
``sloth-slo-alerts-<id>`` with the page and ticket alerts (``max(...) without (sloth_window)``).
Labels ``sloth_id``, ``sloth_service``, ``sloth_slo``, ``sloth_window``, ``sloth_severity``.
Numbers are written as Go's ``%g``/``%v`` write them, so the text equals Sloth's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sloanalysis.durations import format_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.slo.spec import SLO, EventsSLI, RawSLI, render_window

__all__ = ["SLOTH_CATALOG", "SlothWindow", "sloth_groups", "sloth_windows"]

_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

# (severity, speed, budget percent, short, long) of google-30d.yaml and google-28d.yaml (identical
# apart from the period).
_GOOGLE = (
    ("page", "quick", 2.0, 5 * _MINUTE, _HOUR),
    ("page", "slow", 5.0, 30 * _MINUTE, 6 * _HOUR),
    ("ticket", "quick", 10.0, 2 * _HOUR, _DAY),
    ("ticket", "slow", 10.0, 6 * _HOUR, 3 * _DAY),
)
SLOTH_CATALOG: dict[int, tuple[tuple[str, str, float, int, int], ...]] = {
    30 * _DAY: _GOOGLE,
    28 * _DAY: _GOOGLE,
}
"""Sloth's built-in alert windows by period (milliseconds)."""

SLOTH_VERSION = "sloanalysis"
_MODES = {
    "prometheus/v1": "cli-gen-prom",
    "sloth.slok.dev/v1": "cli-gen-k8s",
    "openslo/v1alpha": "cli-gen-openslo",
}


@dataclass(frozen=True)
class SlothWindow:
    severity: str
    speed: str
    budget_percent: float
    short_ms: int
    long_ms: int
    factor: float


def sloth_windows(period_ms: int) -> list[SlothWindow]:
    """Sloth's windows for ``period_ms``; UserError when Sloth has no catalog for it."""
    catalog = SLOTH_CATALOG.get(period_ms)
    if catalog is None:
        known = ", ".join(format_duration_ms(p) for p in sorted(SLOTH_CATALOG))
        raise UserError(
            f"Sloth has no alert windows for the period {format_duration_ms(period_ms)} (known: {known});"
            " use --style native or pyrra"
        )
    hours = period_ms / _HOUR
    return [
        SlothWindow(sev, speed, pct, short, long, pct * hours / 100 / (long / _HOUR))
        for sev, speed, pct, short, long in catalog
    ]


def go_float(x: float) -> str:
    """A float64 as Go's ``%g``/``%v`` prints it (shortest digits; integers without ``.0``)."""
    if x == int(x) and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def _percent(slo: SLO) -> float:
    """The objective in percent as the spec wrote it (99.9, not 99.90000000000001)."""
    return float(f"{slo.objective * 100:.12g}")


def _id_labels(slo: SLO) -> dict[str, str]:
    return {"sloth_id": slo.id, "sloth_service": slo.service, "sloth_slo": slo.name}


def _filter(slo: SLO) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(_id_labels(slo).items())) + "}"


def _record(window_ms: int) -> str:
    return f"slo:sli_error:ratio_rate{format_duration_ms(window_ms)}"


def _sli_expr(slo: SLO, window_ms: int) -> str:
    sli = slo.sli
    if isinstance(sli, EventsSLI) and sli.bad is not None:
        return f"({render_window(sli.bad, window_ms)})\n/\n({render_window(sli.total, window_ms)})\n"
    if isinstance(sli, RawSLI):
        return f"({render_window(sli.error_ratio, window_ms)})"
    return slo.error_ratio_expr(window_ms)


def _sorted(labels: dict[str, str]) -> dict[str, str]:
    return dict(sorted(labels.items()))


def _sli_group(slo: SLO, windows: list[SlothWindow]) -> dict[str, Any]:
    ws = sorted({w.short_ms for w in windows} | {w.long_ms for w in windows})
    rules = []
    for w in ws:
        labels = {**_id_labels(slo), "sloth_window": format_duration_ms(w), **slo.labels}
        rules.append({"record": _record(w), "expr": _sli_expr(slo, w), "labels": _sorted(labels)})
    shortest, period = _record(windows[0].short_ms), format_duration_ms(slo.period_ms)
    f = _filter(slo)
    rules.append(
        {
            "record": _record(slo.period_ms),
            "expr": f"sum_over_time({shortest}{f}[{period}])\n/ ignoring (sloth_window)\n"
            f"count_over_time({shortest}{f}[{period}])\n",
            "labels": _sorted({**_id_labels(slo), "sloth_window": period, **slo.labels}),
        }
    )
    return {"name": f"sloth-slo-sli-recordings-{slo.id}", "rules": rules}


def _burn(metric: str, f: str) -> str:
    return f"{metric}{f}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{f}\n"


def _meta_group(slo: SLO, windows: list[SlothWindow]) -> dict[str, Any]:
    labels = _sorted({**_id_labels(slo), **slo.labels})
    ratio, f = _percent(slo) / 100, _filter(slo)
    info = {
        **labels,
        "sloth_version": SLOTH_VERSION,
        "sloth_mode": _MODES.get(slo.origin, "cli-gen-prom"),
        "sloth_spec": slo.origin if slo.origin in _MODES else "prometheus/v1",
        "sloth_objective": go_float(_percent(slo)),
    }
    exprs = [
        ("slo:objective:ratio", f"vector({go_float(ratio)})"),
        ("slo:error_budget:ratio", f"vector(1-{go_float(ratio)})"),
        ("slo:time_period:days", f"vector({go_float(slo.period_ms / _DAY)})"),
        ("slo:current_burn_rate:ratio", _burn(_record(windows[0].short_ms), f)),
        ("slo:period_burn_rate:ratio", _burn(_record(slo.period_ms), f)),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{f}"),
    ]
    rules = [{"record": r, "expr": e, "labels": labels} for r, e in exprs]
    rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": _sorted(info)})
    return {"name": f"sloth-slo-meta-recordings-{slo.id}", "rules": rules}


def _pair(slo: SLO, w: SlothWindow, budget: str) -> str:
    f, thr = _filter(slo), f"({go_float(w.factor)} * {budget})"
    return (
        f"    max({_record(w.short_ms)}{f} > {thr}) without (sloth_window)\n    and\n"
        f"    max({_record(w.long_ms)}{f} > {thr}) without (sloth_window)\n"
    )


def _alert(slo: SLO, severity: str, quick: SlothWindow, slow: SlothWindow) -> dict[str, Any]:
    a = slo.alerting
    budget = go_float((100 - _percent(slo)) / 100)
    expr = f"(\n{_pair(slo, quick, budget)})\nor\n(\n{_pair(slo, slow, budget)})\n"
    extra_labels = a.page_labels if severity == "page" else a.ticket_labels
    extra_ann = a.page_annotations if severity == "page" else a.ticket_annotations
    annotations = {
        "title": f"({severity}) {{{{$labels.sloth_service}}}} {{{{$labels.sloth_slo}}}} SLO error budget"
        " burn rate is too fast.",
        "summary": "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate"
        " is over expected.",
        **a.annotations,
        **extra_ann,
    }
    labels = {"sloth_severity": severity, **a.labels, **extra_labels}
    return {"alert": a.name, "expr": expr, "labels": _sorted(labels), "annotations": _sorted(annotations)}


def sloth_groups(slo: SLO) -> list[dict[str, Any]]:
    """The three rule groups Sloth generates for ``slo``."""
    windows = sloth_windows(slo.period_ms)
    by = {(w.severity, w.speed): w for w in windows}
    alerts = []
    if slo.alerting.page:
        alerts.append(_alert(slo, "page", by["page", "quick"], by["page", "slow"]))
    if slo.alerting.ticket:
        alerts.append(_alert(slo, "ticket", by["ticket", "quick"], by["ticket", "slow"]))
    groups = [_sli_group(slo, windows), _meta_group(slo, windows)]
    if alerts:
        groups.append({"name": f"sloth-slo-alerts-{slo.id}", "rules": alerts})
    return groups
