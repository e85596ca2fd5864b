"""Intermediate values of an evaluation, each covering every step of the query at once.

An instant vector over T steps is a label list plus (n, T) value and presence matrices, so
operators work column-wise with numpy instead of looping over steps. A range vector keeps the
raw samples of each series together with the per-step window bounds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from sloanalysis.promql.parse import PromQLError
from sloanalysis.promql.rangebatch import window_bounds
from sloanalysis.store import METRIC_NAME, Labels

if TYPE_CHECKING:
    from sloanalysis.promql.densehist import DenseRow


@dataclass
class Vec:
    """Instant vector at every step: ``values``/``present`` are (n_series, T)."""

    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray
    # Sample timestamps (n, T) when the rows come straight from a selector (for timestamp()).
    sample_ts: np.ndarray | None = None
    # Native-histogram samples (n, T) object array: a FloatHistogram where the point is one (its
    # ``values`` cell is then NaN), None elsewhere. None (the float path) when no point is.
    hist: np.ndarray | None = None
    # Rows whose histograms are also held densely (``densehist.DenseRow``, one layout), by row
    # index: a fast path for the operations that read it; everything else reads ``hist``. Any
    # new Vec leaves it out unless the operation keeps it true.
    dense: dict[int, DenseRow] | None = None
    # Delayed name removal (an engine option): per row, whether ``__name__`` goes at the end of
    # the evaluation. None (always, with the option off) when no row is marked.
    drop: np.ndarray | None = None

    def hist_mask(self) -> np.ndarray:
        """(n, T) bool: which present points are native histograms."""
        if self.hist is None:
            return np.zeros(self.values.shape, dtype=bool)
        return is_histogram(self.hist) & self.present

    def floats_only(self) -> Vec:
        """The float points only: histogram points become absent (functions that ignore them)."""
        if self.hist is None:
            return self
        present = self.present & ~is_histogram(self.hist)
        return Vec(self.labels, self.values, present, self.sample_ts, drop=self.drop)

    @staticmethod
    def empty(n_steps: int) -> Vec:
        return Vec([], np.empty((0, n_steps)), np.zeros((0, n_steps), dtype=bool))

    def take(self, rows: Iterable[int] | np.ndarray) -> Vec:
        idx = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.intp)
        if idx.size == len(self.labels) and bool((idx == np.arange(idx.size)).all()):
            return self  # no copy of the (n, T) arrays when nothing changes
        return Vec(
            [self.labels[i] for i in idx],
            self.values[idx],
            self.present[idx],
            None if self.sample_ts is None else self.sample_ts[idx],
            None if self.hist is None else self.hist[idx],
            drop=None if self.drop is None else self.drop[idx],
        )


@dataclass
class Scalar:
    """One float per step."""

    values: np.ndarray


@dataclass
class String:
    value: str


@dataclass
class RangeVec:
    """Samples of each series plus the window ``(start, end]`` of every step (ms)."""

    labels: list[Labels]
    timestamps: list[np.ndarray]
    values: list[np.ndarray]
    start: np.ndarray
    end: np.ndarray
    range_ms: int
    left_closed: bool = False
    # The selector text's metric name etc. is needed by absent_over_time.
    source: object | None = None
    # Per series: object array aligned with timestamps (FloatHistogram or None), or None for a
    # float series; None when no series carries histograms.
    histograms: list[np.ndarray | None] | None = None
    # Per series: a source of the histograms above as one dense row (``densehist.cached``), when
    # the selector kept the store's samples as they are.
    dense_sources: list[Callable[[], DenseRow | None] | None] | None = None
    # Per series, delayed name removal's mark (see ``Vec.drop``), for a subquery's rows.
    drop: np.ndarray | None = None

    def bounds(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-step slice bounds ``lo, hi`` of series ``i`` within its sample arrays."""
        return window_bounds(self.timestamps[i], self.start, self.end, self.left_closed)


Value = Vec | Scalar | String | RangeVec


_IS_HIST = np.frompyfunc(lambda h: h is not None, 1, 1)


def is_histogram(cells: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-None cells of an object array of histograms."""
    if cells.size == 0:
        return np.zeros(cells.shape, dtype=bool)
    return np.asarray(_IS_HIST(cells), dtype=bool)


def hist_cells(shape: tuple[int, ...]) -> np.ndarray:
    """An object array of ``shape`` filled with None (no histogram anywhere yet)."""
    return np.full(shape, None, dtype=object)


@dataclass
class Annotations:
    """Warnings and infos of one query, in first-seen order, without repeats."""

    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)

    def warn(self, msg: str) -> None:
        if msg not in self.warnings:
            self.warnings.append(msg)

    def info(self, msg: str) -> None:
        if msg not in self.infos:
            self.infos.append(msg)


# -- labels -------------------------------------------------------------------------------


# The metric's identity besides its labels: ``__name__`` and, with Prometheus 3's type-and-unit
# labels (PROM-39), ``__type__`` and ``__unit__``. They go together wherever the name goes, and
# default vector matching is transparent to all three, as in current Prometheus.
METADATA_LABELS = (METRIC_NAME, "__type__", "__unit__")


def drop_name(labels: Labels) -> Labels:
    """``labels`` without the metric's name (and its type and unit labels, if any)."""
    return tuple(p for p in labels if p[0] not in METADATA_LABELS)


def get_label(labels: Labels, name: str) -> str:
    for k, v in labels:
        if k == name:
            return v
    return ""


def set_label(labels: Labels, name: str, value: str) -> Labels:
    rest = [p for p in labels if p[0] != name]
    if value != "":
        rest.append((name, value))
    return tuple(sorted(rest))


def keep_labels(labels: Labels, names: Iterable[str]) -> Labels:
    keep = set(names)
    return tuple(p for p in labels if p[0] in keep)


def remove_labels(labels: Labels, names: Iterable[str]) -> Labels:
    drop = set(names)
    return tuple(p for p in labels if p[0] not in drop)


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def labels_str(labels: Labels) -> str:
    """Prometheus ``labels.String()``: ``{__name__="x", a="b"}``."""
    return "{" + ", ".join(f"{k}={_quote(v)}" for k, v in labels) + "}"


def merge_same_labels(vec: Vec) -> Vec:
    """Merge rows sharing a label set; overlapping presence is Prometheus's duplicate error."""
    first: dict[Labels, int] = {}
    dups = False
    for i, lab in enumerate(vec.labels):
        if lab in first:
            dups = True
        else:
            first[lab] = i
    if not dups:
        return vec
    groups: dict[Labels, list[int]] = {}
    for i, lab in enumerate(vec.labels):
        groups.setdefault(lab, []).append(i)
    labels, vals, pres, hists, drops = [], [], [], [], []
    for lab, rows in groups.items():
        p = vec.present[rows]
        if bool((p.sum(axis=0) > 1).any()):
            raise PromQLError("vector cannot contain metrics with the same labelset")
        v = vec.values[rows[0]].copy()
        h = None if vec.hist is None else vec.hist[rows[0]].copy()
        for r in rows[1:]:
            v = np.where(vec.present[r], vec.values[r], v)
            if h is not None and vec.hist is not None:
                h = np.where(vec.present[r], vec.hist[r], h)
        labels.append(lab)
        vals.append(v)
        pres.append(p.any(axis=0))
        hists.append(h)
        drops.append(vec.drop is not None and bool(vec.drop[rows].any()))
    n = len(labels)
    hist = None if vec.hist is None else np.array(hists, dtype=object).reshape(n, -1)
    drop = None if vec.drop is None else np.array(drops, dtype=bool)
    return Vec(labels, np.array(vals).reshape(n, -1), np.array(pres).reshape(n, -1), hist=hist, drop=drop)


def remove_marked_names(vec: Vec) -> Vec:
    """The end of delayed name removal: marked rows lose ``__name__``; rows that now share a
    label set merge where their steps do not overlap (Prometheus's duplicate error where they do)."""
    if vec.drop is None:
        return vec
    labels = [drop_name(lab) if d else lab for lab, d in zip(vec.labels, vec.drop.tolist(), strict=True)]
    out = Vec(labels, vec.values, vec.present, vec.sample_ts, vec.hist)
    return merge_same_labels(out)


def check_unique_series(labels: list[Labels]) -> None:
    """Series-level duplicate check used after range-vector functions."""
    if len(set(labels)) != len(labels):
        raise PromQLError("vector cannot contain metrics with the same labelset")
