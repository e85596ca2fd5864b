"""SLO analysis over Prometheus metrics: series store, PromQL engine, SLOs, alert backtests."""

from sloanalysis.errors import DataError, UserError
from sloanalysis.store import STALE_NAN, Matcher, Series, SeriesStore, is_stale, make_labels

__all__ = [
    "STALE_NAN",
    "DataError",
    "Matcher",
    "Series",
    "SeriesStore",
    "UserError",
    "is_stale",
    "make_labels",
]
