"""One duration grammar everywhere: Prometheus's ``model.ParseDuration`` (units y w d h m s ms,
largest first, each at most once, whole numbers; ``0`` alone), and one rule for a number without
a unit (seconds, as the Prometheus HTTP API reads ``step=15``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from sloanalysis.durations import parse_duration_ms, parse_prometheus_duration
from sloanalysis.errors import UserError
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.query import parse_duration
from sloanalysis.store import SeriesStore

S, M, H = 1_000, 60_000, 3_600_000


@pytest.mark.parametrize("text", ["5m1h", "1.5h", "1m1m", "1h1h", "ms5", "5", "1d-2h", "1e3s", "5M", " 5m"])
def test_prometheus_grammar_rejects(text: str) -> None:
    with pytest.raises(UserError, match="not a valid duration string"):
        parse_prometheus_duration(text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("1y", 365 * 24 * H), ("1w2d", 9 * 24 * H), ("1h30m", 90 * M), ("1s500ms", 1_500), ("0s", 0)],
)
def test_prometheus_grammar_accepts(text: str, ms: int) -> None:
    assert parse_prometheus_duration(text) == ms


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("15", 15 * S),  # the HTTP API's step=15
        ("1e3", 1_000 * S),  # strconv.ParseFloat syntax
        (".5", 500),
        ("+2", 2 * S),
        (15, 15 * S),  # a YAML 15 is seconds too
        (np.int64(15), 15 * S),
        (timedelta(minutes=2), 2 * M),
    ],
)
def test_number_without_unit_is_seconds(value: object, ms: int) -> None:
    assert parse_duration_ms(value) == ms  # type: ignore[arg-type]


def test_query_api_takes_python_ints_as_milliseconds_and_text_as_seconds() -> None:
    # parse_duration is the same parser; only the Python API's ints are milliseconds, like its times.
    assert parse_duration(15) == 15
    assert parse_duration("15") == parse_duration_ms("15") == 15 * S
    assert parse_duration("1m30s") == parse_duration_ms("1m30s") == 90 * S
    for bad in ("5m1h", "1.5h", "1m1m", "inf", "1e400"):
        with pytest.raises(UserError, match="invalid duration"):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("expr", "message"),
    [  # the messages `promtool check rules` (2.42) prints for these expressions
        ("rate(x[1.5h])", '1:8: parse error: not a valid duration string: "1.5h"'),
        ("rate(x[5m1h])", '1:8: parse error: not a valid duration string: "5m1h"'),
        ("x offset 1.5h", '1:10: parse error: not a valid duration string: "1.5h"'),
        ("x[1h:1m1m]", '1:6: parse error: not a valid duration string: "1m1m"'),
    ],
)
def test_promql_rejects_non_prometheus_durations(expr: str, message: str) -> None:
    for prometheus2 in (False, True):  # Prometheus 3's lexer hands "1.5h" to ParseDuration too
        with pytest.raises(PromQLError) as err:
            Engine(SeriesStore(), prometheus2=prometheus2).instant(expr, 0)
        assert str(err.value) == message


def test_rule_file_for_out_of_order_is_an_error_naming_the_file(tmp_path: Path) -> None:
    # The text is promtool's own (`promtool check rules` prints no position for a bad duration);
    # tests/test_rule_reader.py holds the reader to promtool's exact output.
    from sloanalysis.rules.model import load_rule_files

    path = tmp_path / "rules.yml"
    path.write_text(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n    for: 5m1h\n", encoding="utf-8"
    )
    with pytest.raises(UserError) as err:
        load_rule_files([path])
    assert str(err.value) == f'{path}: not a valid duration string: "5m1h"'
