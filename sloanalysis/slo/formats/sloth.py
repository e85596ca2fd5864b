"""Sloth's SLO specs, read as Sloth reads them (slok/sloth ``internal/storage/io``).

- ``version: prometheus/v1``: service, labels, ``slos`` with ``events`` (``error_query`` and
  ``total_query``) or ``raw`` (``error_ratio_query``) SLIs; objective in percent.
- ``apiVersion: sloth.slok.dev/v1, kind: PrometheusServiceLevel`` (Kubernetes): the same under
  ``spec`` with camelCase keys (``errorQuery``, ``pageAlert`` ...).
- ``apiVersion: openslo/v1alpha, kind: SLO``: each objective with ``ratioMetrics`` (good/total,
  source ``prometheus`` or ``sloth``, ``queryType: promql``) becomes a raw SLI
  ``1 - (good / total)`` named ``<name>-<index>``, without alerts; ``timeWindows`` in days only.

Sloth states no period: ``default_period_ms`` (Sloth's ``--default-slo-period``, 30 days).
The alert name is required unless both the page and the ticket alert are disabled. Plugins
(``plugins``, ``slo_plugins``/``sloPlugins``, ``sli.plugin``) need Sloth's Go plugins and are
rejected with one line.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from sloanalysis.config import FieldError, validate
from sloanalysis.slo.formats.common import (
    AlertName,
    AlertPart,
    Closed,
    Labels,
    Name,
    Percent,
    Ratio,
    Text,
    alerting_of,
    check_promql,
    exactly_one,
    is_rate,
    non_empty,
    non_empty_list,
)
from sloanalysis.slo.spec import SLI, SLO, Alerting, EventsSLI, RawSLI, SLOSpecError

__all__ = [
    "K8S_VERSION",
    "OPENSLO_ALPHA",
    "PROMETHEUS_V1",
    "parse_sloth",
    "parse_sloth_k8s",
    "parse_sloth_openslo",
]

PROMETHEUS_V1 = "prometheus/v1"
K8S_VERSION = "sloth.slok.dev/v1"
OPENSLO_ALPHA = "openslo/v1alpha"
_DAY_MS = 86_400_000
_PLUGINS = "Sloth plugins are not supported (they need Sloth's Go plugins); remove them or use events or raw"


class _SlothModel(Closed):
    """Sloth decodes its YAML without strict field checks (and the Kubernetes API prunes unknown
    fields of its resources), so a field Sloth does not know is ignored here too, not an error."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


def _kept_as_written(query: str) -> str:
    """The query checked as Sloth checks it (it parses with ``{{.window}}`` set; the placeholder is
    optional) and kept as written: Sloth copies it verbatim, a YAML block's trailing newline too."""
    check_promql(non_empty(query))
    return query


SlothQuery = Annotated[str, AfterValidator(_kept_as_written)]


def _no_plugin(value: Any) -> Any:
    raise ValueError(_PLUGINS)


NoPlugin = Annotated[Any, AfterValidator(_no_plugin)]


class _Events(_SlothModel):
    error_query: SlothQuery
    total_query: SlothQuery


class _Raw(_SlothModel):
    error_ratio_query: SlothQuery


class _SLI(_SlothModel):
    events: _Events | None = None
    raw: _Raw | None = None
    plugin: NoPlugin = None

    @model_validator(mode="after")
    def _one_of(self) -> _SLI:
        exactly_one(self, ("events", "raw"))
        return self

    def build(self) -> SLI:
        if self.events is not None:
            ev = self.events
            return EventsSLI(total=ev.total_query, bad=ev.error_query, per_second=is_rate(ev.total_query))
        assert self.raw is not None
        return RawSLI(error_ratio=self.raw.error_ratio_query)


class _Alerting(_SlothModel):
    name: AlertName | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    page_alert: AlertPart | None = None
    ticket_alert: AlertPart | None = None

    @model_validator(mode="after")
    def _name_if_enabled(self) -> _Alerting:
        disabled = all(p is not None and p.disable for p in (self.page_alert, self.ticket_alert))
        if self.name is None and not disabled:
            raise FieldError(("name",), "required unless page_alert and ticket_alert are both disabled")
        return self

    def build(self) -> Alerting:
        return alerting_of(self.name or "", self.labels, self.annotations, self.page_alert, self.ticket_alert)


class _Entry(_SlothModel):
    name: Name
    objective: Percent
    sli: _SLI
    alerting: _Alerting | None = None
    description: str = ""
    labels: Labels = Field(default_factory=dict)
    plugins: NoPlugin = None

    @model_validator(mode="after")
    def _alerting_given(self) -> _Entry:
        if self.alerting is None:
            raise FieldError(("alerting", "name"), "required unless both alerts are disabled")
        return self


class _File(_SlothModel):
    version: Literal["prometheus/v1"]
    service: Name
    slos: Annotated[list[_Entry], AfterValidator(non_empty_list)]
    labels: Labels = Field(default_factory=dict)
    slo_plugins: NoPlugin = None

    @model_validator(mode="before")
    @classmethod
    def _plugins_first(cls, data: Any) -> Any:
        """A plugin chain changes how the rest is read (Sloth's VictoriaMetrics validator), so it is
        reported before anything else."""
        if isinstance(data, dict) and data.get("slo_plugins") is not None:
            raise FieldError(("slo_plugins",), _PLUGINS)
        return data


def _slos(
    service: str, labels: dict[str, str], entries: list[_Entry], source: str, origin: str, period: int
) -> list[SLO]:
    out = []
    for e in entries:
        assert e.alerting is not None
        out.append(
            SLO(
                name=e.name,
                service=service,
                objective=e.objective,
                period_ms=period,
                sli=e.sli.build(),
                alerting=e.alerting.build(),
                description=e.description,
                labels={**labels, **e.labels},
                source=source,
                origin=origin,
            )
        )
    return out


def parse_sloth(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    """``version: prometheus/v1`` (one document)."""
    doc = validate(_File, docs[0], source, SLOSpecError)
    return _slos(doc.service, doc.labels, doc.slos, source, PROMETHEUS_V1, default_period_ms)


# -- Kubernetes PrometheusServiceLevel --------------------------------------------------------


class _K8sEvents(_SlothModel):
    errorQuery: SlothQuery
    totalQuery: SlothQuery


class _K8sRaw(_SlothModel):
    errorRatioQuery: SlothQuery


class _K8sSLI(_SlothModel):
    events: _K8sEvents | None = None
    raw: _K8sRaw | None = None
    plugin: NoPlugin = None

    @model_validator(mode="after")
    def _one_of(self) -> _K8sSLI:
        exactly_one(self, ("events", "raw"))
        return self

    def as_sli(self) -> _SLI:
        if self.events is not None:
            return _SLI(
                events=_Events(error_query=self.events.errorQuery, total_query=self.events.totalQuery)
            )
        assert self.raw is not None
        return _SLI(raw=_Raw(error_ratio_query=self.raw.errorRatioQuery))


class _K8sAlerting(_SlothModel):
    name: AlertName | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    pageAlert: AlertPart | None = None
    ticketAlert: AlertPart | None = None

    @model_validator(mode="after")
    def _name_if_enabled(self) -> _K8sAlerting:
        disabled = all(p is not None and p.disable for p in (self.pageAlert, self.ticketAlert))
        if self.name is None and not disabled:
            raise FieldError(("name",), "required unless pageAlert and ticketAlert are both disabled")
        return self


class _K8sEntry(_SlothModel):
    name: Name
    objective: Percent
    sli: _K8sSLI
    alerting: _K8sAlerting | None = None
    description: str = ""
    labels: Labels = Field(default_factory=dict)
    plugins: NoPlugin = None

    def as_entry(self) -> _Entry:
        a = self.alerting
        if a is None:
            raise FieldError(("alerting", "name"), "required unless both alerts are disabled")
        alerting = _Alerting.model_construct(
            name=a.name,
            labels=a.labels,
            annotations=a.annotations,
            page_alert=a.pageAlert,
            ticket_alert=a.ticketAlert,
        )
        return _Entry.model_construct(
            name=self.name,
            objective=self.objective,
            sli=self.sli.as_sli(),
            alerting=alerting,
            description=self.description,
            labels=self.labels,
        )


class _K8sSpec(_SlothModel):
    service: Name
    slos: Annotated[list[_K8sEntry], AfterValidator(non_empty_list)]
    labels: Labels = Field(default_factory=dict)
    sloPlugins: NoPlugin = None

    @model_validator(mode="after")
    def _entries(self) -> _K8sSpec:
        for i, e in enumerate(self.slos):
            try:
                e.as_entry()
            except FieldError as exc:
                raise FieldError(("slos", i, *exc.loc), exc.message) from None
        return self


class _K8sMetadata(_SlothModel):
    model_config = ConfigDict(extra="allow", strict=True, frozen=True)
    name: Name


class _K8sFile(_SlothModel):
    apiVersion: Literal["sloth.slok.dev/v1"]
    kind: Literal["PrometheusServiceLevel"]
    metadata: _K8sMetadata
    spec: _K8sSpec


def parse_sloth_k8s(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    """``sloth.slok.dev/v1 PrometheusServiceLevel`` (one document)."""
    doc = validate(_K8sFile, docs[0], source, SLOSpecError)
    entries = [e.as_entry() for e in doc.spec.slos]
    return _slos(doc.spec.service, doc.spec.labels, entries, source, K8S_VERSION, default_period_ms)


# -- OpenSLO v1alpha as Sloth reads it --------------------------------------------------------


class _AlphaQuery(_SlothModel):
    source: Literal["prometheus", "sloth"]
    queryType: Literal["promql"]
    query: Text
    metadata: Any = None


class _AlphaRatio(_SlothModel):
    good: _AlphaQuery
    total: _AlphaQuery
    counter: bool | None = None


class _AlphaObjective(_SlothModel):
    ratioMetrics: _AlphaRatio | None = None
    target: Ratio
    displayName: str | None = None
    value: float | None = None
    op: str | None = None

    @model_validator(mode="after")
    def _ratio(self) -> _AlphaObjective:
        if self.ratioMetrics is None:
            raise FieldError(
                ("ratioMetrics",), "required field is missing (Sloth reads ratio objectives only)"
            )
        return self

    def error_ratio(self) -> str:
        """Sloth's raw template: ``1 - (good / total)`` laid out as Sloth writes it."""
        assert self.ratioMetrics is not None
        good, total = self.ratioMetrics.good.query, self.ratioMetrics.total.query
        return f"\n  1 - (\n    (\n      {good}\n    )\n    /\n    (\n      {total}\n    )\n  )\n"


class _AlphaWindow(_SlothModel):
    count: int
    unit: str
    isRolling: bool | None = None
    calendar: Any = None

    @model_validator(mode="after")
    def _days(self) -> _AlphaWindow:
        if self.unit.lower() != "day":
            raise FieldError(
                ("unit",), f"only days based time windows are supported (Sloth), got {self.unit!r}"
            )
        if self.count < 1:
            raise FieldError(("count",), f"must be positive, got {self.count!r}")
        return self


def _one_alpha_window(windows: list[_AlphaWindow]) -> list[_AlphaWindow]:
    if len(windows) > 1:
        raise ValueError("only 1 time window is supported")
    return windows


class _AlphaSpec(_SlothModel):
    service: Name
    objectives: Annotated[list[_AlphaObjective], AfterValidator(non_empty_list)]
    description: str = ""
    budgetingMethod: str | None = None
    timeWindows: Annotated[list[_AlphaWindow], AfterValidator(_one_alpha_window)] = Field(
        default_factory=list
    )
    indicator: Any = None


class _AlphaMetadata(_SlothModel):
    name: Name
    displayName: str | None = None
    labels: Any = None
    annotations: Any = None


class _AlphaFile(_SlothModel):
    apiVersion: Literal["openslo/v1alpha"]
    kind: Literal["SLO"]
    metadata: _AlphaMetadata
    spec: _AlphaSpec


def parse_sloth_openslo(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    """``openslo/v1alpha`` ``kind: SLO`` as Sloth maps it: one raw SLO per objective, no alerts."""
    doc = validate(_AlphaFile, docs[0], source, SLOSpecError)
    spec = doc.spec
    period = spec.timeWindows[0].count * _DAY_MS if spec.timeWindows else default_period_ms
    out = []
    for i, o in enumerate(spec.objectives):
        raw = o.error_ratio()
        try:
            check_promql(raw)
        except ValueError as exc:
            raise SLOSpecError(f"{source}: spec.objectives[{i}].ratioMetrics: {exc}") from None
        slo = SLO(
            name=f"{doc.metadata.name}-{i}",
            service=spec.service,
            objective=o.target,
            period_ms=period,
            sli=RawSLI(error_ratio=raw),
            alerting=Alerting(name="", page=False, ticket=False),
            description=spec.description,
            source=source,
            origin=OPENSLO_ALPHA,
        )
        out.append(slo)
    return out
