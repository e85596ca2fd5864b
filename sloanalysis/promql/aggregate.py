"""Aggregation operators (``sum``, ``topk``, ``count_values``, ...) over every step at once.

Groups are fixed by labels, so members of a group are known up front; the members are folded
one after another (as Prometheus does per step) with each fold covering all steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sloanalysis._go import format_float, format_label_value, xxhash64
from sloanalysis.nativehist import histogram_string
from sloanalysis.promql.kahan import kahan_inc, quantile_sorted, sort_nan_first
from sloanalysis.promql.parse import PromQLError
from sloanalysis.promql.values import Annotations, Vec, keep_labels, remove_labels, set_label
from sloanalysis.store import METRIC_NAME, Labels


def group_labels(labels: Labels, grouping: Sequence[str], without: bool) -> Labels:
    if without:
        return remove_labels(labels, [*grouping, METRIC_NAME])
    return keep_labels(labels, grouping)


def _groups(vec: Vec, grouping: Sequence[str], without: bool) -> tuple[list[Labels], list[list[int]]]:
    keys: dict[Labels, int] = {}
    members: list[list[int]] = []
    for i, lab in enumerate(vec.labels):
        key = group_labels(lab, grouping, without)
        if key not in keys:
            keys[key] = len(members)
            members.append([])
        members[keys[key]].append(i)
    return list(keys), members


def _fold(op: str, vals: np.ndarray, pres: np.ndarray) -> np.ndarray:
    """Fold the members (rows) of one group the way Prometheus's per-step loop does."""
    t = vals.shape[1]
    seen = np.zeros(t, dtype=bool)
    value = np.zeros(t)
    comp = np.zeros(t)
    mean = np.zeros(t)
    count = np.zeros(t)
    incr = np.zeros(t, dtype=bool)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        for f, p in zip(vals, pres, strict=True):
            first = p & ~seen
            more = p & seen
            count = np.where(p, count + 1, count)
            if op == "sum":
                nv, nc = kahan_inc(f, value, comp)
                value = np.where(first, f, np.where(more, nv, value))
                comp = np.where(more, nc, comp)
            elif op == "avg":
                value = np.where(first, f, value)
                nv, nc = kahan_inc(f, value, comp)
                direct = more & ~incr
                fits = direct & ~np.isinf(nv)
                switch = direct & np.isinf(nv)
                value = np.where(fits, nv, value)
                comp = np.where(fits, nc, comp)
                mean = np.where(switch, value / (count - 1), mean)
                comp = np.where(switch, comp / (count - 1), comp)
                incr = incr | switch
                go = more & incr
                q = (count - 1) / count
                nm, nc2 = kahan_inc(f / count, q * mean, q * comp)
                mean = np.where(go, nm, mean)
                comp = np.where(go, nc2, comp)
            elif op in ("max", "min"):
                better = (value < f) if op == "max" else (value > f)
                value = np.where(first | (more & (better | np.isnan(value))), f, value)
            elif op in ("stddev", "stdvar"):
                init = np.where(np.isfinite(f), 0.0, np.nan)
                mean = np.where(first, f, mean)
                value = np.where(first, init, value)
                d = f - mean
                nmean = mean + d / count
                mean = np.where(more, nmean, mean)
                value = np.where(more, value + d * (f - mean), value)
            seen = seen | p
        if op == "sum":
            return value + comp
        if op == "avg":
            return np.where(incr, mean + comp, value / count + comp / count)
        if op == "count":
            return count
        if op == "group":
            return np.ones(t)
        if op == "stdvar":
            return value / count
        if op == "stddev":
            return np.sqrt(value / count)
        return value


def aggregate(
    op: str, vec: Vec, grouping: Sequence[str], without: bool, param: np.ndarray | None, annots: Annotations
) -> Vec:
    """Simple and parametrised aggregations (not topk/bottomk/limitk/limit_ratio/count_values)."""
    keys, members = _groups(vec, grouping, without)
    t = vec.values.shape[1]
    out_vals, out_pres = [], []
    for rows in members:
        vals, pres = vec.values[rows], vec.present[rows]
        if op == "quantile":
            assert param is not None
            srt, counts = sort_nan_first(vals.T, pres.T)
            res = quantile_sorted(param, srt, counts)
        else:
            res = _fold(op, vals, pres)
        out_vals.append(res)
        out_pres.append(pres.any(axis=0))
    if op == "quantile" and param is not None:
        _quantile_param_warnings(param, annots)
    values = np.array(out_vals).reshape(len(keys), t)
    present = np.array(out_pres, dtype=bool).reshape(len(keys), t)
    keep = np.asarray(present.any(axis=1))
    return Vec([k for k, ok in zip(keys, keep.tolist(), strict=True) if ok], values[keep], present[keep])


def _quantile_param_warnings(param: np.ndarray, annots: Annotations) -> None:
    for q in np.unique(param[np.isnan(param) | (param < 0) | (param > 1)]):
        annots.warn(f"PromQL warning: quantile value should be between 0 and 1, got {format_float(q)}")


def check_k_param(op: str, param: np.ndarray) -> None:
    if op == "limit_ratio":
        if np.isnan(param).any():
            raise PromQLError("Ratio value is NaN")
        return
    if np.isnan(param).any():
        raise PromQLError("Parameter value is NaN")
    if (param <= -(2.0**63)).any():
        raise PromQLError(f"Scalar value {format_float(float(param.min()))} underflows int64")
    if (param >= 2.0**63).any():
        raise PromQLError(f"Scalar value {format_float(float(param.max()))} overflows int64")


def select_k(
    op: str,
    vec: Vec,
    grouping: Sequence[str],
    without: bool,
    param: np.ndarray,
    annots: Annotations,
    pos: str = "",
) -> tuple[Vec, list[int]]:
    """topk/bottomk/limitk/limit_ratio: input rows, present where selected at that step.

    Also returns the row order of an instant query (groups in order, ranked within a group).
    ``pos`` (``1:13``) is the parameter's position, which ends its annotations.
    """
    if op == "limit_ratio":
        at = f" ({pos})" if pos else ""
        if (param > 1).any():
            annots.warn(
                "PromQL warning: ratio value should be between -1 and 1, "
                f"got {format_float(param.max())}, capping to 1{at}"
            )
        if (param < -1).any():
            annots.warn(
                "PromQL warning: ratio value should be between -1 and 1, "
                f"got {format_float(param.min())}, capping to -1{at}"
            )
    _, members = _groups(vec, grouping, without)
    n, t = vec.values.shape
    selected = np.zeros((n, t), dtype=bool)
    order: list[int] = []
    if op in ("topk", "bottomk", "limitk"):
        k = np.minimum(np.trunc(np.nan_to_num(param)), n)
    for rows in members:
        idx = np.asarray(rows)
        vals, pres = vec.values[idx], vec.present[idx]
        if op in ("topk", "bottomk"):
            nan = np.isnan(vals)
            key = -vals if op == "topk" else vals
            # Rank: present numbers by value, then NaN, then absent; ties keep input order.
            tier = np.where(pres, np.where(nan, 1, 0), 2)
            ordr = np.lexsort((np.where(nan, 0.0, key), tier), axis=0)
            rank = np.empty_like(ordr)
            np.put_along_axis(rank, ordr, np.arange(len(rows))[:, None].repeat(t, axis=1), axis=0)
            sel = pres & (rank < k[None, :])
            if t == 1:
                order.extend(int(idx[i]) for i in ordr[:, 0] if sel[i, 0])
        elif op == "limitk":
            rank = np.cumsum(pres, axis=0) - 1
            sel = pres & (rank < k[None, :])
            if t == 1:
                order.extend(int(idx[i]) for i in range(len(rows)) if sel[i, 0])
        else:
            offsets = np.array([_hash_offset(vec.labels[i]) for i in rows])[:, None]
            r = np.clip(param, -1.0, 1.0)[None, :]
            sel = pres & (((r >= 0) & (offsets < r)) | ((r < 0) & (offsets >= 1.0 + r)))
            if t == 1:
                order.extend(int(idx[i]) for i in range(len(rows)) if sel[i, 0])
        selected[idx] = sel
    out = Vec(list(vec.labels), vec.values, selected, hist=vec.hist)
    return out, order


def count_values(vec: Vec, label: str, grouping: Sequence[str], without: bool) -> Vec:
    """One output series per (group, distinct value); its value counts the members."""
    t = vec.values.shape[1]
    grouping = list(grouping) if without else [*grouping, label]
    counts: dict[Labels, np.ndarray] = {}
    hist_mask = vec.hist_mask()
    for i, lab in enumerate(vec.labels):
        vals, pres = vec.values[i], vec.present[i] & ~hist_mask[i]
        if vec.hist is not None and hist_mask[i].any():
            for text in {histogram_string(h) for h in vec.hist[i][hist_mask[i]]}:
                hit = hist_mask[i] & np.array(
                    [h is not None and histogram_string(h) == text for h in vec.hist[i]]
                )
                key = group_labels(set_label(lab, label, text), grouping, without)
                counts[key] = counts.get(key, np.zeros(t)) + hit
        for text in {format_label_value(v) for v in np.unique(vals[pres])} | (
            {"NaN"} if bool(np.isnan(vals[pres]).any()) else set()
        ):
            hit = pres & _matches_text(vals, text)
            key = group_labels(set_label(lab, label, text), grouping, without)
            counts[key] = counts.get(key, np.zeros(t)) + hit
    keys = list(counts)
    values = np.array([counts[k] for k in keys]).reshape(len(keys), t)
    return Vec(keys, values, values > 0)


def _matches_text(vals: np.ndarray, text: str) -> np.ndarray:
    if text == "NaN":
        return np.isnan(vals)
    return (
        np.array([format_label_value(v) == text for v in vals]) if vals.size < 64 else _fast_match(vals, text)
    )


def _fast_match(vals: np.ndarray, text: str) -> np.ndarray:
    target = {"+Inf": np.inf, "-Inf": -np.inf}.get(text)
    if target is None:
        target = float(text)
    hit = vals == target
    if target == 0:  # "-0" and "0" are different label values
        neg = np.signbit(vals)
        hit &= neg if text.startswith("-") else ~neg
    return hit


# -- the label-set hash limit_ratio samples series by, as Prometheus does. ----------------


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def labels_hash(labels: Labels) -> int:
    """``Labels.Hash()`` of Prometheus 3 release builds (stringlabels: length-prefixed strings)."""
    parts = []
    for k, v in labels:
        kb, vb = k.encode(), v.encode()
        parts.append(_uvarint(len(kb)) + kb + _uvarint(len(vb)) + vb)
    return xxhash64(b"".join(parts))


def _hash_offset(labels: Labels) -> float:
    return float(labels_hash(labels)) / float(2**64 - 1)
