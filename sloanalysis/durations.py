"""Durations: Prometheus's syntax (``1d2h30m``, ``15s``, ``250ms``) to and from milliseconds, and the
human form tables show (``8m38.4s``).

One grammar, Prometheus's ``model.ParseDuration``: units ``y w d h m s ms``, each at most once and
largest first, whole numbers, ``0`` alone without a unit (so ``5m1h``, ``1.5h`` and ``1m1m`` are
errors everywhere). :func:`parse_prometheus_duration` is exactly that (rule files, templates,
promqltest scripts). :func:`parse_duration_ms` is the one parser of the tool's own inputs (CLI
options, scenario and SLO files, the query API): that grammar, a leading ``-``, a
``timedelta``, or a number without a unit. A number without a unit is seconds, as the
Prometheus HTTP API reads ``step=15`` (``"15"``, ``0.5``, ``1e3``, a YAML ``90``); only where
a caller says ``ints_are_ms=True`` (the Python query API, whose times are int milliseconds
too) is a Python ``int`` taken as milliseconds. :func:`format_duration_ms` is
``model.Duration.String``.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

import numpy as np

from sloanalysis.errors import UserError

__all__ = [
    "UNITS_MS",
    "format_duration_human",
    "format_duration_ms",
    "is_prometheus_duration",
    "parse_duration_ms",
    "parse_prometheus_duration",
]

UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
"""Prometheus's duration units, largest first; a year is 365 days."""

# model.ParseDuration's pattern: each unit at most once, largest first, whole numbers.
# (\Z, not $: Python's $ also matches before a final newline.)
_PROMETHEUS = re.compile("^" + "".join(f"(?:([0-9]+){unit})?" for unit in UNITS_MS) + r"\Z")
# A number without a unit, as Go's strconv.ParseFloat reads the HTTP API's ``step=``: seconds.
_SECONDS = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_MAX_MS = (2**63 - 1) // 1_000_000  # Go's time.Duration is int64 nanoseconds


def is_prometheus_duration(text: str) -> bool:
    """Whether ``text`` is in Prometheus's duration syntax (see :func:`parse_prometheus_duration`)."""
    return text == "0" or (text != "" and _PROMETHEUS.match(text) is not None)


def parse_prometheus_duration(text: str, *, what: str = "duration") -> int:
    """Milliseconds of a Prometheus duration, exactly as ``model.ParseDuration`` reads it.

    Units ``y w d h m s ms``, each at most once and largest first, with whole numbers; ``0``
    alone needs no unit. Anything else raises UserError naming ``what``.
    """
    if text == "0":
        return 0
    if text == "":
        raise UserError(f"{what}: empty duration string")
    m = _PROMETHEUS.match(text)
    if m is None:
        raise UserError(f'{what}: not a valid duration string: "{text}"')
    ms = sum(int(n) * size for n, size in zip(m.groups(), UNITS_MS.values(), strict=True) if n)
    if ms > _MAX_MS:
        raise UserError(f'{what}: duration out of range: "{text}"')
    return ms


def parse_duration_ms(
    text: str | int | float | timedelta, *, what: str = "duration", ints_are_ms: bool = False
) -> int:
    """Milliseconds of a duration the tool accepts: a Prometheus duration (``1d2h``), one with a
    leading ``-``, a ``timedelta``, or a number of seconds (``90``, ``"0.5"``). With
    ``ints_are_ms`` a Python int (not text) is milliseconds already. Raises UserError naming
    ``what``."""
    if isinstance(text, bool):
        raise UserError(f"{what}: expected a duration like '15s' or '1d2h', got {text!r}")
    if isinstance(text, timedelta):
        return _finite_ms(text.total_seconds(), what, text)
    if isinstance(text, int | np.integer) and ints_are_ms:
        return int(text)
    if isinstance(text, int | float | np.integer | np.floating):
        return _finite_ms(float(text), what, text)
    s = str(text).strip()
    if _SECONDS.match(s):
        return _finite_ms(float(s), what, text)
    body = s.removeprefix("-")
    if body and _PROMETHEUS.match(body):
        ms = parse_prometheus_duration(body, what=what)
        return -ms if s.startswith("-") else ms
    raise UserError(
        f"{what}: expected a duration like '15s' or '1d2h' (whole numbers, units y w d h m s ms "
        f"largest first) or a number of seconds, got {text!r}"
    )


def _finite_ms(seconds: float, what: str, text: object) -> int:
    ms = seconds * 1000
    if not math.isfinite(ms) or abs(ms) > _MAX_MS:
        raise UserError(f"{what}: expected a finite duration, got {text!r}")
    return round(ms)


def format_duration_ms(ms: int) -> str:
    """Prometheus's ``model.Duration.String``: ``90000`` -> ``1m30s``, ``0`` -> ``0s``, 7 days -> ``1w``.

    Years and weeks are used only when they divide the duration exactly (``8d``, not ``1w1d``).
    A negative duration, which Prometheus prints as an empty string, gets a ``-`` in front.
    """
    if ms < 0:
        return "-" + format_duration_ms(-ms)
    if ms == 0:
        return "0s"
    rest, parts = int(ms), []
    for unit, size in UNITS_MS.items():
        if unit in ("y", "w") and rest % size:
            continue
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n}{unit}")
    return "".join(parts)


def format_time_left(ms: float | None) -> str:
    """Time until an error budget is exhausted: ``exhausted`` when it already is (zero or less)."""
    if ms is not None and not math.isnan(ms) and ms <= 0:
        return "exhausted"
    return format_duration_human(ms)


def format_duration_human(ms: float | None) -> str:
    """A duration for people, the same in the CLI, Markdown and HTML: ``350ms``, ``51.8s``,
    ``38m55s``, ``2d3h``: three significant digits under a minute, then the two largest units
    (rounded to the second). ``never`` for None or an infinity, ``-`` for NaN. JSON and CSV keep the
    exact number of milliseconds instead.
    """
    if ms is None or (isinstance(ms, float) and math.isinf(ms)):
        return "never"
    if isinstance(ms, float) and math.isnan(ms):
        return "-"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if round(ms) < 1000:
        return f"{sign}{round(ms)}ms"
    if ms < 59_500:
        seconds = f"{ms / 1000:.3g}"
        return f"{sign}{seconds}s"
    rest = round(ms / 1000) * 1000
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):
        n, rest = divmod(rest, UNITS_MS[unit])
        if n or parts:
            parts.append(f"{n}{unit}" if n else "")
        if len(parts) == 2:
            break
    return sign + "".join(parts)
