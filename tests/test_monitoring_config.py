"""monitoring/: the real promtool and amtool accept the configurations; the wiring between the
files (rule files, dashboard mount, provisioning paths, generated SLO rules) holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from simulator.live.stack import prometheus_config
from sloanalysis.rules.model import load_rules

ROOT = Path(__file__).resolve().parents[1]
MON = ROOT / "monitoring"
PROMTOOL = os.environ.get("PROMTOOL", "/usr/bin/promtool")
AMTOOL = os.environ.get("AMTOOL", "/usr/bin/amtool")


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)


@pytest.mark.prometheus
def test_promtool_accepts_prometheus_config() -> None:
    proc = _run(PROMTOOL, "check", "config", str(MON / "prometheus.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 2 rule files found" in proc.stdout


@pytest.mark.prometheus
def test_promtool_accepts_rule_files() -> None:
    files = sorted((MON / "rules").glob("*.yml"))
    assert {f.name for f in files} >= {"tron-payment.yml", "slo-generated.yml"}
    proc = _run(PROMTOOL, "check", "rules", *map(str, files))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.prometheus
def test_promtool_accepts_the_live_config(tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus_config("127.0.0.1:8090", "127.0.0.1:9093", scrape_interval="2s"))
    proc = _run(PROMTOOL, "check", "config", str(config))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_amtool_accepts_alertmanager_config() -> None:
    if not (shutil.which(AMTOOL) or os.access(AMTOOL, os.X_OK)):
        if os.environ.get("CI"):
            pytest.fail("CI is set but amtool is missing (apt-get install prometheus-alertmanager)")
        pytest.skip("needs amtool (apt-get install prometheus-alertmanager)")
    proc = _run(AMTOOL, "check-config", str(MON / "alertmanager.yml"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_generated_slo_rules_are_current(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """monitoring/rules/slo-generated.yml is what `sloanalysis generate-rules` makes today."""
    from sloanalysis.cli.main import main

    monkeypatch.chdir(ROOT)  # the header names the SLO file as given
    out = tmp_path / "slo.yml"
    assert main(["generate-rules", "slos/tron-payment.yaml", "--out", str(out)]) == 0
    assert out.read_text() == (MON / "rules" / "slo-generated.yml").read_text()


def test_wiring_between_files() -> None:
    prom = yaml.safe_load((MON / "prometheus.yml").read_text())
    for rule_file in prom["rule_files"]:
        assert load_rules(MON / rule_file)  # parses, non-empty
    assert prom["scrape_configs"][0]["job_name"] == "tron-payment-api"
    compose = yaml.safe_load((MON / "compose.yaml").read_text())
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:")  # host ports on loopback only
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (MON / source).exists(), volume
    grafana = compose["services"]["grafana"]["volumes"]
    mount = next(v for v in grafana if v.startswith("./grafana/dashboards/")).split(":")[1]
    # File provisioning wants the bare model: the same dashboard as monitoring/dashboard.json's wrapper.
    bare = json.loads((MON / "grafana/dashboards/tron-payment.json").read_text())
    assert bare == json.loads((MON / "dashboard.json").read_text())["dashboard"]
    assert "panels" in bare and "dashboard" not in bare
    provider = yaml.safe_load((MON / "grafana/provisioning/dashboards/dashboards.yml").read_text())
    assert Path(mount).parent == Path(provider["providers"][0]["options"]["path"])
    datasource = yaml.safe_load((MON / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["type"] == "prometheus"
    assert datasource["datasources"][0]["isDefault"] is True
