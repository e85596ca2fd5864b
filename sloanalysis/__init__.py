"""SLO analysis over Prometheus metrics: series store, PromQL engine, SLOs, alert backtests.

The public API, for notebooks and scripts (every name below is importable from ``sloanalysis``;
``tests/test_public_api.py`` keeps this list and ``__all__`` equal)::

    import sloanalysis as sa

    run = sa.load_run("runs/reference")             # samples, incidents, run.json
    db = sa.EmbeddedBackend(run.store)              # or: db = sa.connect("http://127.0.0.1:9090")
    db.query_range("sum(rate(slo_total_requests_total[5m]))", "6h", "now", "1m")
    slos = sa.load_slos("slos/tron-payment.yaml")
    start, end = run.store.time_range()
    status = sa.slo_status(slos[0], db, start, end)   # SLI, budget left, burn rate, state
    bt = sa.backtest(sa.load_rules("monitoring/rules/tron-payment.yml"), run.store, run.incidents, start, end)

Public names (``__all__``; each item starts with the names it documents):

- ``load_run``, ``Run``: a simulator run directory (samples, incidents, run.json).
- ``SeriesStore``, ``Series``, ``Matcher``, ``make_labels``, ``STALE_NAN``, ``is_stale``: the
  in-memory series store.
- ``connect``, ``PrometheusBackend``: a Prometheus-compatible server as a query backend.
- ``EmbeddedBackend``, ``Backend``: the embedded PromQL engine over a store, and the protocol
  both backends follow: *.query(expr, at)* and *.query_range(expr, start, end, step)* return frames
  with the same columns and dtypes from either (timestamp as UTC datetimes, value as float64, one
  string column per label).
- ``parse_time``, ``parse_duration``: the times and steps queries accept.
- ``load_slos``, ``SLO``: an SLO file (sloanalysis/v1, Sloth, Pyrra, OpenSLO).
- ``measure``, ``error_budget``, ``Budget``: an SLI's per-step good/valid frame, and its budget.
- ``slo_status``, ``SLOStatus``: an SLO's state at the end of a range (a row of *sloanalysis slo*).
- ``load_rules``, ``RuleGroup``: a Prometheus rules file.
- ``backtest``, ``Backtest``, ``EvalSettings``: evaluate rules with rule-manager semantics and
  score their alerts.
- ``score``: score alerts against incidents.
- ``UserError``, ``DataError``: bad input (one line naming the file and field), a malformed data file.

Importing everything here costs no more than the command line already imports (measured with
``python -X importtime``: pandas and pyarrow dominate), so these are plain imports.
"""

from sloanalysis.errors import DataError, UserError
from sloanalysis.query import Backend, EmbeddedBackend, PrometheusBackend, parse_duration, parse_time
from sloanalysis.rules.backtest import Backtest, EvalSettings, backtest
from sloanalysis.rules.model import RuleGroup, load_rules
from sloanalysis.rules.scoring import score
from sloanalysis.slo.budget import Budget, error_budget, measure
from sloanalysis.slo.formats import load_slos
from sloanalysis.slo.spec import SLO
from sloanalysis.slo.status import SLOStatus, slo_status
from sloanalysis.sources.rundir import Run, load_run
from sloanalysis.store import STALE_NAN, Matcher, Series, SeriesStore, is_stale, make_labels


def connect(url: str, *, timeout: float = 30.0) -> PrometheusBackend:
    """A Prometheus-compatible server at ``url`` (``http://HOST:PORT``) as a query backend; every
    request gives up after ``timeout`` seconds. Close it (or use ``with``) when done."""
    return PrometheusBackend(url, timeout=timeout)


__all__ = [
    "SLO",
    "STALE_NAN",
    "Backend",
    "Backtest",
    "Budget",
    "DataError",
    "EmbeddedBackend",
    "EvalSettings",
    "Matcher",
    "PrometheusBackend",
    "RuleGroup",
    "Run",
    "SLOStatus",
    "Series",
    "SeriesStore",
    "UserError",
    "backtest",
    "connect",
    "error_budget",
    "is_stale",
    "load_rules",
    "load_run",
    "load_slos",
    "make_labels",
    "measure",
    "parse_duration",
    "parse_time",
    "score",
    "slo_status",
]
