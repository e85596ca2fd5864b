"""Numbers and percentages for people: one rule for the CLI, Markdown and HTML."""

from __future__ import annotations

import math

import pytest

from sloanalysis.formatting import fmt_number, fmt_percent, render


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (-115.67, "-11,567%"),  # a budget overspent 116 times: no exponent
        (0.9995, "99.95%"),  # an SLO never rounds up to 100%
        (0.99949, "99.949%"),
        (0.99999, "99.999%"),
        (0.999, "99.9%"),
        (1.0, "100%"),
        (0.02, "2%"),
        (0.000123, "0.0123%"),
        (-0.5, "-50%"),
        (0.0, "0%"),
        (None, "-"),
        (math.nan, "-"),
        (math.inf, "inf%"),
    ],
)
def test_percent(ratio: float | None, text: str) -> None:
    assert fmt_percent(ratio) == text


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (1234567.0, "1,234,567"),
        (3.14159, "3.14"),
        (0.5, "0.5"),
        (100.0, "100"),
        (99.96, "100"),
        (-0.00125, "-0.00125"),
    ],
)
def test_number(x: float, text: str) -> None:
    assert fmt_number(x) == text


def test_json_keeps_numbers_as_numbers() -> None:
    rows = [{"budget_remaining": -115.67, "time_to_exhaustion_ms": math.inf}]
    assert (
        render(rows, "json")
        == '[\n  {\n    "budget_remaining": -115.67,\n    "time_to_exhaustion_ms": null\n  }\n]\n'
    )
