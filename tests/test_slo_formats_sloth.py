"""Sloth's published examples (../shared/slo-formats/sloth-examples) read as Sloth reads them, and
the sloth-style rules compared with the rules Sloth generated from them (``_gen/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sloanalysis.errors import UserError
from sloanalysis.slo.formats import load_slos, parse_slos
from sloanalysis.slo.rulegen import Style, generate_rules
from sloanalysis.slo.styles.sloth import sloth_windows

SHARED = Path(__file__).resolve().parents[2] / "shared" / "slo-formats" / "sloth-examples"
EXAMPLES = sorted(p for p in SHARED.glob("*.y*ml")) if SHARED.is_dir() else []
needs_shared = pytest.mark.skipif(not EXAMPLES, reason="../shared/slo-formats not present")

# Sloth needs its Go plugins for these; the toolkit rejects them naming the plugin field.
PLUGIN_EXAMPLES = {
    "contrib-denominator-corrected.yaml": "spec.sloPlugins",
    "contrib-slo-plugins.yml": "slos[0].plugins",
    "plugin-getting-started.yml": "slos[0].sli.plugin",
    "plugin-k8s-getting-started.yml": "spec.slos[0].sli.plugin",
    "slo-plugin-getting-started.yml": "slo_plugins",
    "slo-plugin-k8s-getting-started.yml": "spec.slos[0].plugins",
    "victoria-metrics.yml": "slo_plugins",
}
# Labels the example generator adds (``--extra-labels cmd=examplesgen.sh``) or that name the
# generating program's version.
IGNORED_LABELS = {"cmd", "sloth_version"}


def _gen_groups(name: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((SHARED / "_gen" / name).read_text()) if d]
    groups: list[dict[str, Any]] = []
    for d in docs:
        groups.extend(d["spec"]["groups"] if d.get("kind") == "PrometheusRule" else d["groups"])
    return groups


def _normalise(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for g in groups:
        rules = []
        for r in g["rules"]:
            r = dict(r)
            r["labels"] = {k: str(v) for k, v in (r.get("labels") or {}).items() if k not in IGNORED_LABELS}
            r["expr"] = str(r["expr"]).strip()
            rules.append(r)
        out.append({"name": g["name"], "rules": rules})
    return out


@needs_shared
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_loads_or_is_rejected_for_its_plugins(path: Path) -> None:
    if path.name in PLUGIN_EXAMPLES:
        with pytest.raises(UserError) as exc:
            load_slos(path)
        message = str(exc.value)
        assert "\n" not in message
        assert f"{PLUGIN_EXAMPLES[path.name]}: Sloth plugins are not supported" in message
    else:
        assert load_slos(path)


@needs_shared
@pytest.mark.parametrize("path", [p for p in EXAMPLES if p.name not in PLUGIN_EXAMPLES], ids=lambda p: p.name)
def test_sloth_style_rules_equal_sloths_output(path: Path) -> None:
    ours = _normalise(generate_rules(load_slos(path)).groups)
    theirs = _normalise(_gen_groups(path.name))
    assert [g["name"] for g in ours] == [g["name"] for g in theirs]
    for mine, sloth in zip(ours, theirs, strict=True):
        assert mine == sloth, mine["name"]


def test_28_day_period_keeps_the_windows_and_scales_the_factors() -> None:
    # factor = budget % * period hours / 100 / long-window hours, 28 days = 672 h.
    windows = sloth_windows(28 * 86_400_000)
    assert [(w.short_ms // 60_000, w.long_ms // 60_000) for w in windows] == [
        (5, 60),
        (30, 360),
        (120, 1440),
        (360, 4320),
    ]
    for w, (pct, hours) in zip(windows, [(2, 1), (5, 6), (10, 24), (10, 72)], strict=True):
        assert w.factor == pytest.approx(pct * 672 / 100 / hours)
    assert [round(w.factor, 2) for w in windows] == [13.44, 5.6, 2.8, 0.93]


def test_sloth_spec_with_a_28_day_period_names_its_period_rule_4w() -> None:
    (slo,) = parse_slos(
        "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: 99.9\n"
        "    sli: {raw: {error_ratio_query: 'x[{{.window}}]'}}\n    alerting: {name: A}\n",
        default_period_ms=28 * 86_400_000,
    )
    groups = generate_rules([slo]).groups
    records = [r["record"] for r in groups[0]["rules"]]
    assert records[-1] == "slo:sli_error:ratio_rate4w"
    page = groups[2]["rules"][0]["expr"]
    assert "(13.44 * 0.0009999999999999432)" in page


def test_native_style_is_still_available_for_sloth_specs() -> None:
    (slo,) = load_slos(SHARED / "getting-started.yml") if EXAMPLES else [None]
    if slo is None:
        pytest.skip("../shared/slo-formats not present")
    groups = generate_rules([slo], style="native").groups
    assert groups[0]["rules"][0]["labels"]["slo_id"] == "myservice-requests-availability"


_SPEC = (
    "version: prometheus/v1\nservice: s\nslos:\n  - name: a\n    objective: {objective}\n"
    "    sli: {{events: {{error_query: '{error}', total_query: 't[{{{{.window}}}}]'}}}}\n"
    "    alerting: {alerting}\n"
)


def _sloth(objective: str = "99", error: str = "e[{{.window}}]", alerting: str = "{name: A}") -> str:
    return _SPEC.format(objective=objective, error=error, alerting=alerting)


def test_a_query_without_the_window_placeholder_is_accepted_as_sloth_accepts_it() -> None:
    (slo,) = parse_slos(_sloth(error="sum(rate(e[5m]))"))
    rules = generate_rules([slo]).groups[0]["rules"]
    assert rules[0]["expr"].startswith("(sum(rate(e[5m])))\n/\n(t[5m])")


def test_fields_sloth_does_not_know_are_ignored_as_sloth_ignores_them() -> None:
    """Sloth decodes its YAML without strict field checks: a spec carrying extra keys (a team's own
    metadata, a misspelt optional field) loads there, so it loads here with the same meaning."""
    plain = parse_slos(_sloth())
    extra = parse_slos(
        _sloth().replace("slos:", "owner: payments-team\nslos:").replace("version:", "x-note: 1\nversion:")
    )
    assert [(s.id, s.objective, s.period_ms) for s in extra] == [
        (s.id, s.objective, s.period_ms) for s in plain
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_sloth(alerting="{labels: {a: b}}"), "slos[0].alerting.name: required unless"),
        (_sloth(alerting="{page_alert: {disable: true}}"), "slos[0].alerting.name: required unless"),
        (_sloth(objective="0"), "slos[0].objective: objective must lie in (0, 100)"),
        (_sloth(error="sum(rate(e[{{.window}}])"), "slos[0].sli.events.error_query: invalid PromQL"),
        (_sloth().replace("service: s", "service: ''"), "service:"),
        (
            _sloth().replace("slos:", "labels: {'bad-name': x}\nslos:"),
            "labels.bad-name: not a valid label name",
        ),
        (_sloth().replace("version:", "slo_plugins: {chain: []}\nversion:"), "slo_plugins: Sloth plugins"),
    ],
)
def test_sloths_bad_specs_are_rejected_with_one_line(text: str, message: str) -> None:
    with pytest.raises(UserError) as exc:
        parse_slos(text, "f.yaml")
    assert "\n" not in str(exc.value)
    assert message in str(exc.value)


@pytest.mark.prometheus
@needs_shared
def test_promtool_accepts_every_sloth_style_output(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from sloanalysis.slo.rulegen import dump_rules

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    files = []
    for path in EXAMPLES:
        if path.name not in PLUGIN_EXAMPLES:
            out = tmp_path / path.name
            out.write_text(dump_rules(generate_rules(load_slos(path)), source=path.name), encoding="utf-8")
            files.append(str(out))
    result = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


_SLOTH_28D = """version: prometheus/v1
service: s
slos:
  - name: a
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors_total[{{.window}}]))
        total_query: sum(rate(requests_total[{{.window}}]))
    alerting: {name: Burn}
"""


@pytest.mark.prometheus
@pytest.mark.parametrize(
    ("style", "quiet_min", "paging_min"),
    [
        # 28 days, 1.38 % errors = burn rate 13.8 after a healthy day. Sloth keeps 5m/1h and pages at
        # 13.44x: once the 1h window is 13.44/13.8 = 97.4 % inside the bad phase (58.4 min).
        ("sloth", 55, 65),
        # Native scales the windows (56m/4m40s at 14.4: never) and pages on 5h36m/28m at 6x once
        # 6/13.8 of 5h36m = 146 min are bad.
        ("native", 135, 160),
    ],
)
def test_promtool_pages_when_sloth_does_on_a_28_day_period(
    tmp_path: Path, style: Style, quiet_min: int, paging_min: int
) -> None:
    import shutil
    import subprocess

    from sloanalysis.slo.rulegen import dump_rules

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed")
    slos = parse_slos(_SLOTH_28D, default_period_ms=28 * 86_400_000)
    (tmp_path / "rules.yaml").write_text(dump_rules(generate_rules(slos, style=style)))
    onset = 1440  # minutes of healthy traffic first
    firing = 'count(ALERTS{alertstate="firing", alertname="Burn", %s="page"})'
    severity = "sloth_severity" if style == "sloth" else "slo_severity"
    test = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": "requests_total", "values": "0+100x1700"},
                    {"series": "errors_total", "values": f"0x{onset} 1.38+1.38x260"},
                ],
                "promql_expr_test": [
                    {"expr": firing % severity, "eval_time": f"{onset + quiet_min}m", "exp_samples": []},
                    {
                        "expr": firing % severity,
                        "eval_time": f"{onset + paging_min}m",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    },
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [promtool, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
