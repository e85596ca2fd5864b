"""What the SLO spec readers share: field types checked by pydantic, and small builders.

Each type checks one field and raises ValueError with the message; pydantic adds the field's
path and :mod:`sloanalysis.config` turns it into one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Annotated, Any, NoReturn

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
from sloanalysis.config import FieldError, Loc, located, null_is_absent
from sloanalysis.durations import format_duration_ms, parse_duration_ms
from sloanalysis.errors import UserError
from sloanalysis.slo.spec import (
    MAX_DURATION_MS,
    WINDOW_PLACEHOLDER,
    Alerting,
    SLOSpecError,
    ThresholdAlert,
    render_window,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_OPENSLO_DURATION = re.compile(r"^(\d+)([MQY])$")
_OPENSLO_UNITS_MS = {"M": 30 * 86_400_000, "Q": 90 * 86_400_000, "Y": 365 * 86_400_000}

# -- field types -------------------------------------------------------------------------------
# Each type checks one field and raises ValueError with the message; pydantic adds the field's
# path and sloanalysis.config turns it into one line.


def non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def name_check(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid name")
        return value

    return check


def labels_of(value: Any) -> dict[str, str]:
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


def duration_ms(value: Any, *, openslo: bool = False, minimum: int = 1) -> int:
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


def objective_check(scale: float) -> Callable[[float], float]:
    """``value / scale`` checked to lie strictly between 0 and 1."""

    def check(value: float) -> float:
        if not 0.0 < value / scale < 1.0:
            shown = "(0, 100)" if scale == 100.0 else "(0, 1)"
            raise ValueError(f"objective must lie in {shown} exclusive, got {value!r}")
        return value / scale

    return check


def in_range(low: float, high: float, *, closed_high: bool = False) -> Callable[[float], float]:
    def check(value: float) -> float:
        if not (low < value <= high if closed_high else low < value < high):
            raise ValueError(f"must lie in ({low:g}, {high:g}{']' if closed_high else ')'}, got {value!r}")
        return value

    return check


def check_promql(expr: str) -> str:
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


def counter_template(query: str) -> str:
    """A window template for a counter query: kept if it has ``{{.window}}``, else wrapped in ``rate``.

    Accepted without a placeholder: a plain selector ``m{...}`` and ``sum [by|without (...)] (m{...})``.
    """
    query = check_promql(non_empty(query).strip())
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


def window_template(query: str) -> str:
    query = non_empty(query).strip()
    if not WINDOW_PLACEHOLDER.search(query):
        raise ValueError(f"{query!r}: the query needs the {{{{.window}}}} placeholder in its range")
    return check_promql(query)


Text = Annotated[str, AfterValidator(non_empty)]
Name = Annotated[str, AfterValidator(non_empty), AfterValidator(name_check(_NAME))]
AlertName = Annotated[str, AfterValidator(non_empty), AfterValidator(name_check(METRIC_NAME_RE))]
MetricName = Annotated[str, AfterValidator(non_empty), AfterValidator(name_check(METRIC_NAME_RE))]
Labels = Annotated[dict[str, str], BeforeValidator(labels_of)]
Number = FiniteFloat
Duration = Annotated[int, BeforeValidator(duration_ms)]
"""Positive milliseconds from ``5m``, ``1d2h`` or a number of seconds."""
NonNegativeDuration = Annotated[int, BeforeValidator(partial(duration_ms, minimum=0))]
OpenSLODuration = Annotated[int, BeforeValidator(partial(duration_ms, openslo=True))]
Ratio = Annotated[FiniteFloat, AfterValidator(objective_check(1.0))]
Percent = Annotated[FiniteFloat, AfterValidator(objective_check(100.0))]
"""An objective in percent, held as a ratio."""
CounterQuery = Annotated[str, AfterValidator(counter_template)]
WindowQuery = Annotated[str, AfterValidator(window_template)]
PromQL = Annotated[str, AfterValidator(lambda q: check_promql(non_empty(q).strip()))]
"""A PromQL expression, stripped, that parses."""


def exactly_one(model: BaseModel, names: Sequence[str]) -> str:
    """The one field of ``names`` that is set; raises naming them all otherwise."""
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(names)}")
    return given[0]


class Closed(BaseModel):
    """A closed format: unknown fields are errors, YAML types are not coerced, and a field set to
    null counts as not given (its default, or "required field is missing")."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: Any) -> Any:
        return null_is_absent(cls, data)


# -- shared parts of the project's and Sloth's formats ---------------------------------------


class AlertPart(Closed):
    """The page or ticket alert: on unless disabled, with its own labels and annotations."""

    disable: bool = False
    labels: Labels = Field(default_factory=dict)
    annotations: Labels = Field(default_factory=dict)


def alerting_of(
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    page: AlertPart | None,
    ticket: AlertPart | None,
    threshold: ThresholdAlert | None = None,
) -> Alerting:
    """Alerting settings; a page or ticket part not given is an enabled alert without extras."""
    page, ticket = page or AlertPart(), ticket or AlertPart()
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


def camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def is_rate(template: str) -> bool:
    """True unless the query counts with ``increase`` rather than ``rate``/``irate``."""
    return not ("increase(" in template and "rate(" not in template.replace("increase(", ""))


def non_empty_list(items: list[Any]) -> list[Any]:
    if not items:
        raise ValueError("expected a non-empty list of SLOs")
    return items


class Fail:
    """Raises one-line errors about fields under ``loc`` of ``source``."""

    def __init__(self, source: str, loc: Loc) -> None:
        self.source, self.loc = source, loc

    def __call__(self, field: str, message: str) -> NoReturn:
        raise SLOSpecError(located(self.source, (*self.loc, field), message))
