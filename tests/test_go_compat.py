"""Go/Prometheus compatibility helpers against values from Go's and xxHash's documentation and
reference tests, and from the rules those documents state."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import promql_parser as pp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sloanalysis._go import (
    format_float,
    format_label_value,
    is_label_name,
    is_metric_name,
    match_op,
    xxhash64,
)

# -- XXH64 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "seed", "digest"),
    [
        (b"", 0, 0xEF46DB3751D8E999),  # xxHash's sanity check: empty input
        (b"", 2654435761, 0xAC75FDA2929B17EF),  # ... seeded with PRIME32_1
        (b"a", 0, 0xD24EC4F1A98C6E5B),
        (b"abc", 0, 0x44BC2CF5AD770999),
        # 39 bytes: the four-lane loop runs once, then the 8-, 4- and 1-byte tails
        (b"Nobody inspects the spammish repetition", 0, 0xFBCEA83C8A378BF1),
    ],
)
def test_xxhash64_reference_vectors(data: bytes, seed: int, digest: int) -> None:
    assert xxhash64(data, seed) == digest


# -- strconv.FormatFloat ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "fmt", "prec", "text"),
    [
        # 'f', shortest: never an exponent
        (1e21, "f", -1, "1000000000000000000000"),
        (0.1, "f", -1, "0.1"),
        (1e-7, "f", -1, "0.0000001"),
        (-0.0, "f", -1, "-0"),
        (2.5, "f", -1, "2.5"),
        (5e-324, "f", -1, "0." + "0" * 323 + "5"),
        # 'g', shortest: the exponent form below 1e-4 and from 1e6 (Go's %v of a float64)
        (0.000001, "g", -1, "1e-06"),
        (0.0001, "g", -1, "0.0001"),
        (0.00001, "g", -1, "1e-05"),
        (123456.0, "g", -1, "123456"),
        (1e6, "g", -1, "1e+06"),
        (1234567.0, "g", -1, "1.234567e+06"),
        (0.1 + 0.2, "g", -1, "0.30000000000000004"),
        (1e100, "g", -1, "1e+100"),
        (1.7976931348623157e308, "g", -1, "1.7976931348623157e+308"),
        (0.0, "g", -1, "0"),
        (-2.5, "g", -1, "-2.5"),
        # 'E', shortest: at least two exponent digits (Go's documentation example)
        (1e6, "E", -1, "1E+06"),
        (3.1415926535, "E", -1, "3.1415926535E+00"),
        (2.0, "E", -1, "2E+00"),
        (0.0, "E", -1, "0E+00"),
        (-0.0, "E", -1, "-0E+00"),
        (1e-300, "E", -1, "1E-300"),
        (123.456, "E", -1, "1.23456E+02"),
        # fixed precision: %.4g as the template humanizers use it, %.3e, %.2f
        (1234.5678, "g", 4, "1235"),
        (123456.0, "g", 4, "1.235e+05"),
        (100000.0, "g", 4, "1e+05"),
        (1.5, "g", 4, "1.5"),
        (0.000123456, "g", 4, "0.0001235"),
        (100.0, "g", 2, "1e+02"),
        (100.0, "g", 3, "100"),
        (12345.678, "e", 3, "1.235e+04"),
        (1.0, "e", 3, "1.000e+00"),
        (3.14159, "f", 2, "3.14"),
        (0.0, "f", 2, "0.00"),
        (0.001, "f", 1, "0.0"),
        # Go spells the non-finite values this way in every format
        (math.nan, "g", -1, "NaN"),
        (math.inf, "f", -1, "+Inf"),
        (-math.inf, "E", -1, "-Inf"),
    ],
)
def test_format_float_matches_go(x: float, fmt: str, prec: int, text: str) -> None:
    assert format_float(x, fmt, prec) == text


def test_format_float_takes_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    assert format_float(np.float64(1e6)) == "1e+06"
    assert format_label_value(np.float64(0.25)) == "0.25"


def test_label_values_never_use_an_exponent() -> None:
    """``count_values`` writes ``FormatFloat(v, 'f', -1, 64)``."""
    assert format_label_value(1e21) == "1000000000000000000000"
    assert format_label_value(1.5e-7) == "0.00000015"
    assert format_label_value(math.inf) == "+Inf"


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_shortest_forms_read_back_exactly(x: float) -> None:
    for fmt in ("e", "E", "f", "g", "G"):
        text = format_float(x, fmt)
        assert float(text) == x
        assert math.copysign(1.0, float(text)) == math.copysign(1.0, x)


@given(st.floats(min_value=1e-300, max_value=1e300))
def test_shortest_g_uses_the_exponent_form_outside_1e_minus_4_to_1e6(x: float) -> None:
    exponent = Decimal(repr(x)).adjusted()  # of the shortest digits, as Go decides on them
    assert ("e" in format_float(x, "g")) == (exponent < -4 or exponent >= 6)


# -- names and matchers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "metric", "label"),
    [
        ("http_requests_total", True, True),
        ("job:rate5m", True, False),  # colons are for recording-rule names only
        (":", True, False),
        ("_", True, True),
        ("__name__", True, True),
        ("0abc", False, False),
        ("a-b", False, False),
        ("a.b", False, False),
        ("é", False, False),
        ("", False, False),
        ("a\n", False, False),
    ],
)
def test_name_rules(name: str, metric: bool, label: bool) -> None:
    assert is_metric_name(name) is metric
    assert is_label_name(name) is label


def test_match_op_spells_promql_operators() -> None:
    node: Any = pp.parse('x{a="1", b!="2", c=~"3", d!~"4"}')
    ops = {m.name: match_op(m.op) for m in node.matchers.matchers}
    assert ops == {"a": "=", "b": "!=", "c": "=~", "d": "!~"}
    assert match_op("NotRe") == "!~"
