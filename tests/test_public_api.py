"""The notebook API of ``sloanalysis``: ``__all__`` is exactly the documented list, every name is
there, and the embedded engine and a real Prometheus answer with frames of identical dtypes."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sloanalysis as sa

T0 = 1_700_000_000_000
STEP = 15_000


def documented_names() -> list[str]:
    """The names each item of the docstring's "Public names" list starts with (``a``, ``b``: ...)."""
    doc = sa.__doc__ or ""
    section = doc[doc.index("Public names") :]
    names = []
    for item in re.findall(r"^- (.*?):", section, re.M):
        names += re.findall(r"``(\w+)``", item)
    return names


def test_all_is_the_documented_list() -> None:
    documented = documented_names()
    assert len(documented) == len(set(documented))
    assert sorted(sa.__all__) == sorted(documented)
    for name in sa.__all__:
        assert getattr(sa, name) is not None, name


def test_the_names_are_the_library_s_own() -> None:
    from sloanalysis.rules.backtest import backtest
    from sloanalysis.slo.status import slo_status
    from sloanalysis.sources.rundir import load_run

    assert (sa.backtest, sa.slo_status, sa.load_run) == (backtest, slo_status, load_run)
    with sa.connect("http://127.0.0.1:9", timeout=1.0) as prom:  # no request until a query
        assert isinstance(prom, sa.PrometheusBackend)


def _store() -> sa.SeriesStore:
    store = sa.SeriesStore()
    ts = T0 + STEP * np.arange(240)
    for status, per_step in (("confirmed", 3.0), ("failed", 0.25)):
        store.add(
            {"__name__": "req_total", "status": status, "job": "api"}, ts, np.cumsum(np.full(240, per_step))
        )
    store.add({"__name__": "load"}, ts, np.linspace(10.0, 90.0, 240))
    return store


EXPRESSIONS = (
    "rate(req_total[5m])",  # labels, no __name__
    "req_total",  # __name__ and labels
    "sum(rate(req_total[5m]))",  # no label at all
    "load > 50",  # a filter: steps without a row
    "absent_metric",  # empty
)


@pytest.mark.prometheus
def test_embedded_and_prometheus_frames_have_identical_dtypes(prometheus_from_store) -> None:  # type: ignore[no-untyped-def]
    store = _store()
    embedded = sa.EmbeddedBackend(store)
    start, end, at = T0 + 60_000, T0 + STEP * 239, T0 + STEP * 120
    with prometheus_from_store(store) as url, sa.connect(url, timeout=10) as prom:
        for expr in EXPRESSIONS:
            for a, b in (
                (embedded.query_range(expr, start, end, "30s"), prom.query_range(expr, start, end, "30s")),
                (embedded.query(expr, at), prom.query(expr, at)),
            ):
                assert list(a.columns) == list(b.columns), expr
                assert a.dtypes.to_dict() == b.dtypes.to_dict(), expr
                assert len(a) == len(b), expr
    assert str(a["timestamp"].dtype) == "datetime64[ns, UTC]" and a["value"].dtype == np.float64


def test_a_run_through_the_api(tmp_path: Path) -> None:
    """The docstring's walk-through on a small run: load, query, SLO status, backtest."""
    from reporting import SEED_RULES, SLOS, smoke_run

    run = sa.load_run(smoke_run(tmp_path))
    db = sa.EmbeddedBackend(run.store)
    start, end = run.store.time_range()
    total = db.query("sum(slo_total_requests_total)", end)
    assert list(total.columns) == ["timestamp", "value"] and len(total) == 1
    slo = next(s for s in sa.load_slos(SLOS) if s.name == "availability")
    status = sa.slo_status(slo, db, start, end)
    assert status.state in ("met", "missed") and status.window_ms == end - start
    bt = sa.backtest(sa.load_rules(SEED_RULES), run.store, run.incidents, start, end)
    assert set(bt.alert_names) <= set(bt.scores["alert"]) and isinstance(bt.scores, pd.DataFrame)
