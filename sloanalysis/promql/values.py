"""Intermediate values of an evaluation, each covering every step of the query at once.

An instant vector over T steps is a label list plus (n, T) value and presence matrices, so
operators work column-wise with numpy instead of looping over steps. A range vector keeps the
raw samples of each series together with the per-step window bounds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from sloanalysis.promql.parse import PromQLError
from sloanalysis.store import METRIC_NAME, Labels


@dataclass
class Vec:
    """Instant vector at every step: ``values``/``present`` are (n_series, T)."""

    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray
    # Sample timestamps (n, T) when the rows come straight from a selector (for timestamp()).
    sample_ts: np.ndarray | None = None

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

    def bounds(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-step slice bounds ``lo, hi`` of series ``i`` within its sample arrays."""
        ts = self.timestamps[i]
        lo = np.searchsorted(ts, self.start, side="left" if self.left_closed else "right")
        hi = np.searchsorted(ts, self.end, side="right")
        return lo, np.maximum(hi, lo)


Value = Vec | Scalar | String | RangeVec


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


def drop_name(labels: Labels) -> Labels:
    return tuple(p for p in labels if p[0] != METRIC_NAME)


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
    labels, vals, pres = [], [], []
    for lab, rows in groups.items():
        p = vec.present[rows]
        if bool((p.sum(axis=0) > 1).any()):
            raise PromQLError("vector cannot contain metrics with the same labelset")
        v = vec.values[rows[0]].copy()
        for r in rows[1:]:
            v = np.where(vec.present[r], vec.values[r], v)
        labels.append(lab)
        vals.append(v)
        pres.append(p.any(axis=0))
    return Vec(labels, np.array(vals).reshape(len(labels), -1), np.array(pres).reshape(len(labels), -1))


def check_unique_series(labels: list[Labels]) -> None:
    """Series-level duplicate check used after range-vector functions."""
    if len(set(labels)) != len(labels):
        raise PromQLError("vector cannot contain metrics with the same labelset")
