"""Shared fixtures.

Tests needing a real Prometheus are marked ``@pytest.mark.prometheus``: they skip when the promtool
or prometheus binaries are missing, except under CI (the ``CI`` environment variable set), where
missing binaries fail them. ``prometheus_from_store`` starts a server holding a store's samples.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from promserver import backfill, binaries_missing, running_prometheus

from sloanalysis.store import SeriesStore


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("prometheus") is None:
        return
    missing = binaries_missing()
    if missing:
        msg = f"needs {' and '.join(missing)} (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but this test {msg}", pytrace=False)
        pytest.skip(msg)


@pytest.fixture
def prometheus_from_store(tmp_path: Path) -> Callable[..., AbstractContextManager[str]]:
    """``with prometheus_from_store(store) as url:`` a server holding exactly ``store``'s samples
    (stale markers excepted: OpenMetrics cannot carry them)."""
    from sloanalysis.sources.openmetrics import write_openmetrics

    counter = itertools.count()

    def start(store: SeriesStore, *, config_text: str | None = None) -> AbstractContextManager[str]:
        work = tmp_path / f"prom{next(counter)}"
        work.mkdir()
        write_openmetrics(store, work / "data.om")
        blocks = backfill(work / "data.om", work / "blocks")
        return running_prometheus(blocks, config_text=config_text)

    return start
