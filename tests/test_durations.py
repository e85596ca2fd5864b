"""Durations: Prometheus's ``model.ParseDuration`` syntax and ``model.Duration.String`` form, worked by
hand from their definitions (units y=365d, w=7d, d, h, m, s, ms; years and weeks printed only when
exact), the tool's looser inputs, and the human form of tables."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloanalysis.durations import (
    format_duration_human,
    format_duration_ms,
    format_time_left,
    is_prometheus_duration,
    parse_duration_ms,
    parse_prometheus_duration,
)
from sloanalysis.errors import UserError

S, M, H, D = 1000, 60_000, 3_600_000, 86_400_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("0s", 0),
        ("250ms", 250),
        ("15s", 15 * S),
        ("1h30m", 90 * M),
        ("7d", 7 * D),
        ("1w", 7 * D),
        ("1y", 365 * D),
        ("1y2w3d4h5m6s7ms", 365 * D + 17 * D + 4 * H + 5 * M + 6 * S + 7),
        ("90m", 90 * M),  # a unit may exceed the next larger one
    ],
)
def test_prometheus_syntax(text: str, ms: int) -> None:
    assert parse_prometheus_duration(text) == ms
    assert is_prometheus_duration(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30m1h",  # units largest first
        "1d1d",  # each unit once
        "1.5h",  # whole numbers
        "5",  # a unit, except for 0 alone
        "-5m",
        "1h 30m",
        " 5m",
        "5m\n",
        "1H",
        "5sec",
        "\u0663s",  # a non-ASCII digit
        "106752d",  # past Go's time.Duration (2^63 ns is about 106751.99 days)
    ],
)
def test_prometheus_syntax_rejects(text: str) -> None:
    with pytest.raises(UserError, match="for_field"):
        parse_prometheus_duration(text, what="for_field")
    if text != "106752d":
        assert not is_prometheus_duration(text)


def test_rejection_names_the_text_as_prometheus_does() -> None:
    with pytest.raises(UserError, match='not a valid duration string: "30m1h"'):
        parse_prometheus_duration("30m1h")
    with pytest.raises(UserError, match="empty duration string"):
        parse_prometheus_duration("")


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("1h30m", 90 * M),
        ("-5m", -5 * M),
        (" 15s ", 15 * S),
        ("90", 90 * S),  # a bare number is seconds
        ("0.5", 500),
        ("-1.5", -1500),
        (90, 90 * S),
        (0.25, 250),
    ],
)
def test_tool_inputs(value: str | int | float, ms: int) -> None:
    assert parse_duration_ms(value) == ms


@pytest.mark.parametrize("value", [True, "soon", "1.5h", "30m1h", "", "-", "--5m", math.inf, math.nan])
def test_tool_inputs_reject(value: object) -> None:
    with pytest.raises(UserError, match="--interval"):
        parse_duration_ms(value, what="--interval")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0s"),
        (1, "1ms"),
        (1500, "1s500ms"),
        (90 * S, "1m30s"),
        (H + 1, "1h1ms"),
        (D, "1d"),
        (7 * D, "1w"),
        (8 * D, "8d"),  # not 1w1d: weeks only when exact
        (14 * D, "2w"),
        (28 * D, "4w"),
        (30 * D, "30d"),
        (7 * D + H, "7d1h"),
        (365 * D, "1y"),
        (366 * D, "366d"),
        (730 * D, "2y"),
        (106_700 * D, "106700d"),  # promtool prints this eval_time so (testdata/long-period.yml)
        (-90 * S, "-1m30s"),
    ],
)
def test_prometheus_form(ms: int, text: str) -> None:
    assert format_duration_ms(ms) == text


@given(st.integers(min_value=0, max_value=100 * 365 * D))
def test_prometheus_form_reads_back(ms: int) -> None:
    assert parse_prometheus_duration(format_duration_ms(ms)) == ms


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (51_840, "51.8s"),
        (518_400, "8m38s"),
        (2_334_545, "38m55s"),
        (2 * D + 3 * H, "2d3h"),
        (2 * D + 3 * H + 15 * M, "2d3h"),
        (2 * D + 15 * M, "2d"),
        (0, "0ms"),
        (350, "350ms"),
        (999.5, "1s"),
        (M, "1m"),
        (59_700, "1m"),
        (H + 1, "1h"),
        (H + 90 * S, "1h1m"),
        (-90 * S, "-1m30s"),
        (None, "never"),
        (math.inf, "never"),
        (math.nan, "-"),
    ],
)
def test_human_form(ms: float | None, text: str) -> None:
    assert format_duration_human(ms) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "exhausted"), (-5 * M, "exhausted"), (90 * M, "1h30m"), (math.inf, "never"), (None, "never")],
)
def test_time_left(ms: float | None, text: str) -> None:
    assert format_time_left(ms) == text
