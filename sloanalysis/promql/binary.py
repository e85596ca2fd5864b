"""Binary operators: arithmetic, comparisons and set operations with vector matching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sloanalysis.nativehist import FloatHistogram, IncompatibleHistograms
from sloanalysis.promql.parse import PromQLError
from sloanalysis.promql.values import (
    METADATA_LABELS,
    Annotations,
    Vec,
    drop_name,
    get_label,
    is_histogram,
    keep_labels,
    labels_str,
    merge_same_labels,
    remove_labels,
    set_label,
)
from sloanalysis.promql.values import hist_cells as _hist_cells
from sloanalysis.store import Labels

ARITHMETIC = ("+", "-", "*", "/", "%", "^", "atan2")
COMPARISON = ("==", "!=", ">", "<", ">=", "<=")
SET_OPS = ("and", "or", "unless")


@dataclass(frozen=True)
class Matching:
    card: str  # "one-to-one", "many-to-one", "one-to-many", "many-to-many"
    on: bool
    labels: tuple[str, ...]
    include: tuple[str, ...] = ()
    return_bool: bool = False


def arith(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
    raise PromQLError(f"operator {op!r} not allowed for scalar operations")


def compare(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == ">":
            return a > b
        if op == "<":
            return a < b
        if op == ">=":
            return a >= b
        return a <= b


def scalar_scalar(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if op in COMPARISON:
        return compare(op, a, b).astype(np.float64)
    return arith(op, a, b)


def vector_scalar(
    op: str,
    vec: Vec,
    scalar: np.ndarray,
    scalar_left: bool,
    return_bool: bool,
    annots: Annotations | None = None,
    pos: str = "",
    *,
    delayed: bool = False,
) -> Vec:
    """``delayed``: mark the rows whose name goes (delayed name removal) instead of dropping it."""
    if vec.hist is not None:
        return _histogram_vector_scalar(op, vec, scalar, scalar_left, return_bool, annots, pos, delayed)
    s = scalar[None, :]
    lhs, rhs = (s, vec.values) if scalar_left else (vec.values, s)
    if op in COMPARISON:
        keep = compare(op, lhs, rhs)
        if return_bool:
            values = keep.astype(np.float64)
            present = vec.present
        else:
            values = vec.values  # the vector's value survives, whichever side it is on
            present = vec.present & keep
    else:
        values = np.broadcast_to(arith(op, lhs, rhs), vec.values.shape)
        present = vec.present
    labels, drop = _drop_names(vec, op in ARITHMETIC or return_bool, delayed)
    return merge_same_labels(Vec(labels, np.array(values), present, drop=drop))


def _drop_names(vec: Vec, drops: bool, delayed: bool) -> tuple[list[Labels], np.ndarray | None]:
    """Labels and delayed-removal marks of a result whose rows are ``vec``'s rows."""
    if not drops:
        return vec.labels, vec.drop
    if delayed:
        return vec.labels, np.ones(len(vec.labels), dtype=bool)
    return [drop_name(lab) for lab in vec.labels], None


def _histogram_vector_scalar(
    op: str,
    vec: Vec,
    scalar: np.ndarray,
    scalar_left: bool,
    return_bool: bool,
    annots: Annotations | None,
    pos: str,
    delayed: bool,
) -> Vec:
    """Floats as usual; each histogram point through :func:`histogram_cell` against the scalar."""
    hm = vec.hist_mask()
    out = vector_scalar(op, vec.floats_only(), scalar, scalar_left, return_bool, delayed=delayed)
    if not hm.any():
        return out
    labels, drop = _drop_names(vec, op in ARITHMETIC or return_bool, delayed)
    values, present, hist = (
        np.zeros(vec.values.shape),
        np.zeros(vec.values.shape, dtype=bool),
        _hist_cells(vec.values.shape),
    )
    assert vec.hist is not None
    for i, t in zip(*np.nonzero(hm), strict=True):
        f = float(scalar[t])
        h = vec.hist[i, t]
        if scalar_left:
            got = histogram_cell(op, f, None, 0.0, h, return_bool, annots, pos)
        else:
            got = histogram_cell(op, 0.0, h, f, None, return_bool, annots, pos)
        if got is not None:
            present[i, t] = True
            if isinstance(got, FloatHistogram):
                values[i, t], hist[i, t] = np.nan, got
            else:
                values[i, t] = got
    hist_part = Vec(labels, values, present, hist=hist, drop=drop)
    return merge_same_labels(_stack(out, hist_part))


def _stack(a: Vec, b: Vec) -> Vec:
    if not a.labels:
        return b
    hist_a = a.hist if a.hist is not None else _hist_cells(a.values.shape)
    hist_b = b.hist if b.hist is not None else _hist_cells(b.values.shape)
    return Vec(
        list(a.labels) + list(b.labels),
        np.concatenate([a.values, b.values]),
        np.concatenate([a.present, b.present]),
        hist=np.concatenate([hist_a, hist_b]),
        drop=_stack_drop(a, b),
    )


def _stack_drop(a: Vec, b: Vec) -> np.ndarray | None:
    """The delayed-removal marks of ``a``'s rows followed by ``b``'s (None when neither has any)."""
    if a.drop is None and b.drop is None:
        return None
    parts = [v.drop if v.drop is not None else np.zeros(len(v.labels), dtype=bool) for v in (a, b)]
    return np.concatenate(parts)


def _type(h: FloatHistogram | None) -> str:
    return "float" if h is None else "histogram"


def histogram_cell(
    op: str,
    lf: float,
    lh: FloatHistogram | None,
    rf: float,
    rh: FloatHistogram | None,
    return_bool: bool,
    annots: Annotations | None,
    pos: str,
) -> float | FloatHistogram | None:
    """``lhs op rhs`` where at least one side is a histogram (Prometheus 3's rules): histograms
    add and subtract, scale by a float (``h * f``, ``f * h``, ``h / f``) and compare with ``==``/``!=``;
    anything else drops the point with an info annotation."""
    if op in COMPARISON and op in ("==", "!=") and lh is not None and rh is not None:
        equal = lh.same_as(rh)
        keep = equal if op == "==" else not equal
        if return_bool:
            return 1.0 if keep else 0.0
        return lh if keep else None
    try:
        if op in ("+", "-") and lh is not None and rh is not None:
            out, reconciled = lh.add(rh) if op == "+" else lh.sub(rh)
            if reconciled and annots is not None:
                during = "addition" if op == "+" else "subtraction"
                annots.info(f"PromQL info: mismatched custom buckets were reconciled during {during} ({pos})")
            return out
    except IncompatibleHistograms:
        if annots is not None:
            annots.warn(
                "PromQL warning: vector contains a mix of histograms with exponential and custom "
                f'buckets schemas for metric name "" ({pos})'
            )
        return None
    if op == "*" and lh is not None and rh is None:
        return lh.scale(rf)
    if op == "*" and lh is None and rh is not None:
        return rh.scale(lf)
    if op == "/" and lh is not None and rh is None:
        return lh.divide(rf)
    if annots is not None:
        annots.info(
            f'PromQL info: incompatible sample types encountered for binary operator "{op}": '
            f"{_type(lh)} {op} {_type(rh)} ({pos})"
        )
    return None


def signature(labels: Labels, matching: Matching) -> Labels:
    if matching.on:
        return keep_labels(labels, matching.labels)
    return remove_labels(labels, [*matching.labels, *METADATA_LABELS])


def _group(sigs: Sequence[Labels]) -> dict[Labels, list[int]]:
    out: dict[Labels, list[int]] = {}
    for i, sig in enumerate(sigs):
        out.setdefault(sig, []).append(i)
    return out


def set_operation(op: str, lhs: Vec, rhs: Vec, matching: Matching) -> Vec:
    lsig = [signature(lab, matching) for lab in lhs.labels]
    rsig = [signature(lab, matching) for lab in rhs.labels]
    t = lhs.values.shape[1]
    rgroups = _group(rsig)

    def rhs_has(sig: Labels) -> np.ndarray:
        rows = rgroups.get(sig)
        return np.asarray(rhs.present[rows].any(axis=0)) if rows else np.zeros(t, dtype=bool)

    if op == "and":
        present = np.array([lhs.present[i] & rhs_has(s) for i, s in enumerate(lsig)]).reshape(-1, t)
        return Vec(list(lhs.labels), lhs.values, present, hist=lhs.hist, drop=lhs.drop)
    if op == "unless":
        present = np.array([lhs.present[i] & ~rhs_has(s) for i, s in enumerate(lsig)]).reshape(-1, t)
        return Vec(list(lhs.labels), lhs.values, present, hist=lhs.hist, drop=lhs.drop)
    # or: all of lhs, plus rhs rows whose signature has no lhs sample at that step.
    lgroups = _group(lsig)
    rows_p = []
    for j, s in enumerate(rsig):
        lrows = lgroups.get(s)
        lhs_has = lhs.present[lrows].any(axis=0) if lrows else np.zeros(t, dtype=bool)
        rows_p.append(rhs.present[j] & ~lhs_has)
    rp = np.array(rows_p, dtype=bool).reshape(-1, t)
    hist = None
    if lhs.hist is not None or rhs.hist is not None:
        lh = lhs.hist if lhs.hist is not None else _hist_cells(lhs.values.shape)
        rh = rhs.hist if rhs.hist is not None else _hist_cells(rhs.values.shape)
        hist = np.concatenate([lh, rh])
    out = Vec(
        list(lhs.labels) + list(rhs.labels),
        np.concatenate([lhs.values, rhs.values]),
        np.concatenate([lhs.present, rp]),
        hist=hist,
        drop=_stack_drop(lhs, rhs),
    )
    return merge_same_labels(out)


def _result_labels(left: Labels, right: Labels, op: str, matching: Matching, delayed: bool) -> Labels:
    out = left
    if op in ARITHMETIC:
        out = drop_name(out)
    if matching.card == "one-to-one":
        out = keep_labels(out, matching.labels) if matching.on else remove_labels(out, matching.labels)
    for name in matching.include:
        out = set_label(out, name, get_label(right, name))
    if matching.return_bool and not delayed:
        out = drop_name(out)
    return out


def vector_vector(
    op: str,
    lhs: Vec,
    rhs: Vec,
    matching: Matching,
    *,
    prometheus2: bool = False,
    annots: Annotations | None = None,
    pos: str = "",
    delayed: bool = False,
) -> Vec:
    """``lhs op rhs`` with vector matching. ``prometheus2``: as Prometheus 2.x, a many-to-many error
    names the two series the later in label order first (3.x sorts them), and cardinality errors
    count only the pairs a filtering comparison keeps (3.x counts them before filtering). ``delayed``:
    ``bool`` marks every row, no input mark carries over, arithmetic drops names at once (as upstream)."""
    t = lhs.values.shape[1]
    swapped = matching.card == "one-to-many"
    many, one = (rhs, lhs) if swapped else (lhs, rhs)
    msig = [signature(lab, matching) for lab in many.labels]
    osig = [signature(lab, matching) for lab in one.labels]
    ogroups = _group(osig)
    many_any = many.present.any(axis=0) if many.labels else np.zeros(t, dtype=bool)
    side = "left" if swapped else "right"
    for sig, rows in ogroups.items():
        if len(rows) > 1:
            both = (one.present[rows].sum(axis=0) > 1) & many_any
            if both.any():
                step = int(np.argmax(both))
                dup = sorted(one.labels[r] for r in rows if one.present[r, step])[:2]
                if prometheus2:
                    dup.reverse()
                raise PromQLError(
                    f"found duplicate series for the match group {labels_str(sig)} on the {side} "
                    f"hand-side of the operation: [{labels_str(dup[0])}, {labels_str(dup[1])}]"
                    ";many-to-many matching not allowed: matching labels must be unique on one side"
                )
    # Every (many-row, one-row) pair with equal signatures can produce a sample.
    pairs = [(i, j) for i, sig in enumerate(msig) for j in ogroups.get(sig, [])]
    if not pairs:
        return Vec.empty(t)
    mi = np.array([p[0] for p in pairs])
    oi = np.array([p[1] for p in pairs])
    mv, ov = many.values[mi], one.values[oi]
    both = many.present[mi] & one.present[oi]
    lv, rv = (ov, mv) if swapped else (mv, ov)
    labels = [_result_labels(many.labels[i], one.labels[j], op, matching, delayed) for i, j in pairs]
    drop = np.ones(len(labels), dtype=bool) if delayed and matching.return_bool else None
    if op in COMPARISON:
        keep = compare(op, lv, rv)
        if matching.return_bool:
            values, present = keep.astype(np.float64), both
        else:
            values, present = lv, both & keep
    else:
        values, present = arith(op, lv, rv), both
    if many.hist is None and one.hist is None:
        _check_unique_matches(matching, [msig[i] for i, _ in pairs], labels, present if prometheus2 else both)
        return merge_same_labels(Vec(labels, np.array(values), present, drop=drop))
    mh = many.hist[mi] if many.hist is not None else _hist_cells(both.shape)
    oh = one.hist[oi] if one.hist is not None else _hist_cells(both.shape)
    pair = _Pairs(lv, oh if swapped else mh, rv, mh if swapped else oh, both)
    values, present, hist = _histogram_pairs(
        op, pair, np.array(values, dtype=np.float64), present, matching, annots, pos
    )
    _check_unique_matches(matching, [msig[i] for i, _ in pairs], labels, present if prometheus2 else both)
    return merge_same_labels(Vec(labels, values, present, hist=hist, drop=drop))


def _check_unique_matches(
    matching: Matching, sigs: list[Labels], labels: list[Labels], counted: np.ndarray
) -> None:
    """Prometheus's cardinality errors over the pairs ``counted`` at each step (2.x: those a
    filtering comparison kept, so a filter leaving one match per signature is no error; 3.x: every
    matched pair). One-to-one: two counted pairs with one signature; many-to-one: two with one
    signature and one result label set."""
    one_to_one = matching.card == "one-to-one"
    groups: dict[object, list[int]] = {}
    for k, sig in enumerate(sigs):
        groups.setdefault(sig if one_to_one else (sig, labels[k]), []).append(k)
    for rows in groups.values():
        if len(rows) > 1 and (counted[rows].sum(axis=0) > 1).any():
            if one_to_one:
                raise PromQLError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            raise PromQLError("multiple matches for labels: grouping labels must ensure unique matches")


@dataclass
class _Pairs:
    """Matched (left, right) samples of a vector-vector operation: floats, histograms, presence."""

    lv: np.ndarray
    lh: np.ndarray
    rv: np.ndarray
    rh: np.ndarray
    both: np.ndarray


def _histogram_pairs(
    op: str,
    pair: _Pairs,
    values: np.ndarray,
    present: np.ndarray,
    matching: Matching,
    annots: Annotations | None,
    pos: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Results of the matched pairs where a side is a histogram, written over the float results."""
    present = present.copy()
    hist = _hist_cells(pair.both.shape)
    for k, t in zip(*np.nonzero(pair.both & (is_histogram(pair.lh) | is_histogram(pair.rh))), strict=True):
        got = histogram_cell(
            op, float(pair.lv[k, t]), pair.lh[k, t], float(pair.rv[k, t]), pair.rh[k, t],
            matching.return_bool, annots, pos,
        )  # fmt: skip
        present[k, t] = got is not None
        if isinstance(got, FloatHistogram):
            values[k, t], hist[k, t] = np.nan, got
        elif got is not None:
            values[k, t] = got
    return values, present, hist
