"""The project's own SLO format, ``version: sloanalysis/v1`` (objective as a ratio).

Example: ``slos/tron-payment.yaml``. Each entry has a rolling ``period`` or a calendar
``window`` (``{calendar: day|week|month|quarter|year, count: 1, time_zone: UTC, start: ...}``)
whose budget resets at every boundary in the zone (:mod:`sloanalysis.slo.calendar`); burn-rate
alert windows then use the unit's nominal length (a month: 30 days). Rules are generated in the
native style unless ``generate-rules --style`` says otherwise. A latency SLI with ``native: true``
reads a native histogram named ``histogram`` (:mod:`sloanalysis.slo.native_latency`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from sloanalysis.config import FieldError, validate
from sloanalysis.errors import UserError
from sloanalysis.slo.calendar import CalendarWindow
from sloanalysis.slo.formats.common import (
    AlertName,
    AlertPart,
    Closed,
    CounterQuery,
    Duration,
    Labels,
    MetricName,
    Name,
    NonNegativeDuration,
    Number,
    PromQL,
    Ratio,
    Text,
    WindowQuery,
    alerting_of,
    camel,
    check_promql,
    exactly_one,
    in_range,
    non_empty_list,
)
from sloanalysis.slo.spec import (
    DEFAULT_SLICE_MS,
    SLI,
    SLO,
    Alerting,
    EventsSLI,
    LatencySLI,
    RawSLI,
    SLOSpecError,
    ThresholdAlert,
    TimesliceSLI,
)

__all__ = ["OWN_VERSION", "parse_own"]


def _anchor(value: Any) -> Any:
    """``start`` as YAML gives it: a timestamp, a date (midnight) or an ISO 8601 string."""
    if isinstance(value, datetime) or value is None:
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected a date and time like '2026-01-01 00:00', got {value!r}") from None
    raise ValueError(f"expected a date and time like '2026-01-01 00:00', got {value!r}")


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be a positive integer, got {value!r}")
    return value


OWN_VERSION = "sloanalysis/v1"


class _OwnEvents(Closed):
    total: CounterQuery
    good: CounterQuery | None = None
    bad: CounterQuery | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _OwnEvents:
        exactly_one(self, ("good", "bad"))
        return self


class _OwnLatency(Closed):
    histogram: MetricName
    threshold: Duration
    matchers: str = ""
    quantile: Annotated[Number, AfterValidator(in_range(0.0, 1.0))] | None = None
    native: bool = False

    @model_validator(mode="after")
    def _check(self) -> _OwnLatency:
        if self.histogram.endswith(("_bucket", "_count", "_sum")):
            raise FieldError(("histogram",), "give the histogram's base name, without _bucket/_count/_sum")
        try:
            check_promql(self.sli().error_ratio_expr(300_000))
        except ValueError as exc:
            raise FieldError(("matchers",), str(exc)) from None
        return self

    def sli(self) -> LatencySLI:
        matchers = self.matchers.strip().strip("{}").strip()
        return LatencySLI(self.histogram, self.threshold / 1000.0, self.quantile, matchers, self.native)


class _OwnTimeslice(Closed):
    indicator: PromQL
    slice: Duration = DEFAULT_SLICE_MS
    missing: Literal["ignore", "bad", "good"] = "ignore"


class _OwnRaw(Closed):
    error_ratio: WindowQuery


class _OwnSLI(Closed):
    events: _OwnEvents | None = None
    latency: _OwnLatency | None = None
    timeslice: _OwnTimeslice | None = None
    raw: _OwnRaw | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _OwnSLI:
        exactly_one(self, ("events", "latency", "timeslice", "raw"))
        return self

    def build(self) -> SLI:
        if self.events is not None:
            return EventsSLI(total=self.events.total, good=self.events.good, bad=self.events.bad)
        if self.latency is not None:
            return self.latency.sli()
        if self.timeslice is not None:
            t = self.timeslice
            return TimesliceSLI(indicator=t.indicator.strip(), slice_ms=t.slice, missing=t.missing)
        assert self.raw is not None
        return RawSLI(error_ratio=self.raw.error_ratio)


class _OwnThreshold(Closed):
    sli_below: Number | None = None
    latency_above: Duration | None = None
    window: Duration = 300_000
    for_: NonNegativeDuration = Field(300_000, alias="for")

    @model_validator(mode="after")
    def _one_of(self) -> _OwnThreshold:
        exactly_one(self, ("sli_below", "latency_above"))
        return self

    def alert(self) -> ThresholdAlert:
        if self.sli_below is not None:
            return ThresholdAlert("sli_below", self.sli_below, self.window, self.for_)
        return ThresholdAlert("latency_above", (self.latency_above or 0) / 1000.0, self.window, self.for_)


class _OwnAlerting(Closed):
    name: AlertName | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    page: AlertPart | None = None
    ticket: AlertPart | None = None
    threshold: _OwnThreshold | None = None


class _OwnCalendar(Closed):
    """``window: {calendar: month, time_zone: Europe/Berlin}``: budgets reset at each boundary."""

    calendar: Literal["day", "week", "month", "quarter", "year"]
    count: Annotated[int, AfterValidator(_positive)] = 1
    time_zone: Text = "UTC"
    start: Annotated[datetime | None, BeforeValidator(_anchor)] = None

    @model_validator(mode="after")
    def _zone(self) -> _OwnCalendar:
        try:
            self.window()
        except UserError as exc:
            raise FieldError(("time_zone",), str(exc)) from None
        return self

    def window(self) -> CalendarWindow:
        return CalendarWindow(self.calendar, self.count, self.time_zone, self.start)


class _OwnEntry(Closed):
    name: Name
    objective: Ratio
    period: Duration | None = None
    window: _OwnCalendar | None = None
    sli: _OwnSLI
    description: str = ""
    labels: Labels = Field(default_factory=dict)
    alerting: _OwnAlerting | None = None

    @model_validator(mode="after")
    def _threshold_fits(self) -> _OwnEntry:
        """A period or a calendar window; a threshold alert below the objective, a latency one
        above the SLI's threshold."""
        exactly_one(self, ("period", "window"))
        t = self.alerting.threshold if self.alerting is not None else None
        if t is None:
            return self
        where = ("alerting", "threshold")
        if t.sli_below is not None and not 0.0 < t.sli_below < self.objective:
            raise FieldError(
                (*where, "sli_below"),
                f"must lie between 0 and the objective {self.objective!r}, got {t.sli_below!r}",
            )
        if t.latency_above is not None:
            latency = self.sli.latency
            if latency is None:
                raise FieldError((*where, "latency_above"), "latency_above needs a latency SLI")
            if t.latency_above <= latency.threshold:
                raise FieldError(
                    (*where, "latency_above"),
                    f"must exceed the SLI threshold {latency.threshold / 1000.0!r} s, "
                    f"got {t.latency_above / 1000.0!r} s",
                )
        return self


class _OwnFile(Closed):
    version: Literal["sloanalysis/v1"]
    service: Name
    slos: Annotated[list[_OwnEntry], AfterValidator(non_empty_list)]
    labels: Labels = Field(default_factory=dict)
    description: str = ""


def parse_own(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    doc = validate(_OwnFile, docs[0], source, SLOSpecError)
    out: list[SLO] = []
    for e in doc.slos:
        a = e.alerting or _OwnAlerting()
        alerting = alerting_of(
            a.name or camel(f"{doc.service}-{e.name}") + "BudgetBurn",
            a.labels,
            a.annotations,
            a.page,
            a.ticket,
            a.threshold.alert() if a.threshold is not None else None,
        )
        calendar = e.window.window() if e.window is not None else None
        period = calendar.nominal_ms if calendar is not None else int(e.period or 0)
        slo = _entry_slo(e, source, doc.service, doc.labels, e.objective, period, e.sli.build(), alerting)
        out.append(replace(slo, calendar=calendar, origin=OWN_VERSION))
    return out


def _entry_slo(
    entry: _OwnEntry,
    source: str,
    service: str,
    labels: dict[str, str],
    objective: float,
    period_ms: int,
    sli: SLI,
    alerting: Alerting,
) -> SLO:
    """An SLO from one entry of a file's list: the entry's description and labels over the file's."""
    return SLO(
        name=entry.name,
        service=service,
        objective=objective,
        period_ms=period_ms,
        sli=sli,
        alerting=alerting,
        description=entry.description,
        labels={**labels, **entry.labels},
        source=source,
    )
