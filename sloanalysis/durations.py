"""Prometheus duration strings (``1d2h30m``, ``15s``, ``250ms``) to and from milliseconds."""

from __future__ import annotations

import re

from sloanalysis.errors import UserError

_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|y|w|d|h|m|s)")


def parse_duration_ms(text: str | int | float, *, what: str = "duration") -> int:
    """Milliseconds of ``text``; a bare number is seconds. Raises UserError naming ``what``."""
    if isinstance(text, bool):
        raise UserError(f"{what}: expected a duration like '15s' or '1d2h', got {text!r}")
    if isinstance(text, int | float):
        return round(float(text) * 1000)
    s = str(text).strip()
    if s.startswith("-") and len(s) > 1 and not re.fullmatch(r"-?\d+(?:\.\d+)?", s):
        return -parse_duration_ms(s[1:], what=what)
    if re.fullmatch(r"-?\d+(?:\.\d+)?", s):
        return round(float(s) * 1000)
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UserError(f"{what}: expected a duration like '15s' or '1d2h', got {text!r}")
    return round(total)


def format_duration_ms(ms: int) -> str:
    """Shortest Prometheus duration for ``ms`` (``90000`` -> ``1m30s``)."""
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    rest, parts = abs(ms), []
    for unit in ("d", "h", "m", "s", "ms"):
        n, rest = divmod(rest, _UNITS_MS[unit])
        if n:
            parts.append(f"{n}{unit}")
    return sign + "".join(parts)
