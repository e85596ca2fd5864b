"""Regexes follow RE2 (Go's regexp, which Prometheus uses), not Python's ``re``.

Each case is one where the two disagree: RE2's ``\\d``, ``\\w`` and ``\\s`` are ASCII only, and RE2
has no backreferences or lookarounds (Prometheus rejects such patterns). Expected values come
from RE2's documented syntax (https://github.com/google/re2/wiki/Syntax) and Prometheus's
anchoring ``^(?s:pattern)$``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sloanalysis.errors import DataError, UserError
from sloanalysis.promql import Engine, PromQLError
from sloanalysis.regex import InvalidRegexError, compile_regex
from sloanalysis.store import Matcher, SeriesStore

ROOT = Path(__file__).resolve().parents[1]
ARABIC_THREE = "\u0663"  # ARABIC-INDIC DIGIT THREE: a Unicode digit, not \d in RE2
E_ACUTE = "\u00e9"
EM_SPACE = "\u2003"


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        (r"\d", "3", True),
        (r"\d", ARABIC_THREE, False),
        (r"\w+", "abc_9", True),
        (r"\w", E_ACUTE, False),
        (r"\s", " ", True),
        (r"\s", EM_SPACE, False),
        (r"\pL", E_ACUTE, True),  # Unicode classes are spelled out in RE2
        (r"[[:digit:]]", ARABIC_THREE, False),
        ("a.b", "a\nb", True),  # Prometheus 3: (?s), "." matches a newline
        ("foo", "foox", False),  # anchored at both ends
        ("foo|bar", "bar", True),
        ("foo|bar", "foobar", False),
        ("", "", True),
        ("(?i)FOO", "foo", True),
        (r"a\Qb.c\E", "ab.c", True),
        (r"a\Qb.c\E", "abxc", False),
    ],
)
def test_re2_semantics(pattern: str, value: str, matches: bool) -> None:
    assert compile_regex(pattern).fullmatch(value) is matches


def test_prometheus_2_dot_does_not_match_newline() -> None:
    assert compile_regex("a.b", dot_matches_newline=False).fullmatch("a\nb") is False


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)a", "(?!a)b", "(?<=a)b", "a)|(b", "(a", "a{2,1}"])
def test_patterns_re2_rejects(pattern: str) -> None:
    with pytest.raises(InvalidRegexError) as err:
        compile_regex(pattern)
    assert isinstance(err.value, UserError)
    assert repr(pattern) in str(err.value)
    assert "\n" not in str(err.value)


def test_matcher_uses_re2_and_names_the_label() -> None:
    assert Matcher.of("v", "=~", r"\d+").matches("42")
    assert not Matcher.of("v", "=~", r"\d+").matches(ARABIC_THREE)
    assert Matcher.of("v", "!~", r"\w").matches(E_ACUTE)
    with pytest.raises(DataError, match="for label 'v'"):
        Matcher.of("v", "=~", r"(a)\1")


def _engine() -> Engine:
    store = SeriesStore()
    for value in ("3", ARABIC_THREE, "e", E_ACUTE, " ", EM_SPACE):
        store.add({"__name__": "m", "v": value}, [0], [1.0])
    return Engine(store)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (r'm{v=~"\\d"}', {"3"}),
        (r'm{v=~"\\w"}', {"3", "e"}),
        (r'm{v=~"\\s"}', {" "}),
        (r'm{v!~"\\d|\\w|\\s"}', {ARABIC_THREE, E_ACUTE, EM_SPACE}),
    ],
)
def test_selectors_select_as_prometheus(selector: str, expected: set[str]) -> None:
    res = _engine().instant(selector, 0)
    assert {dict(lab)["v"] for lab in res.labels} == expected


def test_label_replace_uses_re2() -> None:
    res = _engine().instant(r'label_replace(m, "w", "$1", "v", "(\\w)")', 0)
    got = {dict(lab)["v"]: dict(lab).get("w") for lab in res.labels}
    assert got["e"] == "e" and got["3"] == "3"
    assert got[E_ACUTE] is None and got[ARABIC_THREE] is None
    with pytest.raises(PromQLError, match="invalid regular expression in label_replace"):
        _engine().instant(r'label_replace(m, "w", "$1", "v", "(?=a)")', 0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.export import write_run
    from simulator.model import simulate
    from simulator.scenario import load_scenario

    result = simulate(load_scenario(ROOT / "scenarios" / "smoke.yaml"))
    return write_run(result, tmp_path_factory.mktemp("re2") / "smoke")


@pytest.mark.parametrize("expr", [r'up{job=~"(a)\\1"}', r'up{job=~"(?=a)a"}', r'up{job!~"(?<=a)b"}'])
def test_query_rejects_what_re2_rejects(run_dir: Path, expr: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sloanalysis.cli", "query", str(run_dir), expr, "--at", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_alert_templates_match_with_re2() -> None:
    # Prometheus's template functions call Go's regexp: match is an unanchored search.
    from sloanalysis.rules.templating import Template, expand_alert_template

    text = (
        '{{ if match "\\\\d" "' + ARABIC_THREE + '" }}yes{{ else }}no{{ end }} '
        '{{ reReplaceAll "(\\\\w)" "[$1]" "' + E_ACUTE + 'a1" }}'
    )
    assert expand_alert_template(Template(text, "t"), {}, 0.0) == f"no {E_ACUTE}[a][1]"


def test_engine_dialect_decides_whether_dot_matches_newline() -> None:
    # Prometheus 3 compiles ^(?s:re)$, Prometheus 2.x ^(?:re)$ (tests/test_differential.py checks 2.42).
    store = SeriesStore()
    store.add({"__name__": "m", "v": "a\nb"}, [0], [1.0])
    assert len(Engine(store).instant('m{v=~"a.b"}', 0).labels) == 1
    assert len(Engine(store, prometheus2=True).instant('m{v=~"a.b"}', 0).labels) == 0
    replaced = Engine(store, prometheus2=True).instant('label_replace(m, "w", "$1", "v", "(.*)")', 0)
    assert "w" not in dict(replaced.labels[0])


def test_promqltest_bad_expectation_regex_is_an_error_naming_the_line() -> None:
    from sloanalysis.promql.promqltest import run_script

    with pytest.raises(DataError, match=r"^line 5: invalid regular expression .*invalid escape sequence"):
        run_script("load 1m\n  m 1\n\neval instant at 0m m\n  expect warn regex: (a)\\1\n")


def test_invalid_utf8_label_values_match_as_go_reads_them() -> None:
    # Go's regexp reads each byte of invalid UTF-8 as U+FFFD; a promqltest load keeps such bytes.
    from sloanalysis.promql.promqltest import run_script

    script = 'load 1m\n  m{a="x\\xffy"} 1\n\neval instant at 0m count(m{a=~"x.y"})\n  {} 1\n'
    assert [r.status for r in run_script(script)] == ["passed"]
    assert compile_regex("x\\x{FFFD}y").fullmatch("x\udcffy")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        # "\xff" is the byte 0xFF, not U+00FF: Go's regexp refuses a pattern that is not UTF-8.
        ('m{a=~"\\xff"}', 'invalid regular expression "\\xff": invalid UTF-8'),
        ('m{a!~"x\\xffy|z"}', 'invalid regular expression "x\\xffy|z": invalid UTF-8'),
        (
            'label_replace(m, "b", "$1", "a", "(\\xfe)")',
            'invalid regular expression in label_replace(): "(\\xfe)"',
        ),
    ],
)
def test_regex_of_invalid_utf8_bytes_is_rejected(expr: str, message: str) -> None:
    store = SeriesStore()
    store.add({"__name__": "m", "a": "x"}, [0], [1.0])
    with pytest.raises(PromQLError) as err:
        Engine(store).instant(expr, 0)
    assert str(err.value) == message


def test_regex_of_valid_escapes_still_matches() -> None:
    store = SeriesStore()
    store.add({"__name__": "m", "a": "\u00ff"}, [0], [1.0])
    # \u00ff and \xc3\xbf are both the UTF-8 of ÿ, so both compile and match.
    for expr in ('m{a=~"\\u00ff"}', 'm{a=~"\\xc3\\xbf"}', 'm{a="\\xc3\\xbf"}', "m{a='\\303\\277'}"):
        assert len(Engine(store).instant(expr, 0).labels) == 1, expr
    replaced = Engine(store).instant('label_replace(m, "b", "\\xc3\\xbf", "a", ".*")', 0)
    assert dict(replaced.labels[0])["b"] == "\u00ff"
