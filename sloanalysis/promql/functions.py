"""Functions over instant vectors and scalars (math, clamping, dates, labels, sorting)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from sloanalysis.promql.parse import PromQLError
from sloanalysis.promql.values import Vec, drop_name, get_label, set_label
from sloanalysis.regex import InvalidRegexError, PromRegex, compile_regex
from sloanalysis.store import METRIC_NAME, Labels


def _sgn(v: np.ndarray) -> np.ndarray:
    return np.where(v < 0, -1.0, np.where(v > 0, 1.0, v))


MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs,
    "acos": np.arccos,
    "acosh": np.arccosh,
    "asin": np.arcsin,
    "asinh": np.arcsinh,
    "atan": np.arctan,
    "atanh": np.arctanh,
    "ceil": np.ceil,
    "cos": np.cos,
    "cosh": np.cosh,
    "deg": lambda v: v * 180 / np.pi,
    "exp": np.exp,
    "floor": np.floor,
    "ln": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "rad": lambda v: v * np.pi / 180,
    "sgn": _sgn,
    "sin": np.sin,
    "sinh": np.sinh,
    "sqrt": np.sqrt,
    "tan": np.tan,
    "tanh": np.tanh,
}


def apply_math(name: str, vec: Vec) -> Vec:
    with np.errstate(all="ignore"):
        values = MATH[name](vec.values)
    return Vec([drop_name(lab) for lab in vec.labels], values, vec.present)


def round_to(vec: Vec, to_nearest: np.ndarray) -> Vec:
    with np.errstate(all="ignore"):
        inv = 1.0 / to_nearest[None, :]
        values = np.floor(vec.values * inv + 0.5) / inv
    return Vec([drop_name(lab) for lab in vec.labels], values, vec.present)


def clamp(vec: Vec, lo: np.ndarray, hi: np.ndarray) -> Vec:
    values = np.maximum(lo[None, :], np.minimum(hi[None, :], vec.values))
    # np.maximum propagates NaN bounds like Go's math.Max/Min.
    present = vec.present & ~(hi < lo)[None, :]
    return Vec([drop_name(lab) for lab in vec.labels], values, present)


# -- dates --------------------------------------------------------------------------------


def _civil(seconds: np.ndarray) -> dict[str, np.ndarray]:
    finite = np.isfinite(seconds)
    secs = np.where(finite, np.trunc(np.where(finite, seconds, 0)), 0).astype(np.int64)
    days = np.floor_divide(secs, 86400)
    sod = secs - days * 86400
    d = days.astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    year_start = d.astype("datetime64[Y]")
    next_month = (month_start + 1).astype("datetime64[D]")
    out = {
        "year": year_start.astype(np.int64) + 1970,
        "month": month_start.astype(np.int64) % 12 + 1,
        "day_of_month": (d - month_start.astype("datetime64[D]")).astype(np.int64) + 1,
        "day_of_year": (d - year_start.astype("datetime64[D]")).astype(np.int64) + 1,
        "day_of_week": (days + 4) % 7,
        "days_in_month": (next_month - month_start.astype("datetime64[D]")).astype(np.int64),
        "hour": sod // 3600,
        "minute": (sod % 3600) // 60,
    }
    return {k: np.where(finite, v.astype(np.float64), np.nan) for k, v in out.items()}


DATE_FUNCTIONS = (
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
)


def date_part(name: str, seconds: np.ndarray) -> np.ndarray:
    return _civil(seconds)[name]


# -- labels -------------------------------------------------------------------------------


def _valid_label_name(name: str) -> bool:
    # Prometheus 3 accepts any non-empty UTF-8 label name (invalid bytes are caught earlier).
    return name != ""


def _go_template(repl: str) -> Callable[[Any], str]:
    """Expand Go's ``$1``/``${name}`` references the way regexp.Expand does."""
    token = re.compile(r"\$(\$|\{([^}]*)\}|([A-Za-z0-9_]+))")

    def expand(m: Any) -> str:  # an RE2 match object
        def sub(t: re.Match[str]) -> str:
            if t.group(1) == "$":
                return "$"
            name = t.group(2) if t.group(2) is not None else t.group(3)
            if name is None:
                return ""
            try:
                value = m.group(int(name)) if name.isdigit() else m.group(name)
            except IndexError:  # unknown group expands to nothing, as in Go
                return ""
            return value or ""

        return token.sub(sub, repl)

    return expand


def _compile(regex: str, prometheus2: bool) -> PromRegex:
    try:
        return compile_regex(regex, dot_matches_newline=not prometheus2)
    except InvalidRegexError:
        raise PromQLError(f"invalid regular expression in label_replace(): {regex}") from None


def label_replace(vec: Vec, dst: str, repl: str, src: str, regex: str, *, prometheus2: bool = False) -> Vec:
    """``prometheus2``: compile as 2.x does (``^(?:re)$``, where ``.`` stops at a newline)."""
    pattern = _compile(regex, prometheus2)
    if not _valid_label_name(dst):
        raise PromQLError(f"invalid destination label name in label_replace(): {dst}")
    expand = _go_template(repl)
    labels: list[Labels] = []
    # A match that writes __name__ keeps the name a delayed removal would have dropped.
    drop = None if vec.drop is None else vec.drop.copy()
    for i, lab in enumerate(vec.labels):
        m = pattern.match(get_label(lab, src))
        labels.append(set_label(lab, dst, expand(m)) if m else lab)
        if m and drop is not None and dst == METRIC_NAME:
            drop[i] = False
    return Vec(labels, vec.values, vec.present, hist=vec.hist, drop=drop)


def label_join(vec: Vec, dst: str, sep: str, srcs: list[str]) -> Vec:
    for s in srcs:
        if not _valid_label_name(s):
            raise PromQLError(f"invalid source label name in label_join(): {s}")
    if not _valid_label_name(dst):
        raise PromQLError(f"invalid destination label name in label_join(): {dst}")
    labels = [set_label(lab, dst, sep.join(get_label(lab, s) for s in srcs)) for lab in vec.labels]
    drop = None if vec.drop is None or dst == METRIC_NAME else vec.drop
    return Vec(labels, vec.values, vec.present, hist=vec.hist, drop=drop)


# -- sorting (only meaningful for instant queries) -----------------------------------------


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    parts = re.split(r"(\d+)", text)
    return [(0, int(p)) if p.isdigit() else (1, p) for p in parts if p != ""]


def sort_order(vec: Vec, name: str, label_args: list[str]) -> list[int]:
    rows = [i for i in range(len(vec.labels)) if vec.present[i, 0]]
    if name in ("sort", "sort_desc"):
        vals = vec.values[:, 0]
        nan = [i for i in rows if np.isnan(vals[i])]
        num = [i for i in rows if not np.isnan(vals[i])]
        num.sort(key=lambda i: vals[i], reverse=name == "sort_desc")
        return num + nan
    desc = name == "sort_by_label_desc"

    def key(i: int) -> tuple[list[list[tuple[int, int | str]]], Labels]:
        lab = vec.labels[i]
        return [_natural_key(get_label(lab, n)) for n in label_args], lab

    rows.sort(key=key, reverse=desc)
    return rows


def absent_labels(matchers: list[tuple[str, str, str]]) -> Labels:
    """Labels of ``absent()``'s output: the equality matchers, minus repeated names."""
    out: dict[str, str] = {}
    has: set[str] = set()
    for name, op, value in matchers:
        if name == METRIC_NAME:
            continue
        if op == "=" and name not in has:
            out[name] = value
            has.add(name)
        else:
            out.pop(name, None)
    return tuple(sorted((k, v) for k, v in out.items() if v != ""))
