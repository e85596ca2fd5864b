"""OpenSLO ``v1`` documents (``kind: SLO``, ``kind: SLI`` referenced by ``indicatorRef``).

``Service``, ``DataSource`` and alert objects are accepted and not used. ``ratioMetric`` with
``Occurrences`` is an events SLI; with ``Timeslices`` a time-slice SLI whose slice is good when
the ratio over ``timeSliceWindow`` reaches ``timeSliceTarget``; with ``RatioTimeslices`` a
time-slice SLI worth each slice's success ratio (their average is the SLI). ``thresholdMetric``
is a time-slice SLI (``query op bool value``); with ``Occurrences`` each evaluation every
``DEFAULT_SLICE_MS`` is one occurrence. An SLO with several objectives becomes one :class:`SLO`
per objective, named ``<name>-<displayName or index>``. Only Prometheus metric sources are
understood; anything else is an error naming the field, never a silent substitute.

Time windows: rolling (``isRolling: true`` or absent) take ``duration`` (``M``, ``Q``, ``Y``
read as 30, 90 and 365 days); calendar windows (``isRolling: false`` with ``calendar:
{startTime, timeZone}``) become a :class:`~sloanalysis.slo.calendar.CalendarWindow` whose
budget resets at each boundary; their burn-rate alert windows use the unit's nominal length.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from sloanalysis.config import FieldError, Loc, validate
from sloanalysis.errors import UserError
from sloanalysis.slo.calendar import CalendarWindow, calendar_window
from sloanalysis.slo.formats.common import (
    Closed,
    Duration,
    Fail,
    Labels,
    Name,
    Number,
    Percent,
    Ratio,
    Text,
    camel,
    check_promql,
    counter_template,
    duration_ms,
    exactly_one,
    in_range,
    is_rate,
    non_empty_list,
    window_template,
)
from sloanalysis.slo.spec import (
    DEFAULT_SLICE_MS,
    SLI,
    SLO,
    WINDOW_PLACEHOLDER,
    Alerting,
    EventsSLI,
    RawSLI,
    SLOSpecError,
    TimesliceSLI,
    render_window,
)

__all__ = ["OPENSLO_V1", "parse_openslo"]

OPENSLO_V1 = "openslo/v1"
_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


_OPENSLO_KINDS = (
    "SLO",
    "SLI",
    "Service",
    "DataSource",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
)


class _OpenSLOHeader(BaseModel):
    """What every OpenSLO document must say; the rest is read by the model of its kind."""

    model_config = ConfigDict(extra="allow", strict=True)
    apiVersion: Literal["openslo/v1"]
    kind: Literal[_OPENSLO_KINDS]  # type: ignore[valid-type]


class _Metadata(Closed):
    name: Name
    displayName: str | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Any = None


class _MetricSource(Closed):
    spec: dict[str, Any]
    type: str | None = None
    metricSourceRef: str | None = None

    @model_validator(mode="after")
    def _prometheus_query(self) -> _MetricSource:
        if self.type is not None and self.type.lower() != "prometheus":
            raise FieldError(("type",), f"only Prometheus metric sources are supported, got {self.type!r}")
        query = self.spec.get("query")
        if query is None:
            raise FieldError(("spec", "query"), "required field is missing")
        if not isinstance(query, str) or not query.strip():
            raise FieldError(("spec", "query"), f"expected a non-empty string, got {query!r}")
        return self

    @property
    def query(self) -> str:
        return str(self.spec["query"]).strip()


class _Query(Closed):
    metricSource: _MetricSource

    @property
    def query(self) -> str:
        return self.metricSource.query


def _templated(field: str, make: Callable[[str], str], query: str) -> str:
    """``make(query)``; its ValueError names ``field``."""
    try:
        return make(query)
    except ValueError as exc:
        raise FieldError((field,), str(exc)) from None


class _RatioMetric(Closed):
    counter: bool = True
    good: _Query | None = None
    bad: _Query | None = None
    total: _Query | None = None
    raw: _Query | None = None
    rawType: Literal["success", "failure"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> _RatioMetric:
        if self.raw is not None:
            if any(q is not None for q in (self.good, self.bad, self.total)):
                raise FieldError(("raw",), "raw cannot be combined with good, bad or total")
            if self.rawType is None:
                raise FieldError(("rawType",), "expected success or failure, got None")
        else:
            if self.total is None:
                raise FieldError(("total",), "required field is missing")
            exactly_one(self, ("good", "bad"))
        self.templates()  # query errors name the field
        return self

    def templates(self) -> dict[str, str]:
        """Window templates of the queries given (``raw``: the error ratio)."""
        if self.raw is not None:
            raw = self.raw.query
            if WINDOW_PLACEHOLDER.search(raw):
                raw = _templated("raw", window_template, raw)
            _templated("raw", check_promql, raw)
            return {"raw": raw if self.rawType == "failure" else f"1 - ({raw})"}
        make = counter_template if self.counter else window_template
        return {k: _templated(k, make, q.query) for k in ("good", "bad", "total") if (q := getattr(self, k))}


class _Indicator(Closed):
    """An SLI's ``spec``: a ratio or a threshold metric."""

    description: str | None = None
    ratioMetric: _RatioMetric | None = None
    thresholdMetric: _Query | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _Indicator:
        exactly_one(self, ("ratioMetric", "thresholdMetric"))
        if self.thresholdMetric is not None:
            _templated("thresholdMetric", check_promql, self.thresholdMetric.query)
        return self


class _InlineIndicator(Closed):
    spec: _Indicator
    metadata: Any = None
    apiVersion: Any = None
    kind: Any = None


class _Objective(Closed):
    target: Ratio | None = None
    targetPercent: Percent | None = None
    displayName: str | None = None
    op: Literal["lt", "lte", "gt", "gte"] | None = None
    value: Number | None = None
    timeSliceTarget: Annotated[Number, AfterValidator(in_range(0.0, 1.0, closed_high=True))] | None = None
    timeSliceWindow: Duration | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _Objective:
        exactly_one(self, ("target", "targetPercent"))
        return self

    @property
    def objective(self) -> float:
        return self.target if self.target is not None else float(self.targetPercent or 0.0)


def _time_as_text(value: Any) -> Any:
    """An unquoted ``2022-01-01 12:00:00`` is a YAML timestamp; Go reads it into the string field
    as written, so it is taken back as that text."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, date) else value


class _Calendar(Closed):
    startTime: Annotated[Text | None, BeforeValidator(_time_as_text)] = None
    timeZone: Text = "UTC"


class _TimeWindow(Closed):
    """Rolling (``isRolling`` true or absent): a duration; calendar (``isRolling: false``): a
    calendar duration (``1d``, ``1w``, ``1M``, ``1Q``, ``1Y``) with ``calendar.timeZone`` and
    ``calendar.startTime`` (the anchor of the periods, wall-clock time in the zone)."""

    duration: Text
    isRolling: bool | None = None
    calendar: _Calendar | None = None

    @model_validator(mode="after")
    def _shape(self) -> _TimeWindow:
        if self.isRolling is False:
            if self.calendar is None:
                raise FieldError(("calendar",), "required field is missing for isRolling: false")
            try:
                self.calendar_window()
            except UserError as exc:
                raise FieldError(("duration",), str(exc)) from None
            except ValueError as exc:
                raise FieldError(("calendar", "startTime"), str(exc)) from None
        else:
            if self.calendar is not None:
                raise FieldError(("calendar",), "a calendar is only read with isRolling: false")
            try:
                duration_ms(self.duration, openslo=True)
            except ValueError as exc:
                raise FieldError(("duration",), str(exc)) from None
        return self

    def calendar_window(self) -> CalendarWindow | None:
        if self.isRolling is not False or self.calendar is None:
            return None
        start = self.calendar.startTime
        anchor = datetime.fromisoformat(start.strip()) if start is not None else None
        return calendar_window(self.duration, self.calendar.timeZone, anchor)

    @property
    def period_ms(self) -> int:
        cal = self.calendar_window()
        return cal.nominal_ms if cal is not None else duration_ms(self.duration, openslo=True)


def _one_window(windows: list[_TimeWindow]) -> list[_TimeWindow]:
    if len(windows) != 1:
        raise ValueError("expected a list with exactly one time window")
    return windows


class _SLOSpec(Closed):
    budgetingMethod: Literal["Occurrences", "Timeslices", "RatioTimeslices"]
    objectives: Annotated[list[_Objective], AfterValidator(non_empty_list)]
    description: str = ""
    service: Name | None = None
    indicator: _InlineIndicator | None = None
    indicatorRef: Text | None = None
    timeWindow: Annotated[list[_TimeWindow], AfterValidator(_one_window)] | None = None
    alertPolicies: Any = None

    @model_validator(mode="after")
    def _one_of(self) -> _SLOSpec:
        exactly_one(self, ("indicator", "indicatorRef"))
        return self


class _SLODoc(Closed):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: _Metadata
    spec: _SLOSpec


class _SLIDoc(Closed):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLI"]
    metadata: _Metadata
    spec: _Indicator


def _slice_ms(o: _Objective, fail: Fail) -> int:
    if o.timeSliceWindow is None:
        fail("timeSliceWindow", "required field is missing for Timeslices")
    return o.timeSliceWindow


def _openslo_sli(ind: _Indicator, method: str, o: _Objective, fail: Fail) -> SLI:
    """The SLI of one objective: its threshold, budgeting method and time slices shape it."""
    if ind.thresholdMetric is not None:
        if o.op is None:
            fail("op", "thresholdMetric needs op lt, lte, gt or gte, got None")
        if o.value is None:
            fail("value", "required field is missing for a thresholdMetric")
        slice_ms = _slice_ms(o, fail) if method != "Occurrences" else DEFAULT_SLICE_MS
        indicator = f"({ind.thresholdMetric.query}) {_OPS[o.op]} bool {o.value!r}"
        return TimesliceSLI(indicator=indicator, slice_ms=slice_ms)
    ratio = ind.ratioMetric
    assert ratio is not None
    t = ratio.templates()
    if "raw" in t:
        if method == "Timeslices":
            return _ratio_timeslice(f"1 - ({t['raw']})", o, fail)
        if method == "RatioTimeslices":
            slice_ms = _slice_ms(o, fail)
            return TimesliceSLI(indicator=f"1 - ({render_window(t['raw'], slice_ms)})", slice_ms=slice_ms)
        return RawSLI(error_ratio=t["raw"])
    events = EventsSLI(total=t["total"], good=t.get("good"), bad=t.get("bad"), per_second=is_rate(t["total"]))
    if method == "Timeslices":
        slice_ms = _slice_ms(o, fail)
        good_ratio = f"1 - ({events.error_ratio_expr(slice_ms)})"
        return _ratio_timeslice(good_ratio, o, fail, traffic=events.total_expr(slice_ms))
    if method == "RatioTimeslices":
        # the average of the slices' success ratios; a slice without traffic has no ratio (0/0)
        slice_ms = _slice_ms(o, fail)
        return TimesliceSLI(indicator=f"1 - ({events.error_ratio_expr(slice_ms)})", slice_ms=slice_ms)
    return events


def _ratio_timeslice(good_ratio: str, o: _Objective, fail: Fail, traffic: str | None = None) -> TimesliceSLI:
    """Slice good when the ratio reaches ``timeSliceTarget``; slices without traffic have no value
    (``and on() (total > 0)``), so the missing-data policy, not ``NaN >= x`` (false), decides them."""
    if o.timeSliceTarget is None:
        fail("timeSliceTarget", "required field is missing for Timeslices")
    slice_ms = _slice_ms(o, fail)
    indicator = f"({render_window(good_ratio, slice_ms)}) >= bool {o.timeSliceTarget!r}"
    if traffic is not None:
        indicator = f"({indicator}) and on() (({traffic}) > 0)"
    return TimesliceSLI(indicator=indicator, slice_ms=slice_ms)


def _objective_suffix(o: _Objective, index: int) -> str:
    label = str(o.displayName or index)
    return "-" + (re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or str(index))


def _openslo_slos(
    doc: _SLODoc, loc: Loc, source: str, slis: dict[str, _Indicator], default_period_ms: int
) -> list[SLO]:
    """One SLO per objective of an OpenSLO ``kind: SLO`` document at ``loc``."""
    spec, name = doc.spec, doc.metadata.name
    if spec.indicator is not None:
        indicator = spec.indicator.spec
    else:
        ref = str(spec.indicatorRef)
        if ref not in slis:
            known = ", ".join(sorted(slis)) or "none"
            Fail(source, (*loc, "spec"))(
                "indicatorRef", f"no kind: SLI named {ref!r} in this file (SLIs: {known})"
            )
        indicator = slis[ref]
    window = spec.timeWindow[0] if spec.timeWindow else None
    period = window.period_ms if window is not None else default_period_ms
    calendar = window.calendar_window() if window is not None else None
    service = spec.service or name
    out: list[SLO] = []
    for i, o in enumerate(spec.objectives):
        fail = Fail(source, (*loc, "spec", "objectives", i))
        slo_name = name + (_objective_suffix(o, i) if len(spec.objectives) > 1 else "")
        out.append(
            SLO(
                name=slo_name,
                service=service,
                objective=o.objective,
                period_ms=period,
                sli=_openslo_sli(indicator, spec.budgetingMethod, o, fail),
                alerting=Alerting(name=camel(f"{service}-{slo_name}") + "BudgetBurn"),
                description=spec.description,
                labels=doc.metadata.labels,
                source=source,
                calendar=calendar,
                origin=OPENSLO_V1,
            )
        )
    return out


def parse_openslo(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    slis: dict[str, _Indicator] = {}
    slo_docs: list[tuple[_SLODoc, Loc]] = []
    for i, raw in enumerate(docs):
        loc: Loc = (f"document {i + 1}",)
        header = validate(_OpenSLOHeader, raw, source, SLOSpecError, prefix=loc)
        if header.kind == "SLI":
            sli = validate(_SLIDoc, raw, source, SLOSpecError, prefix=loc)
            if sli.metadata.name in slis:
                Fail(source, (*loc, "metadata"))("name", f"SLI {sli.metadata.name!r} defined twice")
            slis[sli.metadata.name] = sli.spec
        elif header.kind == "SLO":
            slo_docs.append((validate(_SLODoc, raw, source, SLOSpecError, prefix=loc), loc))
    if not slo_docs:
        raise SLOSpecError(f"{source}: no kind: SLO document")
    return [slo for doc, loc in slo_docs for slo in _openslo_slos(doc, loc, source, slis, default_period_ms)]
