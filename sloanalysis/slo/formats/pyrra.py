"""Pyrra's ``pyrra.dev/v1alpha1 ServiceLevelObjective``, read as Pyrra reads it (pyrra-dev/pyrra
``kubernetes/api/v1alpha1`` and ``slo/rules.go``).

``spec.target`` is a percent string, ``spec.window`` a Prometheus duration. Indicators:

- ``ratio``: ``errors`` and ``total`` counter selectors; error ratio
  ``sum by (grouping) (rate(errors[w])) / sum by (grouping) (rate(total[w]))``;
- ``latency``: ``success`` (a ``_bucket`` selector with ``le``) and ``total`` (``_count``);
  error ratio ``(total - success) / total`` over rates;
- ``latencyNative``: a native histogram ``total`` and a ``latency`` threshold; the good events
  are ``histogram_fraction(0, latency, ...)`` of ``histogram_count`` (needs native histograms
  in the data);
- ``boolGauge``: a 0/1 gauge; error ratio ``(count_over_time - sum_over_time) / count_over_time``.

``grouping`` makes one SLI series per label value. The SLO's labels are Pyrra's rule labels: the
``pyrra.dev/``-prefixed metadata labels (prefix removed) and the total selector's equality
matchers (those grouped by left out). ``alerting.disabled`` or ``alerting.burnrates: false``
turns the burn-rate alerts off; ``alerting.name`` renames them (default ``ErrorBudgetBurn``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import promql_parser
from pydantic import ConfigDict, Field, model_validator

from sloanalysis.config import FieldError, validate
from sloanalysis.durations import parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.slo.formats.common import AlertName, Closed, Name, Text, exactly_one
from sloanalysis.slo.spec import SLI, SLO, Alerting, EventsSLI, SLOSpecError

__all__ = ["PYRRA_VERSION", "parse_pyrra"]

PYRRA_VERSION = "pyrra.dev/v1alpha1"
_PROPAGATION_PREFIX = "pyrra.dev/"
_WINDOW = "{{.window}}"


def _selector(text: str) -> promql_parser.VectorSelector:
    try:
        expr = promql_parser.parse(text.strip())
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid PromQL selector {text!r}: {str(exc).splitlines()[0]}") from None
    if not isinstance(expr, promql_parser.VectorSelector) or not expr.name:
        raise ValueError(f'expected a metric selector like name{{label="value"}}, got {text!r}')
    return expr


class _Metric(Closed):
    metric: Text

    @model_validator(mode="after")
    def _parses(self) -> _Metric:
        try:
            _selector(self.metric)
        except ValueError as exc:
            raise FieldError(("metric",), str(exc)) from None
        return self

    @property
    def selector(self) -> promql_parser.VectorSelector:
        return _selector(self.metric)

    def rate(self, by: str, fn: str = "rate") -> str:
        return f"sum{by}({fn}({self.metric.strip()}[{_WINDOW}]))"


class _Ratio(Closed):
    errors: _Metric
    total: _Metric
    grouping: list[str] = Field(default_factory=list)


class _Latency(Closed):
    success: _Metric
    total: _Metric
    grouping: list[str] = Field(default_factory=list)


class _LatencyNative(Closed):
    latency: Text
    total: _Metric
    grouping: list[str] = Field(default_factory=list)


class _BoolGauge(_Metric):
    grouping: list[str] = Field(default_factory=list)


class _Indicator(Closed):
    ratio: _Ratio | None = None
    latency: _Latency | None = None
    latencyNative: _LatencyNative | None = None
    boolGauge: _BoolGauge | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _Indicator:
        exactly_one(self, ("ratio", "latency", "latencyNative", "boolGauge"))
        return self


class _Alerting(Closed):
    disabled: bool = False
    name: AlertName | None = None
    burnrates: bool = True
    absent: bool = True


class _Spec(Closed):
    target: Text
    window: Text
    indicator: _Indicator
    description: str = ""
    alerting: _Alerting | None = None
    performanceOverAccuracy: bool = False

    @model_validator(mode="after")
    def _numbers(self) -> _Spec:
        try:
            target = float(self.target)
        except ValueError:
            raise FieldError(("target",), f'expected a percent such as "99.9", got {self.target!r}') from None
        if not math.isfinite(target) or not 0.0 < target < 100.0:
            raise FieldError(("target",), f"objective must lie in (0, 100) exclusive, got {self.target!r}")
        try:
            if parse_duration_ms(self.window) <= 0:
                raise UserError("not positive")
        except UserError:
            raise FieldError(
                ("window",), f"expected a duration like '28d' or '2w', got {self.window!r}"
            ) from None
        return self


class _Metadata(Closed):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)


class _File(Closed):
    apiVersion: Literal["pyrra.dev/v1alpha1"]
    kind: Literal["ServiceLevelObjective"]
    metadata: _Metadata
    spec: _Spec
    status: Any = None


def _by(grouping: list[str]) -> str:
    return f" by ({', '.join(grouping)}) " if grouping else ""


def _sli(ind: _Indicator) -> tuple[SLI, _Metric, list[str]]:
    """The SLI, the total metric (its name prefixes Pyrra's recording rules) and the grouping."""
    if ind.ratio is not None:
        r = ind.ratio
        by = _by(r.grouping)
        return EventsSLI(total=r.total.rate(by), bad=r.errors.rate(by)), r.total, r.grouping
    if ind.latency is not None:
        lat = ind.latency
        by = _by(lat.grouping)
        return EventsSLI(total=lat.total.rate(by), good=lat.success.rate(by)), lat.total, lat.grouping
    if ind.latencyNative is not None:
        n = ind.latencyNative
        seconds = parse_duration_ms(n.latency) / 1000.0
        by = _by(n.grouping)
        hist = f"sum{by}(rate({n.total.metric.strip()}[{_WINDOW}]))"
        good = f"histogram_fraction(0, {seconds!r}, {hist}) * histogram_count({hist})"
        return EventsSLI(total=f"histogram_count({hist})", good=good), n.total, n.grouping
    g = ind.boolGauge
    assert g is not None
    by = _by(g.grouping)
    total, good = g.rate(by, "count_over_time"), g.rate(by, "sum_over_time")
    return EventsSLI(total=total, good=good, per_second=False), g, g.grouping


def _selectors(ind: _Indicator) -> dict[str, str]:
    """The indicator's selectors by role (:attr:`SLO.selectors`)."""
    if ind.ratio is not None:
        return {"total": ind.ratio.total.metric.strip(), "errors": ind.ratio.errors.metric.strip()}
    if ind.latency is not None:
        return {"total": ind.latency.total.metric.strip(), "success": ind.latency.success.metric.strip()}
    if ind.latencyNative is not None:
        n = ind.latencyNative
        return {"native": n.total.metric.strip(), "latency": repr(parse_duration_ms(n.latency) / 1000.0)}
    assert ind.boolGauge is not None
    return {"gauge": ind.boolGauge.metric.strip()}


def _rule_labels(doc: _File, total: _Metric, grouping: list[str]) -> dict[str, str]:
    labels = {
        k[len(_PROPAGATION_PREFIX) :]: v
        for k, v in doc.metadata.labels.items()
        if k.startswith(_PROPAGATION_PREFIX)
    }
    for m in total.selector.matchers.matchers:
        if str(m.op) in ("MatchOp.Equal", "=") and m.name not in grouping and m.name != "__name__":
            labels[m.name] = m.value
    return labels


def record_prefix(metric_name: str) -> str:
    """Pyrra's ``BurnrateName`` prefix: the metric without ``_total`` then ``_count``."""
    return metric_name.removesuffix("_total").removesuffix("_count")


def parse_pyrra(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    """One ``ServiceLevelObjective`` document."""
    doc = validate(_File, docs[0], source, SLOSpecError)
    spec = doc.spec
    try:
        sli, total, grouping = _sli(spec.indicator)
    except (ValueError, UserError) as exc:
        raise SLOSpecError(f"{source}: spec.indicator: {exc}") from None
    alerting = spec.alerting or _Alerting()
    on = not alerting.disabled and alerting.burnrates
    return [
        SLO(
            name=doc.metadata.name,
            service=str((doc.metadata.model_extra or {}).get("namespace") or doc.metadata.name),
            objective=float(spec.target) / 100.0,
            period_ms=parse_duration_ms(spec.window),
            sli=sli,
            alerting=Alerting(name=alerting.name or "ErrorBudgetBurn", page=on, ticket=on),
            description=spec.description,
            labels=_rule_labels(doc, total, grouping),
            source=source,
            origin=PYRRA_VERSION,
            grouping=tuple(grouping),
            record_prefix=record_prefix(str(total.selector.name)),
            selectors={**_selectors(spec.indicator), **({} if alerting.absent else {"absent": "false"})},
        )
    ]
