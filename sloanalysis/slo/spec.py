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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import promql_parser
import yaml

from sloanalysis.durations import format_duration_ms, parse_duration_ms
from sloanalysis.errors import UserError

__all__ = [
    "DEFAULT_SLICE_MS",
    "SLO",
    "Alerting",
    "EventsSLI",
    "LatencySLI",
    "RawSLI",
    "SLOSpecError",
    "ThresholdAlert",
    "TimesliceSLI",
    "load_slos",
    "parse_slos",
]

DEFAULT_SLICE_MS = 60_000
DEFAULT_SLOTH_PERIOD_MS = 30 * 86_400_000
WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*\.window\s*\}\}")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ALERT_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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


# -- validation helpers ----------------------------------------------------------------------


class _Ctx:
    """Where we are: the file and a dotted field path, for one-line error messages."""

    def __init__(self, source: str, path: str = "") -> None:
        self.source = source
        self.path = path

    def at(self, key: str | int) -> _Ctx:
        if isinstance(key, int):
            return _Ctx(self.source, f"{self.path}[{key}]")
        return _Ctx(self.source, f"{self.path}.{key}" if self.path else key)

    def error(self, message: str) -> SLOSpecError:
        where = f"{self.source}: {self.path}" if self.path else self.source
        return SLOSpecError(f"{where}: {message}")


def _mapping(
    value: Any, ctx: _Ctx, *, required: Sequence[str] = (), optional: Sequence[str] = ()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ctx.error(f"expected a mapping, got {type(value).__name__}")
    allowed = set(required) | set(optional)
    for key in value:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ctx.at(str(key)).error(f"unknown field (known here: {known})")
    for key in required:
        if key not in value or value[key] is None:
            raise ctx.at(key).error("required field is missing")
    return value


def _str(value: Any, ctx: _Ctx, *, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(f"expected a non-empty string, got {value!r}")
    if pattern is not None and not pattern.match(value):
        raise ctx.error(f"{value!r} is not a valid name")
    return value


def _number(value: Any, ctx: _Ctx) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.error(f"expected a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ctx.error(f"expected a finite number, got {value!r}")
    return x


def _bool(value: Any, ctx: _Ctx) -> bool:
    if not isinstance(value, bool):
        raise ctx.error(f"expected true or false, got {value!r}")
    return value


def _labels(value: Any, ctx: _Ctx) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.error(f"expected a mapping of label names to strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not _LABEL_NAME.match(k):
            raise ctx.at(str(k)).error("not a valid label name")
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ctx.at(k).error(f"expected a string, got {v!r}")
        out[k] = str(v)
    return out


def _duration(value: Any, ctx: _Ctx, *, openslo: bool = False) -> int:
    if openslo and isinstance(value, str):
        m = _OPENSLO_DURATION.match(value.strip())
        if m:
            return int(m.group(1)) * _OPENSLO_UNITS_MS[m.group(2)]
    if isinstance(value, bool) or value is None:
        raise ctx.error(f"expected a duration like '30d', got {value!r}")
    try:
        ms = parse_duration_ms(value, what=ctx.path or "duration")
    except UserError:
        raise ctx.error(f"expected a duration like '30d' or '5m', got {value!r}") from None
    if ms <= 0:
        raise ctx.error(f"duration must be positive, got {value!r}")
    return ms


def _objective(value: float, ctx: _Ctx, *, scale: float = 1.0) -> float:
    """``value / scale`` checked to be strictly between 0 and 1."""
    x = value / scale
    if not 0.0 < x < 1.0:
        shown = "(0, 100)" if scale == 100.0 else "(0, 1)"
        raise ctx.error(f"objective must lie in {shown} exclusive, got {value!r}")
    return x


def _check_promql(expr: str, ctx: _Ctx) -> None:
    """Parse ``expr`` with a sample window substituted; a syntax error names the field."""
    text = render_window(expr, 300_000)
    try:
        promql_parser.parse(text)
    except (ValueError, TypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ctx.error(f"invalid PromQL {text!r}: {message}") from None


_SUM_OF_SELECTOR = re.compile(
    r"^\s*sum\s*(?P<mod>(?:by|without)\s*\([^()]*\))?\s*\((?P<inner>.*)\)\s*$", re.S
)


def _counter_template(query: str, ctx: _Ctx) -> str:
    """A window template for a counter query: kept if it has ``{{.window}}``, else wrapped in ``rate``.

    Accepted without a placeholder: a plain selector ``m{...}`` and ``sum [by|without (...)] (m{...})``.
    """
    query = _str(query, ctx).strip()
    if WINDOW_PLACEHOLDER.search(query):
        _check_promql(query, ctx)
        return query
    _check_promql(query, ctx)
    parsed = promql_parser.parse(query)
    if isinstance(parsed, promql_parser.VectorSelector):
        return f"sum(rate({query}[{{{{.window}}}}]))"
    m = _SUM_OF_SELECTOR.match(query)
    if m and isinstance(promql_parser.parse(m.group("inner")), promql_parser.VectorSelector):
        mod = f" {m.group('mod')} " if m.group("mod") else ""
        return f"sum{mod}(rate({m.group('inner').strip()}[{{{{.window}}}}]))"
    raise ctx.error(
        f"{query!r}: give a counter selector, sum(selector), or a query with {{{{.window}}}} in its range"
    )


def _window_template(query: Any, ctx: _Ctx) -> str:
    query = _str(query, ctx).strip()
    if not WINDOW_PLACEHOLDER.search(query):
        raise ctx.error(f"{query!r}: the query needs the {{{{.window}}}} placeholder in its range")
    _check_promql(query, ctx)
    return query


# -- the project's format ---------------------------------------------------------------------

_OWN_VERSION = "sloanalysis/v1"


def _own_sli(value: Any, ctx: _Ctx) -> SLI:
    spec = _mapping(value, ctx, optional=("events", "latency", "timeslice", "raw"))
    if len(spec) != 1:
        raise ctx.error("give exactly one of events, latency, timeslice, raw")
    kind, body = next(iter(spec.items()))
    c = ctx.at(kind)
    if kind == "events":
        b = _mapping(body, c, required=("total",), optional=("good", "bad"))
        if ("good" in b) == ("bad" in b):
            raise c.error("give exactly one of good, bad")
        total = _counter_template(b["total"], c.at("total"))
        if "good" in b:
            return EventsSLI(total=total, good=_counter_template(b["good"], c.at("good")))
        return EventsSLI(total=total, bad=_counter_template(b["bad"], c.at("bad")))
    if kind == "latency":
        b = _mapping(body, c, required=("histogram", "threshold"), optional=("matchers", "quantile"))
        hist = _str(b["histogram"], c.at("histogram"), pattern=re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$"))
        if hist.endswith(("_bucket", "_count", "_sum")):
            raise c.at("histogram").error("give the histogram's base name, without _bucket/_count/_sum")
        threshold = _duration(b["threshold"], c.at("threshold")) / 1000.0
        quantile = None
        if "quantile" in b:
            quantile = _number(b["quantile"], c.at("quantile"))
            if not 0.0 < quantile < 1.0:
                raise c.at("quantile").error(f"must lie in (0, 1), got {quantile!r}")
        matchers = str(b.get("matchers") or "").strip().strip("{}").strip()
        sli = LatencySLI(histogram=hist, threshold=threshold, quantile=quantile, matchers=matchers)
        _check_promql(sli.error_ratio_expr(300_000), c.at("matchers"))
        return sli
    if kind == "timeslice":
        b = _mapping(body, c, required=("indicator",), optional=("slice", "missing"))
        indicator = _str(b["indicator"], c.at("indicator")).strip()
        _check_promql(indicator, c.at("indicator"))
        slice_ms = _duration(b["slice"], c.at("slice")) if "slice" in b else DEFAULT_SLICE_MS
        missing = b.get("missing", "ignore")
        if missing not in ("ignore", "bad", "good"):
            raise c.at("missing").error(f"expected ignore, bad or good, got {missing!r}")
        return TimesliceSLI(indicator=indicator, slice_ms=slice_ms, missing=missing)
    b = _mapping(body, c, required=("error_ratio",))
    return RawSLI(error_ratio=_window_template(b["error_ratio"], c.at("error_ratio")))


def _threshold(value: Any, ctx: _Ctx, objective: float, sli: SLI) -> ThresholdAlert:
    b = _mapping(value, ctx, optional=("sli_below", "latency_above", "window", "for"))
    kinds = [k for k in ("sli_below", "latency_above") if k in b]
    if len(kinds) != 1:
        raise ctx.error("give exactly one of sli_below, latency_above")
    kind = kinds[0]
    window = _duration(b["window"], ctx.at("window")) if "window" in b else 300_000
    for_ms = 0
    if "for" in b:
        for_ms = parse_duration_ms(b["for"], what=f"{ctx.source}: {ctx.at('for').path}")
        if for_ms < 0:
            raise ctx.at("for").error("must not be negative")
    else:
        for_ms = 300_000
    if kind == "sli_below":
        v = _number(b[kind], ctx.at(kind))
        if not 0.0 < v < objective:
            raise ctx.at(kind).error(f"must lie between 0 and the objective {objective!r}, got {v!r}")
        return ThresholdAlert("sli_below", v, window, for_ms)
    if not isinstance(sli, LatencySLI):
        raise ctx.at(kind).error("latency_above needs a latency SLI")
    v = _duration(b[kind], ctx.at(kind)) / 1000.0
    if v <= sli.threshold:
        raise ctx.at(kind).error(f"must exceed the SLI threshold {sli.threshold!r} s, got {v!r} s")
    return ThresholdAlert("latency_above", v, window, for_ms)


def _own_alert_part(value: Any, ctx: _Ctx) -> tuple[bool, dict[str, str], dict[str, str]]:
    if value is None:
        return True, {}, {}
    b = _mapping(value, ctx, optional=("disable", "labels", "annotations"))
    disable = _bool(b["disable"], ctx.at("disable")) if "disable" in b else False
    return (
        not disable,
        _labels(b.get("labels"), ctx.at("labels")),
        _labels(b.get("annotations"), ctx.at("annotations")),
    )


def _own_alerting(value: Any, ctx: _Ctx, default_name: str, objective: float, sli: SLI) -> Alerting:
    if value is None:
        return Alerting(name=default_name)
    b = _mapping(value, ctx, optional=("name", "labels", "annotations", "page", "ticket", "threshold"))
    name = _str(b["name"], ctx.at("name"), pattern=_ALERT_NAME) if "name" in b else default_name
    page, page_labels, page_ann = _own_alert_part(b.get("page"), ctx.at("page"))
    ticket, ticket_labels, ticket_ann = _own_alert_part(b.get("ticket"), ctx.at("ticket"))
    threshold = _threshold(b["threshold"], ctx.at("threshold"), objective, sli) if "threshold" in b else None
    return Alerting(
        name=name,
        labels=_labels(b.get("labels"), ctx.at("labels")),
        annotations=_labels(b.get("annotations"), ctx.at("annotations")),
        page=page,
        ticket=ticket,
        page_labels=page_labels,
        ticket_labels=ticket_labels,
        page_annotations=page_ann,
        ticket_annotations=ticket_ann,
        threshold=threshold,
    )


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _parse_own(doc: dict[str, Any], ctx: _Ctx) -> list[SLO]:
    top = _mapping(doc, ctx, required=("version", "service", "slos"), optional=("labels", "description"))
    service = _str(top["service"], ctx.at("service"), pattern=_NAME)
    labels = _labels(top.get("labels"), ctx.at("labels"))
    items = top["slos"]
    if not isinstance(items, list) or not items:
        raise ctx.at("slos").error("expected a non-empty list of SLOs")
    out: list[SLO] = []
    for i, item in enumerate(items):
        c = ctx.at("slos").at(i)
        b = _mapping(
            item,
            c,
            required=("name", "objective", "period", "sli"),
            optional=("description", "labels", "alerting"),
        )
        name = _str(b["name"], c.at("name"), pattern=_NAME)
        c = ctx.at("slos").at(i)
        objective = _objective(_number(b["objective"], c.at("objective")), c.at("objective"))
        period = _duration(b["period"], c.at("period"))
        sli = _own_sli(b["sli"], c.at("sli"))
        alerting = _own_alerting(
            b.get("alerting"), c.at("alerting"), _camel(f"{service}-{name}") + "BudgetBurn", objective, sli
        )
        out.append(_entry_slo(b, c, ctx, labels, name, service, objective, period, sli, alerting))
    return out


def _entry_slo(
    b: dict[str, Any],
    c: _Ctx,
    ctx: _Ctx,
    labels: dict[str, str],
    name: str,
    service: str,
    objective: float,
    period_ms: int,
    sli: SLI,
    alerting: Alerting,
) -> SLO:
    """An SLO from one entry of a file's list: the entry's description and labels over the file's."""
    return SLO(
        name=name,
        service=service,
        objective=objective,
        period_ms=period_ms,
        sli=sli,
        alerting=alerting,
        description=str(b.get("description") or ""),
        labels={**labels, **_labels(b.get("labels"), c.at("labels"))},
        source=ctx.source,
    )


# -- Sloth prometheus/v1 ----------------------------------------------------------------------


def _sloth_alert_part(value: Any, ctx: _Ctx) -> tuple[bool, dict[str, str], dict[str, str]]:
    if value is None:
        return True, {}, {}
    b = _mapping(value, ctx, optional=("disable", "labels", "annotations"))
    disable = _bool(b["disable"], ctx.at("disable")) if "disable" in b else False
    return (
        not disable,
        _labels(b.get("labels"), ctx.at("labels")),
        _labels(b.get("annotations"), ctx.at("annotations")),
    )


def _parse_sloth(doc: dict[str, Any], ctx: _Ctx, default_period_ms: int) -> list[SLO]:
    top = _mapping(doc, ctx, required=("version", "service", "slos"), optional=("labels",))
    service = _str(top["service"], ctx.at("service"), pattern=_NAME)
    labels = _labels(top.get("labels"), ctx.at("labels"))
    items = top["slos"]
    if not isinstance(items, list) or not items:
        raise ctx.at("slos").error("expected a non-empty list of SLOs")
    out: list[SLO] = []
    for i, item in enumerate(items):
        c = ctx.at("slos").at(i)
        b = _mapping(
            item,
            c,
            required=("name", "objective", "sli"),
            optional=("id", "description", "labels", "alerting"),
        )
        name = _str(b["name"], c.at("name"), pattern=_NAME)
        objective = _objective(_number(b["objective"], c.at("objective")), c.at("objective"), scale=100.0)
        sc = c.at("sli")
        sli_b = _mapping(b["sli"], sc, optional=("events", "raw", "plugin"))
        if "plugin" in sli_b:
            raise sc.at("plugin").error("Sloth SLI plugins are not supported; use events or raw")
        if len(sli_b) != 1:
            raise sc.error("give exactly one of events, raw")
        sli: SLI
        if "events" in sli_b:
            ev = _mapping(sli_b["events"], sc.at("events"), required=("error_query", "total_query"))
            sli = EventsSLI(
                total=_window_template(ev["total_query"], sc.at("events").at("total_query")),
                bad=_window_template(ev["error_query"], sc.at("events").at("error_query")),
                per_second=_is_rate(ev["total_query"]),
            )
        else:
            raw = _mapping(sli_b["raw"], sc.at("raw"), required=("error_ratio_query",))
            sli = RawSLI(
                error_ratio=_window_template(raw["error_ratio_query"], sc.at("raw").at("error_ratio_query"))
            )
        ac = c.at("alerting")
        if b.get("alerting") is None:
            raise ac.error("required field is missing")
        a = _mapping(
            b["alerting"],
            ac,
            required=("name",),
            optional=("labels", "annotations", "page_alert", "ticket_alert"),
        )
        page, page_labels, page_ann = _sloth_alert_part(a.get("page_alert"), ac.at("page_alert"))
        ticket, ticket_labels, ticket_ann = _sloth_alert_part(a.get("ticket_alert"), ac.at("ticket_alert"))
        alerting = Alerting(
            name=_str(a["name"], ac.at("name"), pattern=_ALERT_NAME),
            labels=_labels(a.get("labels"), ac.at("labels")),
            annotations=_labels(a.get("annotations"), ac.at("annotations")),
            page=page,
            ticket=ticket,
            page_labels=page_labels,
            ticket_labels=ticket_labels,
            page_annotations=page_ann,
            ticket_annotations=ticket_ann,
        )
        out.append(_entry_slo(b, c, ctx, labels, name, service, objective, default_period_ms, sli, alerting))
    return out


def _is_rate(template: str) -> bool:
    """True unless the query counts with ``increase`` rather than ``rate``/``irate``."""
    return not ("increase(" in template and "rate(" not in template.replace("increase(", ""))


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


def _openslo_query(value: Any, ctx: _Ctx) -> str:
    b = _mapping(value, ctx, required=("metricSource",))
    ms = _mapping(
        b["metricSource"], ctx.at("metricSource"), required=("spec",), optional=("type", "metricSourceRef")
    )
    src_type = ms.get("type")
    if src_type is not None and str(src_type).lower() != "prometheus":
        raise (
            ctx.at("metricSource")
            .at("type")
            .error(f"only Prometheus metric sources are supported, got {src_type!r}")
        )
    spec = ms["spec"]
    if not isinstance(spec, dict) or "query" not in spec:
        raise ctx.at("metricSource").at("spec").at("query").error("required field is missing")
    return _str(spec["query"], ctx.at("metricSource").at("spec").at("query")).strip()


@dataclass(frozen=True)
class _OpenSLOIndicator:
    kind: Literal["ratio", "threshold"]
    ctx: _Ctx
    counter: bool = True
    good: str | None = None
    bad: str | None = None
    total: str | None = None
    raw: str | None = None
    raw_type: str | None = None
    query: str | None = None


def _openslo_indicator(value: Any, ctx: _Ctx) -> _OpenSLOIndicator:
    b = _mapping(value, ctx, optional=("description", "ratioMetric", "thresholdMetric"))
    if ("ratioMetric" in b) == ("thresholdMetric" in b):
        raise ctx.error("give exactly one of ratioMetric, thresholdMetric")
    if "thresholdMetric" in b:
        c = ctx.at("thresholdMetric")
        return _OpenSLOIndicator("threshold", c, query=_openslo_query(b["thresholdMetric"], c))
    c = ctx.at("ratioMetric")
    r = _mapping(b["ratioMetric"], c, optional=("counter", "good", "bad", "total", "raw", "rawType"))
    counter = _bool(r["counter"], c.at("counter")) if "counter" in r else True
    if "raw" in r:
        if any(k in r for k in ("good", "bad", "total")):
            raise c.at("raw").error("raw cannot be combined with good, bad or total")
        raw_type = r.get("rawType")
        if raw_type not in ("success", "failure"):
            raise c.at("rawType").error(f"expected success or failure, got {raw_type!r}")
        return _OpenSLOIndicator("ratio", c, raw=_openslo_query(r["raw"], c.at("raw")), raw_type=raw_type)
    if "total" not in r:
        raise c.at("total").error("required field is missing")
    if ("good" in r) == ("bad" in r):
        raise c.error("give exactly one of good, bad")
    ind = _OpenSLOIndicator(
        "ratio",
        c,
        counter=counter,
        good=_openslo_query(r["good"], c.at("good")) if "good" in r else None,
        bad=_openslo_query(r["bad"], c.at("bad")) if "bad" in r else None,
        total=_openslo_query(r["total"], c.at("total")),
    )
    return ind


def _openslo_template(query: str, counter: bool, ctx: _Ctx) -> str:
    if counter:
        return _counter_template(query, ctx)
    return _window_template(query, ctx)


def _openslo_sli(ind: _OpenSLOIndicator, method: str, objective: dict[str, Any], octx: _Ctx) -> SLI:
    c = ind.ctx
    if ind.kind == "threshold":
        op = objective.get("op")
        if op not in _OPS:
            raise octx.at("op").error(f"thresholdMetric needs op lt, lte, gt or gte, got {op!r}")
        if "value" not in objective:
            raise octx.at("value").error("required field is missing for a thresholdMetric")
        value = _number(objective["value"], octx.at("value"))
        query = str(ind.query)
        _check_promql(query, c)
        slice_ms = DEFAULT_SLICE_MS
        if method == "Timeslices":
            slice_ms = _duration(objective.get("timeSliceWindow"), octx.at("timeSliceWindow"))
        return TimesliceSLI(indicator=f"({query}) {_OPS[op]} bool {value!r}", slice_ms=slice_ms)
    if ind.raw is not None:
        raw_q = _window_template(ind.raw, c.at("raw")) if WINDOW_PLACEHOLDER.search(ind.raw) else ind.raw
        _check_promql(raw_q, c.at("raw"))
        err = raw_q if ind.raw_type == "failure" else f"1 - ({raw_q})"
        if method == "Timeslices":
            return _ratio_timeslice(f"1 - ({err})", objective, octx)
        return RawSLI(error_ratio=err)
    total = _openslo_template(str(ind.total), ind.counter, c.at("total"))
    good = _openslo_template(ind.good, ind.counter, c.at("good")) if ind.good is not None else None
    bad = _openslo_template(ind.bad, ind.counter, c.at("bad")) if ind.bad is not None else None
    events = EventsSLI(total=total, good=good, bad=bad, per_second=_is_rate(total))
    if method == "Timeslices":
        slice_ms = _duration(objective.get("timeSliceWindow"), octx.at("timeSliceWindow"))
        return _ratio_timeslice(
            f"1 - ({events.error_ratio_expr(slice_ms)})", objective, octx, traffic=events.total_expr(slice_ms)
        )
    return events


def _ratio_timeslice(
    good_ratio: str, objective: dict[str, Any], octx: _Ctx, traffic: str | None = None
) -> TimesliceSLI:
    """Slice good when the ratio reaches ``timeSliceTarget``; slices without traffic have no value
    (``and on() (total > 0)``), so the missing-data policy, not ``NaN >= x`` (false), decides them."""
    if "timeSliceTarget" not in objective:
        raise octx.at("timeSliceTarget").error("required field is missing for Timeslices")
    target = _number(objective["timeSliceTarget"], octx.at("timeSliceTarget"))
    if not 0.0 < target <= 1.0:
        raise octx.at("timeSliceTarget").error(f"must lie in (0, 1], got {target!r}")
    slice_ms = _duration(objective.get("timeSliceWindow"), octx.at("timeSliceWindow"))
    indicator = f"({render_window(good_ratio, slice_ms)}) >= bool {target!r}"
    if traffic is not None:
        indicator = f"({indicator}) and on() (({traffic}) > 0)"
    return TimesliceSLI(indicator=indicator, slice_ms=slice_ms)


def _openslo_slo(
    doc: dict[str, Any], ctx: _Ctx, slis: dict[str, tuple[Any, _Ctx]], default_period_ms: int
) -> list[SLO]:
    top = _mapping(doc, ctx, required=("apiVersion", "kind", "metadata", "spec"))
    meta = _mapping(
        top["metadata"],
        ctx.at("metadata"),
        required=("name",),
        optional=("displayName", "labels", "annotations"),
    )
    name = _str(meta["name"], ctx.at("metadata").at("name"), pattern=_NAME)
    sc = ctx.at("spec")
    spec = _mapping(
        top["spec"],
        sc,
        required=("budgetingMethod", "objectives"),
        optional=("description", "service", "indicator", "indicatorRef", "timeWindow", "alertPolicies"),
    )
    method = spec["budgetingMethod"]
    if method not in ("Occurrences", "Timeslices"):
        raise sc.at("budgetingMethod").error(f"expected Occurrences or Timeslices, got {method!r}")
    if ("indicator" in spec) == ("indicatorRef" in spec):
        raise sc.error("give exactly one of indicator, indicatorRef")
    if "indicator" in spec:
        ic = sc.at("indicator")
        ib = _mapping(spec["indicator"], ic, required=("spec",), optional=("metadata", "apiVersion", "kind"))
        indicator = _openslo_indicator(ib["spec"], ic.at("spec"))
    else:
        ref = _str(spec["indicatorRef"], sc.at("indicatorRef"))
        if ref not in slis:
            known = ", ".join(sorted(slis)) or "none"
            raise sc.at("indicatorRef").error(f"no kind: SLI named {ref!r} in this file (SLIs: {known})")
        body, ictx = slis[ref]
        indicator = _openslo_indicator(body, ictx)
    period = default_period_ms
    if "timeWindow" in spec:
        tw = spec["timeWindow"]
        twc = sc.at("timeWindow")
        if not isinstance(tw, list) or len(tw) != 1:
            raise twc.error("expected a list with exactly one time window")
        w = _mapping(tw[0], twc.at(0), required=("duration",), optional=("isRolling", "calendar"))
        period = _duration(w["duration"], twc.at(0).at("duration"), openslo=True)
    service = str(spec.get("service") or name)
    if not _NAME.match(service):
        raise sc.at("service").error(f"{service!r} is not a valid name")
    objectives = spec["objectives"]
    if not isinstance(objectives, list) or not objectives:
        raise sc.at("objectives").error("expected a non-empty list of objectives")
    out: list[SLO] = []
    for i, item in enumerate(objectives):
        oc = sc.at("objectives").at(i)
        o = _mapping(
            item,
            oc,
            optional=(
                "displayName",
                "op",
                "value",
                "target",
                "targetPercent",
                "timeSliceTarget",
                "timeSliceWindow",
            ),
        )
        if ("target" in o) == ("targetPercent" in o):
            raise oc.error("give exactly one of target, targetPercent")
        if "target" in o:
            objective = _objective(_number(o["target"], oc.at("target")), oc.at("target"))
        else:
            pct = _number(o["targetPercent"], oc.at("targetPercent"))
            objective = _objective(pct, oc.at("targetPercent"), scale=100.0)
        sli = _openslo_sli(indicator, method, o, oc)
        suffix = ""
        if len(objectives) > 1:
            label = str(o.get("displayName") or i)
            suffix = "-" + (re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-").lower() or str(i))
        slo_name = name + suffix
        out.append(
            SLO(
                name=slo_name,
                service=service,
                objective=objective,
                period_ms=period,
                sli=sli,
                alerting=Alerting(name=_camel(f"{service}-{slo_name}") + "BudgetBurn"),
                description=str(spec.get("description") or ""),
                labels=_labels(meta.get("labels"), ctx.at("metadata").at("labels")),
                source=ctx.source,
            )
        )
    return out


def _parse_openslo(docs: list[Any], source: str, default_period_ms: int) -> list[SLO]:
    slis: dict[str, tuple[Any, _Ctx]] = {}
    slo_docs: list[tuple[dict[str, Any], _Ctx]] = []
    for i, doc in enumerate(docs):
        ctx = _Ctx(source, f"document {i + 1}")
        if not isinstance(doc, dict):
            raise ctx.error(f"expected a mapping, got {type(doc).__name__}")
        if doc.get("apiVersion") != "openslo/v1":
            raise ctx.at("apiVersion").error(f"expected openslo/v1, got {doc.get('apiVersion')!r}")
        kind = doc.get("kind")
        if kind not in _OPENSLO_KINDS:
            raise ctx.at("kind").error(f"expected one of {', '.join(_OPENSLO_KINDS)}, got {kind!r}")
        if kind == "SLI":
            b = _mapping(doc, ctx, required=("apiVersion", "kind", "metadata", "spec"))
            meta = _mapping(
                b["metadata"],
                ctx.at("metadata"),
                required=("name",),
                optional=("displayName", "labels", "annotations"),
            )
            sli_name = _str(meta["name"], ctx.at("metadata").at("name"), pattern=_NAME)
            if sli_name in slis:
                raise ctx.at("metadata").at("name").error(f"SLI {sli_name!r} defined twice")
            slis[sli_name] = (b["spec"], ctx.at("spec"))
        elif kind == "SLO":
            slo_docs.append((doc, ctx))
    if not slo_docs:
        raise SLOSpecError(f"{source}: no kind: SLO document")
    out: list[SLO] = []
    for doc, ctx in slo_docs:
        out.extend(_openslo_slo(doc, ctx, slis, default_period_ms))
    return out


# -- entry points -----------------------------------------------------------------------------


def parse_slos(
    text: str, source: str = "<string>", *, default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS
) -> list[SLO]:
    """All SLOs of a YAML text in any of the three formats; ``source`` names it in errors."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SLOSpecError(f"{source}: malformed YAML{where}: {problem}") from None
    if not docs:
        raise SLOSpecError(f"{source}: empty file, no SLOs")
    first = docs[0]
    if not isinstance(first, dict):
        raise SLOSpecError(f"{source}: expected a mapping at the top, got {type(first).__name__}")
    if "apiVersion" in first:
        slos = _parse_openslo(docs, source, default_period_ms)
    else:
        if len(docs) > 1:
            raise SLOSpecError(
                f"{source}: several YAML documents are only read for OpenSLO (apiVersion: openslo/v1)"
            )
        version = first.get("version")
        ctx = _Ctx(source)
        if version == _OWN_VERSION:
            slos = _parse_own(first, ctx)
        elif version == "prometheus/v1":
            slos = _parse_sloth(first, ctx, default_period_ms)
        else:
            raise ctx.at("version").error(
                f"expected {_OWN_VERSION} or prometheus/v1 (or apiVersion: openslo/v1), got {version!r}"
            )
    seen: set[str] = set()
    for slo in slos:
        if slo.id in seen:
            raise SLOSpecError(f"{source}: SLO {slo.name!r} of service {slo.service!r} defined twice")
        seen.add(slo.id)
    return slos


def load_slos(path: str | Path, *, default_period_ms: int = DEFAULT_SLOTH_PERIOD_MS) -> list[SLO]:
    """Read and validate an SLO file (any of the three formats)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SLOSpecError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SLOSpecError(f"{p}: cannot read: {exc}") from None
    return parse_slos(text, str(p), default_period_ms=default_period_ms)
