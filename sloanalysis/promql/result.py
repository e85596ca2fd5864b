"""The result of a query: dense numpy arrays plus a long-frame view for pandas users."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sloanalysis.store import Labels


@dataclass
class QueryResult:
    """One query's answer.

    ``kind`` is "vector" (instant query), "matrix" (range query, or an instant query of a
    range selector / subquery), "scalar" or "string". ``values``/``present`` are
    (n_series, n_steps); a NaN value can be a real sample, hence the separate mask. Raw
    range vectors also carry their samples in ``raw`` as (timestamps, values) per series.
    """

    kind: str
    steps: np.ndarray
    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray
    raw: list[tuple[np.ndarray, np.ndarray]] | None = None
    string: str | None = None
    warnings: list[str] = field(default_factory=list)
    infos: list[str] = field(default_factory=list)
    # (n_series, n_steps) object array: a FloatHistogram where the point is a native
    # histogram (its ``values`` entry is then NaN), None elsewhere; None when no point is.
    histograms: np.ndarray | None = None
    # With ``raw``: per series, the object array of its raw samples' histograms (None for a
    # series of floats); None when no raw sample is a histogram.
    raw_histograms: list[np.ndarray | None] | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to_frame(self) -> pd.DataFrame:
        """Long frame: ``timestamp`` (UTC), ``value``, one str column per label name.

        Only present points appear; absent labels are "". When a point is a native histogram
        the frame also has a ``histogram`` column (object: the FloatHistogram, None on float
        points; the point's ``value`` is NaN), right after ``value``.
        """
        names = sorted({k for lab in self.labels for k, _ in lab})
        ts_parts: list[np.ndarray] = []
        val_parts: list[np.ndarray] = []
        counts: list[int] = []
        if self.raw is not None:
            for ts, vals in self.raw:
                ts_parts.append(ts)
                val_parts.append(vals)
                counts.append(ts.size)
        else:
            for i in range(len(self.labels)):
                mask = self.present[i]
                ts_parts.append(self.steps[mask])
                val_parts.append(self.values[i][mask])
                counts.append(int(mask.sum()))
        ts = np.concatenate(ts_parts) if ts_parts else np.array([], dtype=np.int64)
        vals = np.concatenate(val_parts) if val_parts else np.array([], dtype=np.float64)
        stamps = pd.DatetimeIndex((ts.astype(np.int64) * 1_000_000).view("datetime64[ns]")).tz_localize("UTC")
        frame = pd.DataFrame({"timestamp": stamps, "value": vals})
        hists = self._histogram_column()
        if hists is not None:
            frame["histogram"] = hists
        reps = np.asarray(counts, dtype=np.intp)
        for name in names:
            # Categorical: repeating small integer codes is far cheaper than repeating strings.
            per_series = [dict(lab).get(name, "") for lab in self.labels]
            cats = sorted(set(per_series))
            lookup = {c: i for i, c in enumerate(cats)}
            codes = np.repeat(np.array([lookup[v] for v in per_series], dtype=np.int32), reps)
            frame[name] = pd.Categorical.from_codes(codes, categories=pd.Index(cats))
        return frame

    def _histogram_column(self) -> np.ndarray | None:
        """The present points' histograms in frame order (None: no point is a histogram)."""
        if self.raw is not None:
            if self.raw_histograms is None:
                return None
            parts = [
                np.full(ts.size, None, dtype=object) if h is None else np.asarray(h, dtype=object)
                for (ts, _), h in zip(self.raw, self.raw_histograms, strict=True)
            ]
            column = np.concatenate(parts) if parts else np.empty(0, dtype=object)
        elif self.histograms is None:
            return None
        else:
            hists = np.asarray(self.histograms, dtype=object).reshape(self.values.shape)
            column = hists[np.asarray(self.present, dtype=bool).reshape(self.values.shape)]
        return column if any(h is not None for h in column) else None
