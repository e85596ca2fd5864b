"""Live mode end to end: a real Prometheus scrapes the running service, its alerts reach a real
Alertmanager, and the backtest over the very samples Prometheus scraped predicts the same alerts.

scenarios/live.yaml at --speed 10: a TRON outage from simulated minute 2 to 14 (wall 12 s to
84 s); the test watches the first 92 wall seconds. Scrapes and rule evaluations every 2 s.
About 100 s.

Independent expectation for CircuitBreakerOpen (``tron_circuit_breaker_status >= 1`` for 1m):
every payout call fails during the outage, so the breaker opens at its 5th failure (payouts
arrive at 5/s wall: within about a second of the outage start) and stays open or half-open
(its probes fail) until the outage ends at 84 s: ~70 s >= 1m, so it must fire, near 72-76 s.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import requests

from simulator.live.stack import RULE_FILES, running_stack, served_urls
from sloanalysis.rules.manager import evaluate_rules
from sloanalysis.rules.model import load_rules
from sloanalysis.sources.prometheus import PrometheusClient, fetch_range

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "live.yaml"
INTERVAL_S = 2
RUN_S = 92
pytestmark = pytest.mark.prometheus


def _am_alerts(url: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{url}/api/v2/alerts", timeout=5)
    resp.raise_for_status()
    return list(resp.json())


def _ms(rfc3339: str) -> int:
    import datetime as dt

    head, _, frac = rfc3339.rstrip("Z").partition(".")
    whole = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    return round(whole.timestamp() * 1000) + int((frac + "000")[:3] if frac else 0)


def _key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


@pytest.mark.skipif(not all(p.exists() for p in RULE_FILES), reason="monitoring/rules not written yet")
def test_alertmanager_receives_what_the_backtest_predicts(tmp_path: Path) -> None:
    seen: dict[tuple[tuple[str, str], ...], int] = {}  # labels -> earliest startsAt (ms)
    interval = f"{INTERVAL_S}s"
    with running_stack(
        SCENARIO, speed=10, scrape_interval=interval, evaluation_interval=interval, workdir=tmp_path / "live"
    ) as stack:
        start_ms = int(stack.epoch * 1000)
        stack.start_load(SCENARIO, duration=f"{RUN_S}s")
        deadline = time.monotonic() + RUN_S
        while time.monotonic() < deadline:
            for alert in _am_alerts(stack.alertmanager):
                k = _key(alert["labels"])
                seen[k] = min(seen.get(k, 1 << 62), _ms(alert["startsAt"]))
            time.sleep(1.0)
        cutoff_ms = int(time.time() * 1000) - 3 * INTERVAL_S * 1000  # allow for the Prometheus->AM hop
        stats = requests.get(f"{stack.service}/admin/stats", timeout=5).json()
        assert stats["process_failures"] == 0
        with PrometheusClient(stack.prometheus) as client:
            # Scraped series only: recording-rule outputs (names with a colon) the backtest recomputes.
            store = fetch_range(
                client, '{job="tron-payment-api",__name__!~".*:.*"}', start_ms - 60_000, cutoff_ms + 60_000
            )
        rules_api = requests.get(f"{stack.prometheus}/api/v1/rules", timeout=5).json()
        # Every address `make live` prints answers on the installed builds (Debian's Prometheus serves
        # its UI under /classic/, its Alertmanager has no UI: the API is printed instead).
        printed = dict(served_urls(stack.prometheus, stack.alertmanager))
        for what, line in printed.items():
            if line.startswith("http"):
                assert requests.get(line.split(" ")[0], timeout=5).status_code == 200, (what, line)
        assert printed["amtool"].endswith(f"--alertmanager.url={stack.alertmanager} alert query")
    assert rules_api["status"] == "success"
    up = [s for s in store if dict(s.labels)["__name__"] == "up"]
    assert len(up) == 1 and (up[0].values == 1).all(), "a scrape failed: the two sides would see gaps"
    groups = [g for path in RULE_FILES for g in load_rules(path.resolve())]
    evaluation = evaluate_rules(
        groups,
        store,
        start_ms,
        cutoff_ms,
        default_interval_ms=INTERVAL_S * 1000,
        prometheus2=True,  # Debian's 2.42: range selectors closed on the left
        eval_offset="hash",  # the server's per-group evaluation phase
    )
    predicted: dict[tuple[tuple[str, str], ...], int] = {}
    for row in evaluation.alerts.itertuples():
        if row.firing_at_ms is not None and row.firing_at_ms <= cutoff_ms:
            k = _key({"alertname": row.alertname, **row.labels})
            predicted[k] = min(predicted.get(k, 1 << 62), int(row.firing_at_ms))
    received = {k: v for k, v in seen.items() if v <= cutoff_ms}

    for k, at in sorted(received.items(), key=lambda kv: kv[1]):
        print(
            f"{dict(k)['alertname']:<40} AM {at - start_ms:>7} ms  "
            f"backtest {predicted.get(k, -1) - start_ms:>7} ms"
        )
    names = {dict(k)["alertname"] for k in received}
    assert "CircuitBreakerOpen" in names, (received, stack.log_tail("service"))
    assert {dict(k)["alertname"] for k in predicted} == names
    assert set(predicted) == set(received)
    for k, at in received.items():
        assert abs(at - predicted[k]) <= INTERVAL_S * 1000, (dict(k), at, predicted[k])
