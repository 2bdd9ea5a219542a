"""deploy/prometheus/eventlogs_alerts.yml: promtool validates and unit-tests it; its metrics and runbooks exist."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY

import eventlogs.metrics  # noqa: F401 - registers the names
from tests.conftest import BASE_DIR

PROMETHEUS_DIR = BASE_DIR / "deploy" / "prometheus"


def promtool(*argv: str) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `make tools` installs it")
    return subprocess.run([path, *argv], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120, check=False)


def rules() -> list[dict[str, object]]:
    document = yaml.safe_load((PROMETHEUS_DIR / "eventlogs_alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    checked = promtool("check", "rules", "eventlogs_alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "eventlogs_alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "eventlogs_alerts.yml" in yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["rule_files"]


def test_rules_use_exposed_metrics_and_have_runbooks() -> None:
    exposed = set(REGISTRY._names_to_collectors)
    for rule in rules():
        names = set(re.findall(r"\bpipewatch_[a-z_]+\b", str(rule["expr"])))
        assert names, rule["alert"]
        assert names <= exposed, rule["alert"]
        url = str(rule["annotations"]["runbook_url"])  # type: ignore[index]
        path, _, anchor = url.partition("#")
        text = (BASE_DIR / path).read_text()
        assert not anchor or f"## {anchor.replace('-', ' ')}".lower() in text.lower(), url
