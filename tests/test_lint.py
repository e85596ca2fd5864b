"""The lint on the seed's rules and dashboard finds their real defects; the corrected ones are clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from simulator.cli import main as tronsim
from sloanalysis.errors import UserError
from sloanalysis.rules.lint import (
    Catalog,
    catalog_from_file,
    catalog_from_store,
    lint_dashboard,
    lint_expr,
    lint_rules,
    structural_catalog,
)
from sloanalysis.store import SeriesStore

ROOT = Path(__file__).parents[1]
RATIO = (
    "sum(rate(tron_payment_requests_total{status='failed'}[5m])) / sum(rate(tron_payment_requests_total[5m]))"
)
SEED_TEXT = Path("/work/shared/seed/000_464384e2d05d0a83.txt")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The simulator's catalog as ``tronsim catalog`` writes it and ``lint --catalog`` reads it."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.json"
    assert tronsim(["catalog", "--out", str(path)]) == 0
    return catalog_from_file(path)


def found(findings: list, where: str) -> set[tuple[str, str]]:
    return {(f.severity, f.check) for f in findings if f.where == where}


def test_seed_files_are_the_seed_verbatim() -> None:
    if not SEED_TEXT.exists():
        pytest.skip("seed document not available")
    blocks = re.findall(r"```(\w+)\n(.*?)```", SEED_TEXT.read_text(), flags=re.S)
    assert (ROOT / "monitoring/seed/dashboard.json").read_text() == next(b for k, b in blocks if k == "json")
    yaml_block = next(b for k, b in blocks if k == "yaml" and "alerting-rules.yml" in b)
    assert (ROOT / "monitoring/seed/alerting-rules.yml").read_text() == yaml_block


def test_seed_rules_defects(catalog: Catalog) -> None:
    f = lint_rules(ROOT / "monitoring/seed/alerting-rules.yml", catalog)
    # rate(x{status="failed"}) / rate(x): each failed series over itself
    assert ("error", "one-to-one-ratio") in found(f, "alert HighFailureRate")
    # the TRON client times out at 10 s, so a P95 > 10 s cannot happen
    assert ("error", "impossible-threshold") in found(f, "alert HighTRONNetworkLatency")
    assert ("warning", "quantile-per-series") in found(f, "alert SlowPayoutProcessing")
    assert ("warning", "no-for") in found(f, "alert CircuitBreakerOpen")
    # 800 MiB is 83.9% of 1 GB, not the 80% the description claims
    mem = {x.check: x.message for x in f if x.where == "alert HighMemoryUsage"}
    assert "83.9%" in mem["threshold-text"] and "unit" in mem
    assert sum(x.severity == "error" for x in f) == 2


def test_seed_dashboard_defects(catalog: Catalog) -> None:
    f = lint_dashboard(ROOT / "monitoring/seed/dashboard.json", catalog)
    assert ("error", "one-to-one-ratio") in found(f, 'panel 1 "Payout Success Rate"')
    assert ("warning", "stat-many-series") in found(f, 'panel 2 "Daily Payout Volume (USDT)"')
    assert ("warning", "quantile-per-series") in found(f, 'panel 5 "Payout Processing Time"')
    # 12 series (2 router types x 2 priorities x 3 statuses) named by 2 legends
    panel7 = [x for x in f if x.where == 'panel 7 "Payout Requests by Router Type"']
    assert [x.check for x in panel7] == ["legend-ambiguous"] and "12 series share 2" in panel7[0].message
    assert ("warning", "legend-ambiguous") in found(f, 'panel 10 "Rate Limit Violations"')
    assert ("warning", "unit") in found(f, 'panel 11 "System Resources"')


def test_corrected_files_are_clean(catalog: Catalog) -> None:
    assert lint_rules(ROOT / "monitoring/rules/tron-payment.yml", catalog) == []
    assert lint_dashboard(ROOT / "monitoring/dashboard.json", catalog) == []


@pytest.mark.parametrize(
    ("expr", "check"),
    [
        ("tron_circuit_breaker_status == 3", "impossible-threshold"),
        ("tron_cpu_usage_percent > 100", "impossible-threshold"),
        (
            RATIO + " > 1",
            "impossible-threshold",
        ),
        (
            RATIO + " * 100 > 120",
            "impossible-threshold",
        ),
        ("tron_daily_limit_usage_usdt > 12000", "impossible-threshold"),
        ("rate(tron_pending_payouts_count[5m])", "rate-of-gauge"),
        (
            "histogram_quantile(0.9, sum(rate(tron_payout_processing_duration_seconds_bucket[5m])))",
            "quantile-without-le",
        ),
        (
            "histogram_quantile(0.9, rate(tron_payout_processing_duration_seconds_count[5m]))",
            "quantile-not-bucket",
        ),
        ("rate(tron_payment_requests_total[30s])", "short-window"),
        ("tron_payment_requests_total{status='success'}", "unknown-label-value"),
        ("tron_payments_total", "unknown-metric"),
        ("sum(rate(x[5m]", "parse"),
    ],
)
def test_checks(catalog: Catalog, expr: str, check: str) -> None:
    f, _ = lint_expr(expr, catalog, "test")
    assert check in {x.check for x in f}


@pytest.mark.parametrize(
    "expr",
    [
        "tron_circuit_breaker_status >= 1",
        "sum by (router_type) (rate(tron_payment_requests_total{status='failed'}[5m]))"
        " / sum by (router_type) (rate(tron_payment_requests_total[5m])) > 0.1",
        "histogram_quantile(0.99, sum by (le) (rate(slo_request_duration_seconds_bucket[5m]))) > 2",
        "tron_daily_limit_usage_usdt > 9000",
    ],
)
def test_sound_expressions_pass(catalog: Catalog, expr: str) -> None:
    assert lint_expr(expr, catalog, "test")[0] == []


def test_parse_error_has_a_position(catalog: Catalog) -> None:
    f, _ = lint_expr("sum(rate(x[5m])) >", catalog, "test")
    assert f[0].check == "parse" and re.match(r"\d+:\d+: parse error", f[0].message)


def test_up_for_shorter_than_two_scrapes(tmp_path: Path) -> None:
    store = SeriesStore()
    store.add({"__name__": "up", "job": "a"}, [0], [1.0])
    cat = catalog_from_store(store, scrape_interval_ms=60_000)
    rules = tmp_path / "r.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 1m\n")
    assert [x.check for x in lint_rules(rules, cat)] == ["up-for"]


def test_catalog_file_holds_the_scrape_target(catalog: Catalog) -> None:
    # every series carries the target labels a scrape adds; up is there although no family defines it
    assert catalog.scrape_interval_ms == 15_000
    assert catalog.label_values("up", "job") == {"tron-payment-api"}
    assert catalog.label_values("tron_payment_requests_total", "instance") == {"tron-payment-api:8090"}
    assert catalog.label_values("tron_payment_requests_total", "status") >= {"confirmed", "failed"}
    assert catalog.kind("tron_pending_payouts_count") == "gauge"


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{", "invalid JSON"), ("[]", "'families'"), ('{"families": [{"name": "x"}]}', "families[0]")],
)
def test_bad_catalog_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(text)
    with pytest.raises(UserError, match=re.escape(needle)):
        catalog_from_file(path)


def test_without_a_catalog_only_structure_is_checked() -> None:
    cat = structural_catalog()
    # existence is not known: neither an unknown metric nor an unknown label value is reported
    assert lint_expr("tron_payments_total{status='success'} > 1", cat, "t")[0] == []
    # structure still is: a counter over itself, a percentage above 100, a short window
    assert "one-to-one-ratio" in {x.check for x in lint_expr(RATIO.replace("sum", ""), cat, "t")[0]}
    assert "impossible-threshold" in {x.check for x in lint_expr("x_percent > 100", cat, "t")[0]}
    assert "short-window" in {x.check for x in lint_expr("rate(x_total[30s])", cat, "t")[0]}
    # a label the selectors do not name may exist: no one-to-one claim when it is ignored
    ignoring = "rate(x_total{status='failed'}[5m]) / ignoring(status) rate(x_total[5m])"
    assert lint_expr(ignoring, cat, "t")[0] == []
    # without knowing the labels, a quantile over a bucket vector is not said to lack le
    assert lint_expr("histogram_quantile(0.9, rate(x_bucket[5m]))", cat, "t")[0] == []


# -- catalogs for any service: recording rules and server APIs -------------------------------------

SHOP_STORE_LABELS = [
    {"__name__": "http_requests_total", "code": "200", "job": "shop"},
    {"__name__": "http_requests_total", "code": "500", "job": "shop"},
    {"__name__": "queue_depth", "job": "shop"},
]


def _shop_catalog() -> Catalog:
    store = SeriesStore()
    for labels in SHOP_STORE_LABELS:
        store.add(labels, [0, 15_000], [0.0, 1.0])
    return catalog_from_store(store)


def _lint_text(tmp_path: Path, text: str, catalog: Catalog) -> list[tuple[str, str]]:
    path = tmp_path / "rules.yml"
    path.write_text(text, encoding="utf-8")
    return [(f.where, f.check) for f in lint_rules(path, catalog)]


RECORDED = """\
groups:
- name: shop
  rules:
  - alert: ErrorRatioHigh
    expr: shop:error_ratio:rate5m > 0.05
    for: 5m
  - record: shop:error_ratio:rate5m
    expr: sum(rate(http_requests_total{code="500"}[5m])) / sum(rate(http_requests_total[5m]))
  - record: shop:requests:rate5m
    expr: sum by (code) (rate(http_requests_total[5m]))
    labels: {team: web}
  - alert: ServerErrors
    expr: shop:requests:rate5m{code="500", team="web"} > 1
    for: 5m
"""


def test_recorded_metrics_are_known_with_the_labels_they_keep(tmp_path: Path) -> None:
    cat = _shop_catalog()
    # Rules read metrics recorded further down the file: all known, their labels right.
    assert _lint_text(tmp_path, RECORDED, cat) == []
    wrong = RECORDED.replace('code="500", team="web"', 'code="404"').replace("> 0.05", "> 1.5")
    found = _lint_text(tmp_path, wrong, cat)
    # code keeps only the catalog's 200 and 500; the error ratio of one counter lies in [0, 1].
    assert ("alert ServerErrors", "unknown-label-value") in found
    assert ("alert ErrorRatioHigh", "impossible-threshold") in found
    dropped = RECORDED.replace('{code="500", team="web"}', '{job="shop"}')  # job is aggregated away
    assert ("alert ServerErrors", "unknown-label-value") in _lint_text(tmp_path, dropped, cat)
    # A recorded rate is a gauge: rate() of it is an error.
    ratey = RECORDED.replace("shop:error_ratio:rate5m > 0.05", "rate(shop:requests:rate5m[5m]) > 0")
    assert ("alert ErrorRatioHigh", "rate-of-gauge") in _lint_text(tmp_path, ratey, cat)


def test_recorded_metric_without_known_labels_is_known_but_unchecked(tmp_path: Path) -> None:
    text = (
        "groups:\n- name: g\n  rules:\n"
        "  - record: mixed:sum\n    expr: http_requests_total + on(job) group_left queue_depth\n"
        '  - alert: A\n    expr: mixed:sum{anything="x"} > 1\n    for: 5m\n'
    )
    assert _lint_text(tmp_path, text, _shop_catalog()) == []


def test_catalog_from_server_answers() -> None:
    from sloanalysis.rules.lint import catalog_from_server

    names = ["http_requests_total", "latency_seconds_bucket", "latency_seconds_count", "queue_depth", "jobs"]
    series = [{"__name__": "http_requests_total", "code": "200"}, {"__name__": "queue_depth"}]
    metadata = {
        "http_requests_total": ("counter", "Requests."),
        "latency_seconds": ("histogram", "Latency."),
        "queue_depth": ("gauge", "Queue depth."),
        "jobs": ("gauge", "Job state (0=idle, 1=busy, 2=failed)"),
    }
    cat = catalog_from_server(names, series, metadata, scrape_interval_ms=30_000)
    assert cat.kind("latency_seconds_count") == "counter" and cat.kind("queue_depth") == "gauge"
    assert cat.kind("jobs") == "gauge" and cat.enums["jobs"] == {0.0: "idle", 1.0: "busy", 2.0: "failed"}

    def checks(expr: str) -> set[str]:
        return {f.check for f in lint_expr(expr, cat, "x")[0]}

    assert checks('http_requests_total{code="500"}') == {"unknown-label-value"}
    assert checks("rate(queue_depth[5m])") == {"rate-of-gauge"}
    assert checks("rate(http_requests_total[1m])") == {"short-window"}  # 2 scrapes of 30 s
    assert checks("nope") == {"unknown-metric"}
    # Names whose series were not fetched are known; their labels are not checked.
    assert checks('latency_seconds_count{any="x"}') == set()
    assert checks("jobs > 2") == {"impossible-threshold"}
