"""SLO specifications: the project's YAML format, Sloth ``prometheus/v1`` and OpenSLO ``v1``.

Every format is loaded into one normalised :class:`SLO`: a name, an objective in (0, 1), a
period (int milliseconds), an SLI and its alerting settings. Errors a user can cause raise
:class:`~sloanalysis.errors.UserError` with one line naming the file and the field.

SLI kinds (``SLO.sli``):

- :class:`EventsSLI` -- good/total or bad/total events. Queries are PromQL templates with a
  ``{{.window}}`` placeholder (Sloth's convention); a plain counter selector ``m{...}`` or
  ``sum [by (...)] (m{...})`` is accepted too and becomes ``sum(rate(m{...}[{{.window}}]))``.
- :class:`LatencySLI` -- "a quantile of the latency stays below a threshold" as an event ratio
  over a histogram: the good events are the observations in the bucket ``le=threshold``, the
  total is ``_count``. ``P95 < 2 s`` over a period holds exactly when at least 95 % of the
  requests of the period took at most 2 s, so the objective of a latency SLO is the quantile
  (0.95) and its error budget is the 5 % of requests allowed to be slower. The threshold must be
  a bucket boundary. Bucket labels are matched as ``2`` or ``2.0`` (client_python writes
  ``2.0``; Prometheus 3 normalises it to ``2``).
- :class:`TimesliceSLI` -- an indicator expression worth 1 in a good slice and 0 in a bad one
  (values in between count as that fraction of the slice), evaluated every ``slice``. The budget
  is time: the bad slices' minutes. ``missing`` says what a slice without data is (``ignore``:
  neither good nor bad, the default; ``bad``; ``good``).
- :class:`RawSLI` -- an error ratio already computed elsewhere (Sloth ``raw``, OpenSLO ``raw``);
  its budget is time-weighted, like a time slice.

Formats, told apart by their version key:

- ``version: sloanalysis/v1`` (this project's, objective as a ratio, ``slos/tron-payment.yaml``),
- ``version: prometheus/v1`` (Sloth: objective in percent, ``events`` or ``raw`` SLI, period
  not part of the format: ``default_period``, 30 days unless told),
- ``apiVersion: openslo/v1`` documents (``kind: SLO``, ``kind: SLI`` referenced by
  ``indicatorRef``; ``Service``, ``DataSource`` and alert objects are accepted and not used).
  ``ratioMetric`` with ``Occurrences`` is an events SLI, with ``Timeslices`` a time-slice SLI whose
  slice is good when the ratio over ``timeSliceWindow`` reaches ``timeSliceTarget``.
  ``thresholdMetric`` is a time-slice SLI (``query op bool value``); with ``Occurrences`` each
  evaluation every ``DEFAULT_SLICE`` is one occurrence. An SLO with several objectives becomes
  one :class:`SLO` per objective, named ``<name>-<displayName or index>``. Only Prometheus metric
  sources are understood.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import promql_parser
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FiniteFloat,
    model_validator,
)

from sloanalysis._go import METRIC_NAME_RE, is_label_name
from sloanalysis.config import FieldError, Loc, located, null_is_absent, validate
from sloanalysis.durations import format_duration_ms, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.files import read_input_text
from sloanalysis.yamlload import load_yaml_documents

__all__ = [
    "DEFAULT_SLICE_MS",
    "FORMATS",
    "MAX_DURATION_MS",
    "SLO",
    "Alerting",
    "EventsSLI",
    "LatencySLI",
    "RawSLI",
    "SLOSpecError",
    "SpecFormat",
    "ThresholdAlert",
    "TimesliceSLI",
    "load_slo_files",
    "load_slos",
    "parse_slos",
]

DEFAULT_SLICE_MS = 60_000
DEFAULT_SLOTH_PERIOD_MS = 30 * 86_400_000
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OPENSLO_DURATION = re.compile(r"^(\d+)([MQY])$")
_OPENSLO_UNITS_MS = {"M": 30 * 86_400_000, "Q": 90 * 86_400_000, "Y": 365 * 86_400_000}
_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class SLOSpecError(UserError):
    """An SLO file that cannot be used."""


# -- the normalised model --------------------------------------------------------------------


def render_window(template: str, window_ms: int) -> str:
    """``template`` with every ``{{.window}}`` replaced by the Prometheus duration of ``window_ms``."""
    return WINDOW_PLACEHOLDER.sub(format_duration_ms(window_ms), template)


@dataclass(frozen=True)
class EventsSLI:
    """Ratio of events; ``good`` or ``bad`` (exactly one) over ``total``, as window templates.

    ``per_second``: the templates give per-second rates (``rate``), so events in a window are the
    value times the window's seconds; False when they give counts (``increase``).
    """

    total: str
    good: str | None = None
    bad: str | None = None
    per_second: bool = True
    kind: Literal["events"] = "events"

    def total_expr(self, window_ms: int) -> str:
        return render_window(self.total, window_ms)

    def good_expr(self, window_ms: int) -> str:
        if self.good is not None:
            return render_window(self.good, window_ms)
        return f"({self.total_expr(window_ms)}) - ({render_window(str(self.bad), window_ms)})"

    def bad_expr(self, window_ms: int) -> str:
        if self.bad is not None:
            return render_window(self.bad, window_ms)
        return f"({self.total_expr(window_ms)}) - ({render_window(str(self.good), window_ms)})"

    def error_ratio_expr(self, window_ms: int) -> str:
        total = self.total_expr(window_ms)
        if self.bad is not None:
            return f"({render_window(self.bad, window_ms)})\n/\n({total})"
        return f"1 - (\n  ({render_window(str(self.good), window_ms)})\n  /\n  ({total})\n)"


def _le_matcher(threshold: float) -> str:
    """Matcher for the bucket ``le=threshold`` whichever way the exporter formats the float."""
    if threshold.is_integer():
        n = int(threshold)
        return f'le=~"{n}|{n}\\\\.0"'
    return f'le="{threshold!r}"'


@dataclass(frozen=True)
class LatencySLI:
    """Fraction of observations of ``histogram`` at most ``threshold`` seconds (``le`` bucket)."""

    histogram: str
    threshold: float
    quantile: float | None = None
    matchers: str = ""
    kind: Literal["latency"] = "latency"

    def _selector(self, suffix: str, extra: str = "") -> str:
        inner = ", ".join(m for m in (self.matchers, extra) if m)
        return f"{self.histogram}_{suffix}{{{inner}}}"

    def bucket_expr(self, le: float, window_ms: int) -> str:
        """Per-second rate of observations at most ``le`` seconds."""
        w = format_duration_ms(window_ms)
        return f"sum(rate({self._selector('bucket', _le_matcher(le))}[{w}]))"

    def total_expr(self, window_ms: int) -> str:
        return f"sum(rate({self._selector('count')}[{format_duration_ms(window_ms)}]))"

    def good_expr(self, window_ms: int) -> str:
        return self.bucket_expr(self.threshold, window_ms)

    def bad_expr(self, window_ms: int) -> str:
        return f"({self.total_expr(window_ms)}) - ({self.good_expr(window_ms)})"

    def error_ratio_expr(self, window_ms: int) -> str:
        return f"1 - (\n  {self.good_expr(window_ms)}\n  /\n  {self.total_expr(window_ms)}\n)"

    @property
    def per_second(self) -> bool:
        return True


@dataclass(frozen=True)
class TimesliceSLI:
    """Indicator in [0, 1] (1: the slice is good) evaluated every ``slice_ms``."""

    indicator: str
    slice_ms: int = DEFAULT_SLICE_MS
    missing: Literal["ignore", "bad", "good"] = "ignore"
    kind: Literal["timeslice"] = "timeslice"

    def indicator_expr(self) -> str:
        """The indicator aggregated to one series, with the missing-data policy applied."""
        expr = f"avg({render_window(self.indicator, self.slice_ms)})"
        if self.missing == "bad":
            return f"{expr} or on() vector(0)"
        if self.missing == "good":
            return f"{expr} or on() vector(1)"
        return expr

    def error_ratio_expr(self, window_ms: int) -> str:
        w, s = format_duration_ms(window_ms), format_duration_ms(self.slice_ms)
        return f"1 - avg_over_time(({self.indicator_expr()})[{w}:{s}])"


@dataclass(frozen=True)
class RawSLI:
    """An error ratio (0..1) computed elsewhere, as a window template."""

    error_ratio: str
    kind: Literal["raw"] = "raw"

    def error_ratio_expr(self, window_ms: int) -> str:
        return render_window(self.error_ratio, window_ms)


SLI = EventsSLI | LatencySLI | TimesliceSLI | RawSLI


@dataclass(frozen=True)
class ThresholdAlert:
    """A plain threshold alert as the seed writes it ("availability < 99.5 %", "P95 > 60 s").

    ``kind`` ``sli_below``: the SLI over ``window_ms`` below ``value``; ``latency_above``: the
    latency SLI's quantile above ``value`` seconds, i.e. fewer than ``quantile`` of the
    observations in the bucket ``le=value`` (which must exist).
    """

    kind: Literal["sli_below", "latency_above"]
    value: float
    window_ms: int = 300_000
    for_ms: int = 300_000


@dataclass(frozen=True)
class Alerting:
    """Names, labels and annotations of the generated alerts, and which are wanted."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: bool = True
    ticket: bool = True
    page_labels: Mapping[str, str] = field(default_factory=dict)
    ticket_labels: Mapping[str, str] = field(default_factory=dict)
    page_annotations: Mapping[str, str] = field(default_factory=dict)
    ticket_annotations: Mapping[str, str] = field(default_factory=dict)
    threshold: ThresholdAlert | None = None


@dataclass(frozen=True)
class SLO:
    """One service level objective, whatever format it came from."""

    name: str
    service: str
    objective: float
    period_ms: int
    sli: SLI
    alerting: Alerting
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    @property
    def id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def error_budget(self) -> float:
        """Allowed fraction of bad events or time, ``1 - objective``."""
        return 1.0 - self.objective

    @property
    def budget_unit(self) -> Literal["events", "minutes"]:
        return "events" if isinstance(self.sli, EventsSLI | LatencySLI) else "minutes"

    def error_ratio_expr(self, window_ms: int) -> str:
        return self.sli.error_ratio_expr(window_ms)


# -- field types -------------------------------------------------------------------------------
# Each type checks one field and raises ValueError with the message; pydantic adds the field's
# path and sloanalysis.config turns it into one line.

MAX_DURATION_MS = 10 * 365 * 86_400_000
"""Longest period or window accepted: ten years (anything longer is a typo)."""


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _name_check(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid name")
        return value

    return check


def _labels(value: Any) -> dict[str, str]:
    """A mapping of label names to strings (numbers are written as strings)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping of label names to strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not is_label_name(k):
            raise FieldError((str(k),), "not a valid label name")
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise FieldError((k,), f"expected a string, got {v!r}")
        out[k] = str(v)
    return out


def _duration_ms(value: Any, *, openslo: bool = False, minimum: int = 1) -> int:
    """Milliseconds of a Prometheus duration (a bare number is seconds), at least ``minimum``.

    ``openslo``: the calendar units ``M`` (30 days), ``Q`` (90 days) and ``Y`` (365 days) too."""
    if openslo and isinstance(value, str) and (m := _OPENSLO_DURATION.match(value.strip())):
        ms = int(m.group(1)) * _OPENSLO_UNITS_MS[m.group(2)]
    else:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected a duration like '30d' or '5m', got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"expected a finite duration, got {value!r}")
        try:
            ms = parse_duration_ms(value)
        except UserError:
            raise ValueError(f"expected a duration like '30d' or '5m', got {value!r}") from None
    if ms < minimum:
        raise ValueError("must not be negative" if minimum == 0 else f"must be positive, got {value!r}")
    if ms > MAX_DURATION_MS:
        raise ValueError(f"must be at most 10 years ({format_duration_ms(MAX_DURATION_MS)}), got {value!r}")
    return ms


def _objective_check(scale: float) -> Callable[[float], float]:
    """``value / scale`` checked to lie strictly between 0 and 1."""

    def check(value: float) -> float:
        if not 0.0 < value / scale < 1.0:
            shown = "(0, 100)" if scale == 100.0 else "(0, 1)"
            raise ValueError(f"objective must lie in {shown} exclusive, got {value!r}")
        return value / scale

    return check


def _in_range(low: float, high: float, *, closed_high: bool = False) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not (low < value <= high if closed_high else low < value < high):
            raise ValueError(f"must lie in ({low:g}, {high:g}{']' if closed_high else ')'}, got {value!r}")
        return value

    return check


def _check_promql(expr: str) -> str:
    """``expr`` if it parses with a sample window substituted."""
    text = render_window(expr, 300_000)
    try:
        promql_parser.parse(text)
    except (ValueError, TypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"invalid PromQL {text!r}: {message}") from None
    return expr


_SUM_OF_SELECTOR = re.compile(
    r"^\s*sum\s*(?P<mod>(?:by|without)\s*\([^()]*\))?\s*\((?P<inner>.*)\)\s*$", re.S
)


def _counter_template(query: str) -> str:
    """A window template for a counter query: kept if it has ``{{.window}}``, else wrapped in ``rate``.

    Accepted without a placeholder: a plain selector ``m{...}`` and ``sum [by|without (...)] (m{...})``.
    """
    query = _check_promql(_non_empty(query).strip())
    if WINDOW_PLACEHOLDER.search(query):
        return query
    if isinstance(promql_parser.parse(query), promql_parser.VectorSelector):
        return f"sum(rate({query}[{{{{.window}}}}]))"
    m = _SUM_OF_SELECTOR.match(query)
    if m and isinstance(promql_parser.parse(m.group("inner")), promql_parser.VectorSelector):
        mod = f" {m.group('mod')} " if m.group("mod") else ""
        return f"sum{mod}(rate({m.group('inner').strip()}[{{{{.window}}}}]))"
    raise ValueError(
        f"{query!r}: give a counter selector, sum(selector), or a query with {{{{.window}}}} in its range"
    )


def _window_template(query: str) -> str:
    query = _non_empty(query).strip()
    if not WINDOW_PLACEHOLDER.search(query):
        raise ValueError(f"{query!r}: the query needs the {{{{.window}}}} placeholder in its range")
    return _check_promql(query)


Text = Annotated[str, AfterValidator(_non_empty)]
Name = Annotated[str, AfterValidator(_non_empty), AfterValidator(_name_check(_NAME))]
AlertName = Annotated[str, AfterValidator(_non_empty), AfterValidator(_name_check(METRIC_NAME_RE))]
MetricName = Annotated[str, AfterValidator(_non_empty), AfterValidator(_name_check(METRIC_NAME_RE))]
Labels = Annotated[dict[str, str], BeforeValidator(_labels)]
Number = FiniteFloat
Duration = Annotated[int, BeforeValidator(_duration_ms)]
"""Positive milliseconds from ``5m``, ``1d2h`` or a number of seconds."""
NonNegativeDuration = Annotated[int, BeforeValidator(partial(_duration_ms, minimum=0))]
OpenSLODuration = Annotated[int, BeforeValidator(partial(_duration_ms, openslo=True))]
Ratio = Annotated[FiniteFloat, AfterValidator(_objective_check(1.0))]
Percent = Annotated[FiniteFloat, AfterValidator(_objective_check(100.0))]
"""An objective in percent, held as a ratio."""
CounterQuery = Annotated[str, AfterValidator(_counter_template)]
WindowQuery = Annotated[str, AfterValidator(_window_template)]
PromQL = Annotated[str, AfterValidator(lambda q: _check_promql(_non_empty(q).strip()))]
"""A PromQL expression, stripped, that parses."""


def _exactly_one(model: BaseModel, names: Sequence[str]) -> str:
    """The one field of ``names`` that is set; raises naming them all otherwise."""
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(names)}")
    return given[0]


class _Closed(BaseModel):
    """A closed format: unknown fields are errors, YAML types are not coerced, and a field set to
    null counts as not given (its default, or "required field is missing")."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return null_is_absent(cls, data)


# -- shared parts of the project's and Sloth's formats ---------------------------------------


class _AlertPart(_Closed):
    """The page or ticket alert: on unless disabled, with its own labels and annotations."""

    disable: bool = False
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)


def _alerting(
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    page: _AlertPart | None,
    ticket: _AlertPart | None,
    threshold: ThresholdAlert | None = None,
) -> Alerting:
    """Alerting settings; a page or ticket part not given is an enabled alert without extras."""
    page, ticket = page or _AlertPart(), ticket or _AlertPart()
    return Alerting(
        name=name,
        labels=labels,
        annotations=annotations,
        page=not page.disable,
        ticket=not ticket.disable,
        page_labels=page.labels,
        ticket_labels=ticket.labels,
        page_annotations=page.annotations,
        ticket_annotations=ticket.annotations,
        threshold=threshold,
    )


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _is_rate(template: str) -> bool:
    """True unless the query counts with ``increase`` rather than ``rate``/``irate``."""
    return not ("increase(" in template and "rate(" not in template.replace("increase(", ""))


def _non_empty_list(items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError("expected a non-empty list of SLOs")
    return items


# -- the project's format ---------------------------------------------------------------------

_OWN_VERSION = "sloanalysis/v1"


class _OwnEvents(_Closed):
    total: CounterQuery
    good: CounterQuery | None = None
    bad: CounterQuery | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _OwnEvents:
        _exactly_one(self, ("good", "bad"))
        return self


class _OwnLatency(_Closed):
    histogram: MetricName
    threshold: Duration
    matchers: str = ""
    quantile: Annotated[Number, AfterValidator(_in_range(0.0, 1.0))] | None = None

    @model_validator(mode="after")
    def _check(self) -> _OwnLatency:
        if self.histogram.endswith(("_bucket", "_count", "_sum")):
            raise FieldError(("histogram",), "give the histogram's base name, without _bucket/_count/_sum")
        try:
            _check_promql(self.sli().error_ratio_expr(300_000))
        except ValueError as exc:
            raise FieldError(("matchers",), str(exc)) from None
        return self

    def sli(self) -> LatencySLI:
        matchers = self.matchers.strip().strip("{}").strip()
        return LatencySLI(self.histogram, self.threshold / 1000.0, self.quantile, matchers)


class _OwnTimeslice(_Closed):
    indicator: PromQL
    slice: Duration = DEFAULT_SLICE_MS
    missing: Literal["ignore", "bad", "good"] = "ignore"


class _OwnRaw(_Closed):
    error_ratio: WindowQuery


class _OwnSLI(_Closed):
    events: _OwnEvents | None = None
    latency: _OwnLatency | None = None
    timeslice: _OwnTimeslice | None = None
    raw: _OwnRaw | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _OwnSLI:
        _exactly_one(self, ("events", "latency", "timeslice", "raw"))
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


class _OwnThreshold(_Closed):
    sli_below: Number | None = None
    latency_above: Duration | None = None
    window: Duration = 300_000
    for_: NonNegativeDuration = Field(300_000, alias="for")

    @model_validator(mode="after")
    def _one_of(self) -> _OwnThreshold:
        _exactly_one(self, ("sli_below", "latency_above"))
        return self

    def alert(self) -> ThresholdAlert:
        if self.sli_below is not None:
            return ThresholdAlert("sli_below", self.sli_below, self.window, self.for_)
        return ThresholdAlert("latency_above", (self.latency_above or 0) / 1000.0, self.window, self.for_)


class _OwnAlerting(_Closed):
    name: AlertName | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    page: _AlertPart | None = None
    ticket: _AlertPart | None = None
    threshold: _OwnThreshold | None = None


class _OwnEntry(_Closed):
    name: Name
    objective: Ratio
    period: Duration
    sli: _OwnSLI
    description: str = ""
    labels: Labels = Field(default_factory=dict)
    alerting: _OwnAlerting | None = None

    @model_validator(mode="after")
    def _threshold_fits(self) -> _OwnEntry:
        """A threshold alert below the objective; a latency one above the SLI's threshold."""
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


class _OwnFile(_Closed):
    version: Literal["sloanalysis/v1"]
    service: Name
    slos: Annotated[list[_OwnEntry], AfterValidator(_non_empty_list)]
    labels: Labels = Field(default_factory=dict)
    description: str = ""


def _parse_own(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    doc = validate(_OwnFile, docs[0], source, SLOSpecError)
    out: list[SLO] = []
    for e in doc.slos:
        a = e.alerting or _OwnAlerting()
        alerting = _alerting(
            a.name or _camel(f"{doc.service}-{e.name}") + "BudgetBurn",
            a.labels,
            a.annotations,
            a.page,
            a.ticket,
            a.threshold.alert() if a.threshold is not None else None,
        )
        out.append(
            _entry_slo(e, source, doc.service, doc.labels, e.objective, e.period, e.sli.build(), alerting)
        )
    return out


def _entry_slo(
    entry: _OwnEntry | _SlothEntry,
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


# -- Sloth prometheus/v1 ----------------------------------------------------------------------


def _no_plugin(value: Any) -> Any:
    raise ValueError("Sloth SLI plugins are not supported; use events or raw")


class _SlothEvents(_Closed):
    error_query: WindowQuery
    total_query: WindowQuery


class _SlothRaw(_Closed):
    error_ratio_query: WindowQuery


class _SlothSLI(_Closed):
    events: _SlothEvents | None = None
    raw: _SlothRaw | None = None
    plugin: Annotated[Any, AfterValidator(_no_plugin)] = None

    @model_validator(mode="after")
    def _one_of(self) -> _SlothSLI:
        _exactly_one(self, ("events", "raw"))
        return self

    def build(self) -> SLI:
        if self.events is not None:
            ev = self.events
            return EventsSLI(total=ev.total_query, bad=ev.error_query, per_second=_is_rate(ev.total_query))
        assert self.raw is not None
        return RawSLI(error_ratio=self.raw.error_ratio_query)


class _SlothAlerting(_Closed):
    name: AlertName
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)
    page_alert: _AlertPart | None = None
    ticket_alert: _AlertPart | None = None


class _SlothEntry(_Closed):
    name: Name
    objective: Percent
    sli: _SlothSLI
    alerting: _SlothAlerting
    id: str | None = None
    description: str = ""
    labels: Labels = Field(default_factory=dict)


class _SlothFile(_Closed):
    version: Literal["prometheus/v1"]
    service: Name
    slos: Annotated[list[_SlothEntry], AfterValidator(_non_empty_list)]
    labels: Labels = Field(default_factory=dict)


def _parse_sloth(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    doc = validate(_SlothFile, docs[0], source, SLOSpecError)
    out: list[SLO] = []
    for e in doc.slos:
        a = e.alerting
        alerting = _alerting(a.name, a.labels, a.annotations, a.page_alert, a.ticket_alert)
        sli = e.sli.build()
        out.append(
            _entry_slo(e, source, doc.service, doc.labels, e.objective, default_period_ms, sli, alerting)
        )
    return out


# -- OpenSLO v1 -------------------------------------------------------------------------------

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


class _Metadata(_Closed):
    name: Name
    displayName: str | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Any = None


class _MetricSource(_Closed):
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


class _Query(_Closed):
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


class _RatioMetric(_Closed):
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
            _exactly_one(self, ("good", "bad"))
        self.templates()  # query errors name the field
        return self

    def templates(self) -> dict[str, str]:
        """Window templates of the queries given (``raw``: the error ratio)."""
        if self.raw is not None:
            raw = self.raw.query
            if WINDOW_PLACEHOLDER.search(raw):
                raw = _templated("raw", _window_template, raw)
            _templated("raw", _check_promql, raw)
            return {"raw": raw if self.rawType == "failure" else f"1 - ({raw})"}
        make = _counter_template if self.counter else _window_template
        return {k: _templated(k, make, q.query) for k in ("good", "bad", "total") if (q := getattr(self, k))}


class _Indicator(_Closed):
    """An SLI's ``spec``: a ratio or a threshold metric."""

    description: str | None = None
    ratioMetric: _RatioMetric | None = None
    thresholdMetric: _Query | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _Indicator:
        _exactly_one(self, ("ratioMetric", "thresholdMetric"))
        if self.thresholdMetric is not None:
            _templated("thresholdMetric", _check_promql, self.thresholdMetric.query)
        return self


class _InlineIndicator(_Closed):
    spec: _Indicator
    metadata: Any = None
    apiVersion: Any = None
    kind: Any = None


class _Objective(_Closed):
    target: Ratio | None = None
    targetPercent: Percent | None = None
    displayName: str | None = None
    op: Literal["lt", "lte", "gt", "gte"] | None = None
    value: Number | None = None
    timeSliceTarget: Annotated[Number, AfterValidator(_in_range(0.0, 1.0, closed_high=True))] | None = None
    timeSliceWindow: Duration | None = None

    @model_validator(mode="after")
    def _one_of(self) -> _Objective:
        _exactly_one(self, ("target", "targetPercent"))
        return self

    @property
    def objective(self) -> float:
        return self.target if self.target is not None else float(self.targetPercent or 0.0)


class _TimeWindow(_Closed):
    duration: OpenSLODuration
    isRolling: bool | None = None
    calendar: Any = None


def _one_window(windows: list[_TimeWindow]) -> list[_TimeWindow]:
    if len(windows) != 1:
        raise ValueError("expected a list with exactly one time window")
    return windows


class _SLOSpec(_Closed):
    budgetingMethod: Literal["Occurrences", "Timeslices"]
    objectives: Annotated[list[_Objective], AfterValidator(_non_empty_list)]
    description: str = ""
    service: Name | None = None
    indicator: _InlineIndicator | None = None
    indicatorRef: Text | None = None
    timeWindow: Annotated[list[_TimeWindow], AfterValidator(_one_window)] | None = None
    alertPolicies: Any = None

    @model_validator(mode="after")
    def _one_of(self) -> _SLOSpec:
        _exactly_one(self, ("indicator", "indicatorRef"))
        return self


class _SLODoc(_Closed):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLO"]
    metadata: _Metadata
    spec: _SLOSpec


class _SLIDoc(_Closed):
    apiVersion: Literal["openslo/v1"]
    kind: Literal["SLI"]
    metadata: _Metadata
    spec: _Indicator


class _Fail:
    """Raises one-line errors about fields under ``loc`` of ``source``."""

    def __init__(self, source: str, loc: Loc) -> None:
        self.source, self.loc = source, loc

    def __call__(self, field: str, message: str) -> NoReturn:
        raise SLOSpecError(located(self.source, (*self.loc, field), message))


def _slice_ms(o: _Objective, fail: _Fail) -> int:
    if o.timeSliceWindow is None:
        fail("timeSliceWindow", "required field is missing for Timeslices")
    return o.timeSliceWindow


def _openslo_sli(ind: _Indicator, method: str, o: _Objective, fail: _Fail) -> SLI:
    """The SLI of one objective: its threshold, budgeting method and time slices shape it."""
    if ind.thresholdMetric is not None:
        if o.op is None:
            fail("op", "thresholdMetric needs op lt, lte, gt or gte, got None")
        if o.value is None:
            fail("value", "required field is missing for a thresholdMetric")
        slice_ms = _slice_ms(o, fail) if method == "Timeslices" else DEFAULT_SLICE_MS
        indicator = f"({ind.thresholdMetric.query}) {_OPS[o.op]} bool {o.value!r}"
        return TimesliceSLI(indicator=indicator, slice_ms=slice_ms)
    ratio = ind.ratioMetric
    assert ratio is not None
    t = ratio.templates()
    if "raw" in t:
        if method == "Timeslices":
            return _ratio_timeslice(f"1 - ({t['raw']})", o, fail)
        return RawSLI(error_ratio=t["raw"])
    events = EventsSLI(
        total=t["total"], good=t.get("good"), bad=t.get("bad"), per_second=_is_rate(t["total"])
    )
    if method == "Timeslices":
        slice_ms = _slice_ms(o, fail)
        good_ratio = f"1 - ({events.error_ratio_expr(slice_ms)})"
        return _ratio_timeslice(good_ratio, o, fail, traffic=events.total_expr(slice_ms))
    return events


def _ratio_timeslice(good_ratio: str, o: _Objective, fail: _Fail, traffic: str | None = None) -> TimesliceSLI:
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
            _Fail(source, (*loc, "spec"))(
                "indicatorRef", f"no kind: SLI named {ref!r} in this file (SLIs: {known})"
            )
        indicator = slis[ref]
    period = spec.timeWindow[0].duration if spec.timeWindow else default_period_ms
    service = spec.service or name
    out: list[SLO] = []
    for i, o in enumerate(spec.objectives):
        fail = _Fail(source, (*loc, "spec", "objectives", i))
        slo_name = name + (_objective_suffix(o, i) if len(spec.objectives) > 1 else "")
        out.append(
            SLO(
                name=slo_name,
                service=service,
                objective=o.objective,
                period_ms=period,
                sli=_openslo_sli(indicator, spec.budgetingMethod, o, fail),
                alerting=Alerting(name=_camel(f"{service}-{slo_name}") + "BudgetBurn"),
                description=spec.description,
                labels=doc.metadata.labels,
                source=source,
            )
        )
    return out


def _parse_openslo(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    slis: dict[str, _Indicator] = {}
    slo_docs: list[tuple[_SLODoc, Loc]] = []
    for i, raw in enumerate(docs):
        loc: Loc = (f"document {i + 1}",)
        header = validate(_OpenSLOHeader, raw, source, SLOSpecError, prefix=loc)
        if header.kind == "SLI":
            sli = validate(_SLIDoc, raw, source, SLOSpecError, prefix=loc)
            if sli.metadata.name in slis:
                _Fail(source, (*loc, "metadata"))("name", f"SLI {sli.metadata.name!r} defined twice")
            slis[sli.metadata.name] = sli.spec
        elif header.kind == "SLO":
            slo_docs.append((validate(_SLODoc, raw, source, SLOSpecError, prefix=loc), loc))
    if not slo_docs:
        raise SLOSpecError(f"{source}: no kind: SLO document")
    return [slo for doc, loc in slo_docs for slo in _openslo_slos(doc, loc, source, slis, default_period_ms)]


# -- formats and entry points ------------------------------------------------------------------


@dataclass(frozen=True)
class SpecFormat:
    """One SLO file format, recognised by ``key: name`` in the file's first YAML document.

    ``parse(documents, source, default_period_ms)`` validates the documents (mappings) and
    returns their SLOs; only ``multi_document`` formats may have more than one document.
    A new format is a parser (pydantic models plus a builder) and one entry in ``FORMATS``.
    """

    name: str
    key: str
    parse: Callable[[list[Any], str, int], list[SLO]]
    multi_document: bool = False


FORMATS: tuple[SpecFormat, ...] = (
    SpecFormat(_OWN_VERSION, "version", _parse_own),
    SpecFormat("prometheus/v1", "version", _parse_sloth),
    SpecFormat("openslo/v1", "apiVersion", _parse_openslo, multi_document=True),
)


def _format_of(first: dict[Any, Any], source: str) -> SpecFormat:
    for fmt in FORMATS:
        if fmt.key in first and first[fmt.key] == fmt.name:
            return fmt
    key = "apiVersion" if "apiVersion" in first else "version"
    same = " or ".join(f.name for f in FORMATS if f.key == key)
    other = ", ".join(f"{f.key}: {f.name}" for f in FORMATS if f.key != key)
    message = f"expected {same}" + (f" (or {other})" if other else "") + f", got {first.get(key)!r}"
    raise SLOSpecError(located(source, (key,), message))


def _yaml_documents(text: str, source: str) -> list[Any]:
    try:
        docs = [d for d in load_yaml_documents(text, source) if d is not None]
    except UserError as exc:
        raise SLOSpecError(str(exc)) from None
    if not docs:
        raise SLOSpecError(f"{source}: empty file, no SLOs")
    if not isinstance(docs[0], dict):
        raise SLOSpecError(f"{source}: expected a mapping at the top, got {type(docs[0]).__name__}")
    return docs


def parse_slos(
    text: str, source: str = "<string>", *, default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS
) -> list[SLO]:
    """All SLOs of a YAML text in any of the :data:`FORMATS`; ``source`` names it in errors."""
    docs = _yaml_documents(text, source)
    fmt = _format_of(docs[0], source)
    if len(docs) > 1 and not fmt.multi_document:
        multi = ", ".join(f"{f.key}: {f.name}" for f in FORMATS if f.multi_document)
        raise SLOSpecError(f"{source}: several YAML documents are only read for {multi}")
    slos = fmt.parse(docs, source, default_period_ms)
    seen: set[str] = set()
    for slo in slos:
        if slo.id in seen:
            raise SLOSpecError(f"{source}: SLO {slo.name!r} of service {slo.service!r} defined twice")
        seen.add(slo.id)
    return slos


def load_slos(path: str | Path, *, default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS) -> list[SLO]:
    """Read and validate an SLO file (any of the :data:`FORMATS`)."""
    text = read_input_text(path, SLOSpecError)
    return parse_slos(text, str(Path(path)), default_period_ms=default_period_ms)


def load_slo_files(
    paths: Sequence[str | Path], default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS
) -> list[SLO]:
    """SLOs of every file in order; an SLO id defined in two files is an error naming both."""
    slos: list[SLO] = []
    seen: dict[str, str] = {}
    for path in paths:
        for slo in load_slos(path, default_period_ms=default_period_ms):
            if slo.id in seen:
                raise SLOSpecError(f"{path}: SLO {slo.id!r} is already defined in {seen[slo.id]}")
            seen[slo.id] = str(path)
            slos.append(slo)
    return slos
