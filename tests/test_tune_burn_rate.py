"""Tuning multiwindow burn-rate alerts: the factor and windows rewritten as text, and detection
times on a synthetic store that follow the burn-rate formula.

The store: ``requests_total`` grows by 10/s, ``errors_total`` by 5/s (error ratio r = 0.5) from
the incident start t0 for 40 minutes, both scraped every 15 s on the minute grid and starting far
from zero (so that rate()'s extrapolation is the same factor for both and cancels in the ratio).
Over a long window L, ``t - t0 = d`` after t0 (d < L) the error ratio is r * d / L. A pair fires
at the first evaluation (every minute) where it exceeds F * (1 - objective) over both windows, so
detection is the first whole minute with d > F * (1 - objective) * L / r (the short window is
already above it then in every case below).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sloanalysis.cli.main import main
from sloanalysis.errors import UserError
from sloanalysis.rules.burnrate import split_burn_rate, with_burn_rate
from sloanalysis.rules.model import RecordingRule, parse_rules
from sloanalysis.rules.tuning import grid_search, parse_grid, rewrite_alert
from sloanalysis.sources.rundir import load_incidents
from sloanalysis.store import SeriesStore

MIN = 60_000
HOUR = 60 * MIN
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
INCIDENT = T0 + HOUR  # t0
RATIO = 0.5
OBJECTIVE = 0.99

GENERATED = """\
(
  max without (slo_window) (slo:sli_error:ratio_rate5m{slo_id="checkout-availability"} > (14.4 * (1 - 0.99)))
  and
  max without (slo_window) (slo:sli_error:ratio_rate1h{slo_id="checkout-availability"} > (14.4 * (1 - 0.99)))
)
or
(
  max without (slo_window) (slo:sli_error:ratio_rate30m{slo_id="checkout-availability"} > (6 * (1 - 0.99)))
  and
  max without (slo_window) (slo:sli_error:ratio_rate6h{slo_id="checkout-availability"} > (6 * (1 - 0.99)))
)"""


def _raw(factor: str = "14.4", long: str = "1h", short: str = "5m") -> str:
    """The brief's shape: (expr_long > F * (1 - objective)) and (expr_short > F * (1 - objective))."""
    ratio = "sum(rate(errors_total[{w}])) / sum(rate(requests_total[{w}]))"
    return (
        f"({ratio.format(w=long)} > {factor} * (1 - 0.99))\nand\n"
        f"({ratio.format(w=short)} > {factor} * (1 - 0.99))"
    )


def test_factor_rewrite_of_a_generated_rule_gives_the_expected_text() -> None:
    out, renamed = with_burn_rate(GENERATED, factor=10)
    assert out == GENERATED.replace("(14.4 * (1 - 0.99))", "(10 * (1 - 0.99))")
    assert renamed == []
    second, _ = with_burn_rate(GENERATED, factor=2.5, pair=2)
    assert second == GENERATED.replace("(6 * (1 - 0.99))", "(2.5 * (1 - 0.99))")
    alert = split_burn_rate(GENERATED)
    assert alert is not None
    assert [(p.long.window_ms, p.short.window_ms, p.factor) for p in alert.pairs] == [
        (HOUR, 5 * MIN, 14.4),
        (6 * HOUR, 30 * MIN, 6.0),
    ]
    assert alert.pairs[0].long.budget == pytest.approx(0.01)


def test_window_rewrite_of_raw_and_recorded_shapes() -> None:
    out, _ = with_burn_rate(_raw(), factor=6, windows=(30 * MIN, 2 * MIN))
    assert out == _raw("6", "30m", "2m")
    out, renamed = with_burn_rate(GENERATED, windows=(2 * HOUR, 10 * MIN))
    assert "slo:sli_error:ratio_rate10m{" in out and "slo:sli_error:ratio_rate2h{" in out
    assert sorted(renamed) == [
        ("slo:sli_error:ratio_rate", 5 * MIN, 10 * MIN),
        ("slo:sli_error:ratio_rate", HOUR, 2 * HOUR),
    ]


def test_sloth_and_pyrra_shapes_are_read() -> None:
    sloth = (
        'max(slo:sli_error:ratio_rate5m{sloth_id="a"} > (14.4 * 0.001)) without (sloth_window)\nand\n'
        'max(slo:sli_error:ratio_rate1h{sloth_id="a"} > (14.4 * 0.001)) without (sloth_window)'
    )
    pyrra = 'http:burnrate5m{slo="x"} > (14 * (1-0.99)) and http:burnrate1h{slo="x"} > (14 * (1-0.99))'
    for expr, factor in ((sloth, 14.4), (pyrra, 14.0)):
        alert = split_burn_rate(expr)
        assert alert is not None and len(alert.pairs) == 1
        assert (alert.pairs[0].long.window_ms, alert.pairs[0].short.window_ms, alert.pairs[0].factor) == (
            HOUR,
            5 * MIN,
            factor,
        )
    assert with_burn_rate(pyrra, factor=7)[0] == pyrra.replace("(14 *", "(7 *")
    assert split_burn_rate("rate(x[5m]) > 3") is None
    with pytest.raises(UserError, match="not a multiwindow burn-rate alert"):
        with_burn_rate("rate(x[5m]) > 3", factor=2)


def test_new_windows_get_their_recording_rules() -> None:
    rules = parse_rules(
        "groups:\n- name: sli\n  rules:\n"
        "  - record: slo:sli_error:ratio_rate5m\n"
        "    expr: sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))\n"
        "    labels: {slo_id: a, slo_window: 5m}\n"
        "  - record: slo:sli_error:ratio_rate1h\n"
        "    expr: sum(rate(errors_total[1h])) / sum(rate(requests_total[1h]))\n"
        "    labels: {slo_id: a, slo_window: 1h}\n"
        "- name: alerts\n  rules:\n  - alert: Burn\n    expr: |-\n"
        + "".join(
            f"      {line}\n" for line in GENERATED.replace("checkout-availability", "a").splitlines()[:5]
        ),
        "r",
    )
    out = rewrite_alert(rules, "Burn", {"windows": (2 * HOUR, 10 * MIN)})
    recorded = {r.record: r for r in out[0].rules if isinstance(r, RecordingRule)}
    assert (
        recorded["slo:sli_error:ratio_rate10m"].expr
        == "sum(rate(errors_total[10m])) / sum(rate(requests_total[10m]))"
    )
    assert recorded["slo:sli_error:ratio_rate2h"].labels == {"slo_id": "a", "slo_window": "2h"}


# -- detection time on a synthetic store ----------------------------------------------------------


def _store() -> SeriesStore:
    ts = T0 + np.arange(0, 3 * HOUR + 1, 15_000)
    inside = np.clip(ts - INCIDENT, 0, 40 * MIN) / 1000.0  # seconds of the incident so far
    store = SeriesStore()
    store.add({"__name__": "requests_total", "job": "shop"}, ts, 100_000 + 10.0 * (ts - T0) / 1000.0)
    store.add({"__name__": "errors_total", "job": "shop"}, ts, 1_000 + 10.0 * RATIO * inside)
    return store


def _rules(tmp_path: Path) -> Path:
    page = "".join(f"      {line}\n" for line in _raw().splitlines())
    ticket = "".join(f"      {line}\n" for line in _raw("1", "6h", "30m").splitlines())
    p = tmp_path / "rules.yml"
    p.write_text(
        "groups:\n- name: burn\n  rules:\n"
        f"  - alert: Burn\n    expr: |-\n{page}    labels: {{severity: page}}\n"
        f"  - alert: Burn\n    expr: |-\n{ticket}    labels: {{severity: ticket}}\n"
    )
    return p


def _incidents(tmp_path: Path) -> Path:
    p = tmp_path / "incidents.csv"
    p.write_text(f"id,kind,start,end,expected_alerts\ni1,errors,{INCIDENT},{INCIDENT + 40 * MIN},Burn\n")
    return p


def _expected_detection_ms(factor: float, long_ms: int) -> int | None:
    """The first whole minute after t0 at which r * d / L > F * (1 - objective)."""
    threshold = factor * (1 - OBJECTIVE)
    if threshold >= RATIO:
        return None
    d = threshold * long_ms / RATIO
    return (math.floor(d / MIN) + 1) * MIN


@pytest.mark.parametrize(
    ("point", "long_ms"),
    [
        ({"factor": 14.4}, HOUR),  # 0.144 * 1h / 0.5 = 17.28 min -> 18 min
        ({"factor": 6.0}, HOUR),  # 7.2 min -> 8 min
        ({"factor": 3.0}, HOUR),  # 3.6 min -> 4 min
        ({"factor": 6.0, "windows": (30 * MIN, 5 * MIN)}, 30 * MIN),  # 3.6 min -> 4 min
        ({"factor": 60.0}, HOUR),  # 0.6 > r: never
    ],
)
def test_factor_moves_detection_as_the_formula_says(tmp_path: Path, point: dict, long_ms: int) -> None:
    from sloanalysis.rules.model import load_rules

    groups = load_rules(_rules(tmp_path))
    incidents = load_incidents(_incidents(tmp_path))
    (row,) = grid_search(
        groups, "Burn", [point], [(_store(), incidents, T0, T0 + 3 * HOUR)], sli=None, severity="page"
    )
    expected = _expected_detection_ms(point["factor"], long_ms)
    assert row["detection_ms"] == expected
    assert (row["incidents"], row["detected"]) == (1, 0 if expected is None else 1)
    assert row["false_positives"] == 0 and row["firings"] == (0 if expected is None else 1)


def test_grid_keys() -> None:
    grid = parse_grid("factor=6,14.4;windows=1h/5m,6h/30m;for=0m,2m")
    assert grid == {
        "factor": [6.0, 14.4],
        "windows": [(HOUR, 5 * MIN), (6 * HOUR, 30 * MIN)],
        "for": [0, 2 * MIN],
    }
    for bad, needle in (
        ("windows=5m/1h", "short window"),
        ("windows=1h", "LONG/SHORT"),
        ("threshold=1;factor=2", "burn-rate"),
    ):
        with pytest.raises(UserError, match=needle):
            parse_grid(bad)


# -- the CLI ---------------------------------------------------------------------------------


def test_tune_cli_page_and_ticket_apart_from_prometheus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tune --prometheus``: the samples come from a stand-in for the server."""
    import sloanalysis.cli.commands.tune as cmd

    fetched: list[int] = []

    def fetch(url: str, groups: list, start: int, end: int, **kw: object) -> SeriesStore:
        fetched.append(len(groups))
        assert (url, start, end) == ("http://127.0.0.1:1", T0, T0 + 3 * HOUR)
        return _store()

    monkeypatch.setattr(cmd, "fetch_rule_inputs", fetch)
    base = ["tune", "--rules", str(_rules(tmp_path)), "--alert", "Burn", "--prometheus", "http://127.0.0.1:1"]
    base += [
        "--start",
        str(T0 // 1000),
        "--end",
        str((T0 + 3 * HOUR) // 1000),
        "--incidents",
        str(_incidents(tmp_path)),
    ]
    # one name, two severities: which one must be said
    assert main([*base, "--grid", "factor=6"]) == 2
    assert "--severity" in capsys.readouterr().err
    argv = [*base, "--severity", "page", "--grid", "factor=3,14.4;windows=1h/5m,30m/5m", "--format", "json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    got = {(p["factor"], p["windows"]): p["detection_ms"] for p in doc["points"]}
    assert got == {
        (3.0, "1h/5m"): _expected_detection_ms(3.0, HOUR),
        (14.4, "1h/5m"): _expected_detection_ms(14.4, HOUR),
        (3.0, "30m/5m"): _expected_detection_ms(3.0, 30 * MIN),
        (14.4, "30m/5m"): _expected_detection_ms(14.4, 30 * MIN),
    }
    assert doc["severity"] == "page" and doc["ground_truth"] is True and fetched
    # the ticket rule (1 x budget over 6h/30m) is tuned on its own. The data starts an hour
    # before t0, so its 6h window holds 1h + d of requests: r * d / (1h + d) > 0.01 from
    # d > 36 s / 0.49 = 73.5 s, i.e. the 2-minute evaluation (the 30m window is above from 1 min).
    assert main([*base, "--severity", "ticket", "--grid", "factor=1,60", "--format", "json"]) == 0
    ticket = json.loads(capsys.readouterr().out)["points"]
    assert [(p["factor"], p["detection_ms"]) for p in ticket] == [(1.0, 2 * MIN), (60.0, None)]
