"""The one rule-file reader against the real ``promtool check rules`` (Prometheus 2.42), and the
language switch (``--prometheus2`` = 2.42, default = Prometheus 3).

Each small file goes through promtool and through the reader; the verdict and every error line
must be promtool's (stderr as promtool prints it, ``file: line:col: group "g", rule N, "name": ...``).
``lint --rules`` and ``test-rules`` read through the same reader and show the same lines.
"""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
from pathlib import Path

import pytest

from sloanalysis.cli.main import main
from sloanalysis.promql.parse import PROMETHEUS_2, PROMETHEUS_3, PromQLError, parse
from sloanalysis.rules import templating
from sloanalysis.rules.model import RulesError, load_rules, parse_rules
from sloanalysis.rules.promtool import run_test_files

# name -> rule file text; one defect each (one-entry maps: Go prints map errors in random order).
CASES = {
    "unknown-rule-field": "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    foo: bar\n",
    "unknown-group-field": "groups:\n- name: g\n  query_offset: 1m\n  rules:\n  - record: x\n    expr: up\n",
    "unknown-fields-everywhere": (
        "groups:\n- name: g\n  labels:\n    a: b\n  rules:\n  - record: x\n    expr: up\n    bar: 2\ntop: 1\n"
    ),
    "not-a-rules-file": "foo: 1\n",
    "a-list": "- a\n",
    "groups-not-a-list": "groups: 5\n",
    "rule-not-a-mapping": "groups:\n- name: g\n  rules:\n  - 5\n",
    "limit-not-an-int": "groups:\n- name: g\n  limit: abc\n  rules: []\n",
    "repeated-key": "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    expr: down\n",
    "bad-duration": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5x\n",
    "empty-duration": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: ''\n",
    "several-documents": "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n---\n- bad\n",
    "bad-record-name": "groups:\n- name: g\n  rules:\n  - record: 1bad\n    expr: up\n",
    "dotted-record-name": "groups:\n- name: g\n  rules:\n  - record: a.b\n    expr: up\n",
    "bad-label-name": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n      1a: x\n",
    "bad-annotation-name": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      1a: x\n"
    ),
    "undefined-template-variable": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n"
        "      s: '{{ $label.foo }}'\n"
    ),
    "scoped-template-variable": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n"
        "      s: '{{ range $x := $labels }}{{ $x }}{{ end }}{{ $x }}'\n"
    ),
    "stray-brace-in-template": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n"
        "      s: '{{ $labels.foo }'\n"
    ),
    "if-without-value": (
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      s: '{{ if }}'\n"
    ),
    "record-and-alert": "groups:\n- name: g\n  rules:\n  - record: x\n    alert: y\n    expr: up\n",
    "neither-record-nor-alert": "groups:\n- name: g\n  rules:\n  - labels: {a: b}\n",
    "recording-rule-with-alert-fields": (
        "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    for: 5m\n    keep_firing_for: 1m\n"
    ),
    "recording-rule-for-zero": "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up\n    for: 0s\n",
    "empty-and-repeated-group-names": "groups:\n- name: ''\n  rules: []\n- name: g\n  rules: []\n- name: g\n",
    "trailing-operator": "groups:\n- name: g\n  rules:\n  - record: x\n    expr: up and\n",
    "holt-winters": "groups:\n- name: g\n  rules:\n  - record: x\n    expr: holt_winters(up[5m], 0.5, 0.5)\n",
    "keep-firing-for": "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    keep_firing_for: 5m\n",
    "prometheus-3-functions": (
        'groups:\n- name: g\n  rules:\n  - record: a\n    expr: sort_by_label(up, "job")\n'
        "  - record: b\n    expr: histogram_avg(up)\n  - record: c\n    expr: limitk(2, up)\n"
        "  - record: d\n    expr: limitk by (job) (2, up)\n  - record: e\n    expr: |\n      sum(\n"
        "        rate(up[5m])\n      ) + mad_over_time(up[5m])\n"
    ),
    "prometheus-3-syntax": (
        "groups:\n- name: g\n  rules:\n  - record: a\n    expr: '{\"up\"}'\n  - record: b\n"
        '    expr: \'up{job="x", "a.b"="1"}\'\n  - record: c\n    expr: up[300]\n'
        "  - record: d\n    expr: up offset -300\n  - record: e\n    expr: up[5m:30]\n"
        "  - record: f\n    expr: rate(up[1.5m])\n"
    ),
}


def promtool_check(path: Path) -> tuple[int, list[str]]:
    """promtool's exit status and its error lines (stderr without the FAILED heading)."""
    proc = subprocess.run(
        ["promtool", "check", "rules", path.name],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=path.parent,
    )
    return proc.returncode, [line for line in proc.stderr.splitlines() if line and line != "  FAILED:"]


def reader_errors(path: Path) -> list[str]:
    """The reader's errors (2.42), as promtool would print them (empty when it accepts the file)."""
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        load_rules(path.name, dialect=PROMETHEUS_2)
    except RulesError as exc:
        return "\n".join(exc.errors).splitlines()
    finally:
        os.chdir(cwd)
    return []


@pytest.mark.prometheus
@pytest.mark.parametrize("name", sorted(CASES))
def test_reader_gives_promtool_verdict_and_errors(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yml"
    path.write_text(CASES[name])
    rc, theirs = promtool_check(path)
    assert reader_errors(path) == theirs
    assert (rc == 0) == (theirs == [])


@pytest.mark.prometheus
@pytest.mark.parametrize(
    "name",
    [
        "unknown-rule-field",
        "unknown-group-field",
        "bad-record-name",
        "undefined-template-variable",
        "holt-winters",
    ],
)
def test_lint_and_test_rules_show_promtool_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """``lint --rules`` and ``test-rules`` (both with --prometheus2) refuse what promtool refuses,
    and their messages carry promtool's error lines."""
    path = tmp_path / f"{name}.yml"
    path.write_text(CASES[name])
    rc, theirs = promtool_check(path)
    wanted = [line.strip().replace(f"{path.name}: ", "") for line in theirs]
    assert main(["lint", "--rules", str(path), "--prometheus2"]) == (2 if rc else 0)
    err = capsys.readouterr().err
    assert all(w in err for w in wanted)
    test = tmp_path / "test.yml"
    test.write_text(f"rule_files: [{path.name}]\ntests:\n- input_series: []\n")
    out, errs = io.StringIO(), io.StringIO()
    assert run_test_files([test], out, errs, prometheus2=True) == (1 if rc else 0)
    assert all(w in errs.getvalue() for w in wanted)


# -- the language switch -----------------------------------------------------------------------

# x = 0, 10, 15, 30 at 0, 1, 2, 3m. Holt-Winters (sf = tf = 0.5), by hand: s=0, b=10;
# i=1: s=0.5*10+0.5*(0+10)=10; i=2: b=0.5*(10-0)+0.5*10=10, s=0.5*15+0.5*(10+10)=17.5;
# i=3: b=0.5*(17.5-10)+0.5*10=8.75, s=0.5*30+0.5*(17.5+8.75)=28.125.
SMOOTHING_TEST = """rule_files: [rules.yml]
tests:
- interval: 1m
  input_series:
  - series: x
    values: 0 10 15 30
  promql_expr_test:
  - expr: hw
    eval_time: 3m
    exp_samples:
    - labels: '{__name__="hw"}'
      value: 28.125
"""


def smoothing_files(tmp_path: Path, function: str) -> Path:
    (tmp_path / "rules.yml").write_text(
        f"groups:\n- name: g\n  rules:\n  - record: hw\n    expr: {function}(x[5m], 0.5, 0.5)\n"
    )
    test = tmp_path / "test.yml"
    test.write_text(SMOOTHING_TEST)
    return test


def run_ours(test: Path, prometheus2: bool) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    return run_test_files([test], out, err, prometheus2=prometheus2), err.getvalue()


@pytest.mark.prometheus
def test_holt_winters_in_2_42_is_double_exponential_smoothing_in_3(tmp_path: Path) -> None:
    test = smoothing_files(tmp_path, "holt_winters")
    promtool = subprocess.run(
        ["promtool", "test", "rules", str(test)], capture_output=True, text=True, check=False
    )
    assert promtool.returncode == 0, promtool.stderr
    assert run_ours(test, prometheus2=True) == (0, "")
    rc, err = run_ours(test, prometheus2=False)
    assert rc == 1 and 'unknown function with name "holt_winters"' in err
    test = smoothing_files(tmp_path, "double_exponential_smoothing")
    assert run_ours(test, prometheus2=False) == (0, "")
    rc, err = run_ours(test, prometheus2=True)
    assert rc == 1 and 'unknown function with name "double_exponential_smoothing"' in err


def test_sort_by_label_is_prometheus_3_only() -> None:
    text = 'sort_by_label(up, "job")'
    with pytest.raises(PromQLError, match=r'^1:1: parse error: unknown function with name "sort_by_label"$'):
        parse(text, PROMETHEUS_2)
    parse(text, PROMETHEUS_3)
    strict = dataclasses.replace(PROMETHEUS_3, experimental_enabled=False)
    with pytest.raises(PromQLError, match=r'^1:1: parse error: function "sort_by_label" is not enabled$'):
        parse(text, strict)


def test_group_fields_follow_the_version() -> None:
    text = "groups:\n- name: g\n  query_offset: 1m\n  rules: []\n"
    assert parse_rules(text, "f.yml")[0].query_offset_ms == 60_000
    with pytest.raises(RulesError) as info:
        parse_rules(text, "f.yml", dialect=PROMETHEUS_2)
    assert info.value.errors == (
        "f.yml: yaml: unmarshal errors:\n  line 3: field query_offset not found in type rulefmt.RuleGroup",
    )


@pytest.mark.prometheus
def test_function_table_of_2_42_is_promtools(tmp_path: Path) -> None:
    """Every function Prometheus 3 knows, called with no arguments: promtool 2.42 calls exactly
    the 2.42 dialect's missing functions unknown."""
    names = sorted(
        PROMETHEUS_3.experimental | PROMETHEUS_2.missing_functions | {"rate", "holt_winters", "abs"}
    )
    rules = "".join(f"  - record: r_{n}\n    expr: '{n}()'\n" for n in names)
    path = tmp_path / "functions.yml"
    path.write_text(f"groups:\n- name: g\n  rules:\n{rules}")
    _, lines = promtool_check(path)
    unknown = {line.rsplit('"', 2)[1] for line in lines if "unknown function with name" in line}
    assert unknown == set(PROMETHEUS_2.missing_functions) - {"start", "end"}  # 2.42 lexes those as @ keywords


def test_template_variables_are_scoped_as_in_go() -> None:
    templating.parse("{{ $a := 1 }}{{ $a }}{{ $labels.job }}{{ $value }}{{ $externalURL }}")
    templating.parse("{{ with $x := $labels.job }}{{ $x }}{{ else }}{{ $x }}{{ end }}")
    with pytest.raises(templating.TemplateError, match=r'undefined variable "\$x"$'):
        templating.parse("{{ range $x := $labels }}{{ end }}{{ $x }}")
    with pytest.raises(templating.TemplateError, match=r'undefined variable "\$y"$'):
        templating.parse("{{ $y = 1 }}")
