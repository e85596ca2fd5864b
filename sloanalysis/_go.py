"""Go and Prometheus compatibility: number formatting, label-set hashing, name rules, matcher operators.

Prometheus prints numbers with Go's ``strconv.FormatFloat`` (``count_values`` label values, promtool
output) or ``fmt``'s ``%g``/``%v`` (warnings, templates); it hashes label sets with XXH64 (rule
group offsets, ``limit_ratio``). Each rule lives here once so every reproduction agrees.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

import xxhash

__all__ = [
    "LABEL_NAME_RE",
    "MATCH_OPS",
    "METRIC_NAME_RE",
    "format_float",
    "format_label_value",
    "is_label_name",
    "is_metric_name",
    "match_op",
    "xxhash64",
]

# -- strconv.FormatFloat ------------------------------------------------------------------------


def _digits(v: float, fmt: str, prec: int) -> tuple[str, int]:
    """Decimal digits of ``v >= 0`` rounded as Go does, and the point position.

    As Go's ``decimalSlice``: ``v == 0.d1d2... * 10**dp``, trailing zeros trimmed, ``("", 0)`` for 0.
    Python's ``repr`` gives the same shortest round-trip digits as Go; its fixed-precision formats
    round the exact binary value half-to-even, as Go does.
    """
    if v == 0:
        return "", 0
    if prec < 0:
        text = repr(v)
    elif fmt == "f":
        text = f"{v:.{prec}f}"
    else:  # e: prec digits after the point; g: prec significant digits
        text = f"{v:.{prec if fmt == 'e' else max(prec, 1) - 1}e}"
    _, digit_tuple, exp = Decimal(text).as_tuple()
    assert isinstance(exp, int)
    digits = "".join(map(str, digit_tuple))
    dp = len(digits) + exp
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    stripped = stripped.rstrip("0")
    return (stripped, dp) if stripped else ("", 0)


def _fmt_e(digits: str, dp: int, prec: int, e: str) -> str:
    out = digits[:1] or "0"
    if prec > 0:
        out += "." + digits[1 : prec + 1].ljust(prec, "0")
    exp = dp - 1 if digits else 0
    return f"{out}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fmt_f(digits: str, dp: int, prec: int) -> str:
    out = (digits[:dp].ljust(dp, "0")) if dp > 0 else "0"
    if prec > 0:
        frac = "".join(digits[j] if 0 <= j < len(digits) else "0" for j in range(dp, dp + prec))
        out += "." + frac
    return out


def format_float(x: float, fmt: str = "g", prec: int = -1) -> str:
    """Go's ``strconv.FormatFloat(x, fmt, prec, 64)`` for ``fmt`` in ``e E f g G``.

    ``prec = -1`` is the shortest text that reads back as ``x``. Shortest ``g`` switches to the
    exponent form below 1e-4 and from 1e6 (Go fixes that threshold at 6), so ``fmt.Sprint(x)``
    and Prometheus's ``%g``/``%v`` messages are ``format_float(x)``. NaN and the infinities come
    out as ``NaN``, ``+Inf`` and ``-Inf``, as in Go.
    """
    x = float(x)  # numpy scalars' repr is not the bare number
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if fmt not in ("e", "E", "f", "g", "G"):
        raise ValueError(f"unsupported format {fmt!r}")
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    low = fmt.lower()
    digits, dp = _digits(abs(x), low, prec)
    shortest = prec < 0
    if low == "e":
        return sign + _fmt_e(digits, dp, len(digits) - 1 if shortest else prec, "E" if fmt == "E" else "e")
    if low == "f":
        return sign + _fmt_f(digits, dp, max(len(digits) - dp, 0) if shortest else prec)
    # g: as strconv's %g, including its choice between the e and f forms.
    nd = len(digits)
    if shortest:
        prec, eprec = nd, 6
    else:
        prec = max(prec, 1)
        eprec = nd if prec > nd >= dp else prec
    exp = dp - 1
    if exp < -4 or exp >= eprec:
        return sign + _fmt_e(digits, dp, min(prec, nd) - 1 if nd else 0, "E" if fmt == "G" else "e")
    return sign + _fmt_f(digits, dp, max((nd if prec > dp else prec) - dp, 0))


def format_label_value(v: float) -> str:
    """A float as a Prometheus label value (``count_values``): ``FormatFloat(v, 'f', -1, 64)``."""
    return format_float(v, "f")


# -- XXH64 --------------------------------------------------------------------------------------


def xxhash64(data: bytes, seed: int = 0) -> int:
    """XXH64 as Prometheus computes it (``cespare/xxhash``, seed 0)."""
    return xxhash.xxh64_intdigest(data, seed)


# -- names and matchers -------------------------------------------------------------------------

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*\Z")  # \Z: "$" would allow a final newline
"""Prometheus's legacy metric name (also what rule files accept for record and alert names)."""
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*\Z")
"""Prometheus's legacy label name."""


def is_metric_name(name: str) -> bool:
    return METRIC_NAME_RE.match(name) is not None


def is_label_name(name: str) -> bool:
    return LABEL_NAME_RE.match(name) is not None


MATCH_OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}
"""promql_parser's ``MatchOp`` member names to PromQL's operator text."""


def match_op(op: object) -> str:
    """PromQL text (``=~``) of a promql_parser ``MatchOp`` (``MatchOp.Re``) or its name."""
    return MATCH_OPS[str(op).rsplit(".", 1)[-1]]
