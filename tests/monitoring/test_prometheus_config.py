"""deploy/prometheus and deploy/grafana: promtool validates and unit-tests the rules; every metric the rules
and dashboards use is one pipewatch exposes (or is listed below as promised by another app)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from monitoring.metrics import HostCollector
from monitoring.services.sampling import HostSampler
from tests.conftest import BASE_DIR

PROMETHEUS_DIR = BASE_DIR / "deploy" / "prometheus"
GRAFANA_DIR = BASE_DIR / "deploy" / "grafana"
# Exposed by Prometheus itself or by processes outside this code base.
EXTERNAL = {"up"}
# Agreed names other apps have not exposed yet (reported to the lead): the rules stay ready for them.
PROMISED = {"pipewatch_forecast_active_model_timestamp_seconds"}
METRIC_NAME = re.compile(r"\b(?:pipewatch|node|kipris|process)_[a-zA-Z0-9_]+\b|\bup\b")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `apt-get install -y --no-install-recommends prometheus` provides it")
    return path


def run(*argv: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = run(promtool(), "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(promtool(), "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_in_a_unit_test() -> None:
    tested = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    firing = {
        case["alertname"] for test in tested["tests"] for case in test["alert_rule_test"] if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules()} <= firing


def test_promtool_checks_the_scrape_config(tmp_path: Path) -> None:
    """The config as mounted in the container (/etc/prometheus), with a stand-in for the Flower secret."""
    shutil.copytree(PROMETHEUS_DIR, tmp_path / "prometheus")
    config = tmp_path / "prometheus" / "prometheus.yml"
    config.write_text(config.read_text().replace("/etc/prometheus/", f"{tmp_path}/prometheus/"))
    (tmp_path / "prometheus" / "secrets").mkdir()
    (tmp_path / "prometheus" / "secrets" / "flower_password").write_text("secret\n")
    result = run(promtool(), "check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"] for job in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert jobs >= {
        "pipewatch-web",
        "pipewatch-worker",
        "pipewatch-beat",
        "pipewatch-bridge",
        "pipewatch-host-agent",
        "flower",
    }


def test_every_rule_has_for_severity_summary_and_a_runbook_that_exists() -> None:
    runbook = (BASE_DIR / "docs" / "monitoring.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for rule in rules():
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/monitoring.md#"), rule["alert"]
        assert url.split("#", 1)[1] in anchors, f"{rule['alert']}: no section for {url}"


def exposed_metric_names() -> set[str]:
    """Every sample name pipewatch's processes can expose: all apps' metric modules, and the host collector."""
    for app in ("core", "sensors", "anomaly", "forecasting", "ingest", "monitoring"):
        if importlib.util.find_spec(f"{app}.metrics") is not None:
            importlib.import_module(f"{app}.metrics")
    names = set(REGISTRY._names_to_collectors)  # the registry's own index of sample names
    names |= {"pipewatch_celery_queue_length"}  # core's scrape-time collector
    sampler = HostSampler("names")
    time.sleep(0.1)
    sample = sampler.sample()
    for family in HostCollector(lambda: sample, 0.0).collect():
        names |= {s.name for s in family.samples}
    return names | {f"process_{suffix}" for suffix in ("cpu_seconds_total", "resident_memory_bytes", "open_fds")}


def used_names(expression: str) -> set[str]:
    return set(METRIC_NAME.findall(re.sub(r'"[^"]*"', '""', expression)))


def dashboard_expressions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        found[path.name] = [t["expr"] for p in board["panels"] for t in p.get("targets", []) if "expr" in t]
    return found


def test_rules_and_dashboards_use_only_exposed_metric_names() -> None:
    known = exposed_metric_names() | EXTERNAL | PROMISED
    unknown: dict[str, set[str]] = {}
    for rule in rules():
        assert used_names(rule["expr"]), rule["alert"]
        if missing := used_names(rule["expr"]) - known:
            unknown[rule["alert"]] = missing
    for board, expressions in dashboard_expressions().items():
        for expression in expressions:
            if missing := used_names(expression) - known:
                unknown.setdefault(board, set()).update(missing)
    assert not unknown, f"metric names nobody exposes: {unknown}"


def test_grafana_dashboards_are_generated_and_provisioned() -> None:
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA_DIR / "build_dashboards.py")
    assert spec is not None
    assert spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    for name, board in builder.DASHBOARDS.items():
        path = GRAFANA_DIR / "dashboards" / f"{name}.json"
        assert path.read_text() == builder.render(board), f"{path} is stale: run deploy/grafana/build_dashboards.py"
    titles = {json.loads(p.read_text())["title"] for p in (GRAFANA_DIR / "dashboards").glob("*.json")}
    assert titles == {
        "pipewatch / System (hosts)",
        "pipewatch / Queue (Celery)",
        "pipewatch / Water network",
        "pipewatch / KIPRIS",
    }

    datasources = yaml.safe_load((GRAFANA_DIR / "provisioning" / "datasources" / "pipewatch.yml").read_text())
    uids = {source["uid"] for source in datasources["datasources"]}
    for path in (GRAFANA_DIR / "dashboards").glob("*.json"):
        board = json.loads(path.read_text())
        assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] in uids, (path.name, panel["title"])
    provider = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "pipewatch.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
