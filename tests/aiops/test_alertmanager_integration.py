"""The real loop: Debian's prometheus scrapes a running worker, the project's alert rules fire when it is
stopped, Debian's prometheus-alertmanager routes the alert with deploy/alertmanager/alertmanager.yml to the
web process's receiver, and the worker-down alert arrives as an incident. Only timers are shortened
(scrape/evaluation 1 s, the rule's `for` 3 s, group_wait 1 s), nothing is simulated."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from aiops.models import AlertPayload, IncidentMember
from anomaly.models import AnomalyEvent
from tests.conftest import BASE_DIR, ChildProcess, free_port, get_or_none, wait_for

TOKEN = "alerts-token-for-the-test"
RULE_FOR = "3s"


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make tools` (scripts/install_system_tools.sh) installs it from Debian")
    return path


@pytest.fixture
def start_binary(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start a system binary in its own session, logging to tmp_path; stopped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, *argv: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen([binary(name), *argv], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)


def rules_with_short_for(path: Path) -> None:
    """The project's alert rules, with the worker-down rule's `for` shortened (a test override)."""
    rules = yaml.safe_load((BASE_DIR / "deploy/prometheus/alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "PipewatchWorkerDown":
                rule["for"] = RULE_FOR
    path.write_text(yaml.safe_dump(rules))


def alertmanager_config(path: Path, web_port: int, token_file: Path) -> None:
    """deploy/alertmanager/alertmanager.yml pointed at this test's web process, with 1 s route timers."""
    config = yaml.safe_load((BASE_DIR / "deploy/alertmanager/alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="2s")
    hook = config["receivers"][0]["webhook_configs"][0]
    hook["url"] = f"http://127.0.0.1:{web_port}/api/v1/aiops/alerts"
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    path.write_text(yaml.safe_dump(config))


def prometheus_config(path: Path, rules: Path, worker_metrics: int, beat_metrics: int, am_port: int) -> None:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {"job_name": "pipewatch-worker",
             "static_configs": [{"targets": [f"127.0.0.1:{worker_metrics}"], "labels": {"pool": "default"}}]},
            {"job_name": "pipewatch-beat", "static_configs": [{"targets": [f"127.0.0.1:{beat_metrics}"]}]},
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))


def query(prom_port: int, expr: str) -> list[dict[str, Any]]:
    answer = get_or_none(f"http://127.0.0.1:{prom_port}/api/v1/query", timeout=2, params={"query": expr})
    return list(answer.json()["data"]["result"]) if answer is not None and answer.ok else []


@pytest.mark.slow
def test_worker_down_alert_arrives_as_an_incident(
    tmp_path: Path,
    start_process: Callable[..., ChildProcess],
    celery_worker: Callable[..., ChildProcess],
    start_binary: Callable[..., subprocess.Popen[bytes]],
) -> None:
    web_port, worker_metrics, beat_metrics, prom_port, am_port = (free_port() for _ in range(5))
    env = {"AIOPS_ALERTS_TOKEN": TOKEN, "AIOPS_GROUP_WAIT_SECONDS": "1"}
    start_process("web", "-m", "gunicorn", "core.wsgi", "--bind", f"127.0.0.1:{web_port}", "--workers", "1",
                  "--config", "python:core.gunicorn_conf", env=env)  # fmt: skip
    worker = celery_worker(queues="default,detect", env={**env, "METRICS_PORT": str(worker_metrics)})
    start_process("beat", "-m", "celery", "-A", "core", "beat", "--loglevel", "INFO",
                  env={**env, "METRICS_PORT": str(beat_metrics)})  # fmt: skip

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    rules_with_short_for(tmp_path / "alerts.yml")
    alertmanager_config(tmp_path / "alertmanager.yml", web_port, token_file)
    prometheus_config(tmp_path / "prometheus.yml", tmp_path / "alerts.yml", worker_metrics, beat_metrics, am_port)
    start_binary("prometheus-alertmanager", f"--config.file={tmp_path / 'alertmanager.yml'}",
                 f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{am_port}",
                 "--cluster.listen-address=")  # fmt: skip
    start_binary("prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}")  # fmt: skip

    # The receiver refuses a caller without the token (what Alertmanager sends is checked below).
    health = f"http://127.0.0.1:{web_port}/api/v1/health"
    wait_for(lambda: get_or_none(health, timeout=5) is not None, timeout=60, what="web")
    refused = requests.post(f"http://127.0.0.1:{web_port}/api/v1/aiops/alerts", json={"alerts": []}, timeout=5)
    assert refused.status_code == 401
    wrong = base64.b64encode(b"someone:guess").decode()
    headers = {"Authorization": f"Basic {wrong}"}
    assert requests.post(f"http://127.0.0.1:{web_port}/api/v1/aiops/alerts", json={"alerts": []}, headers=headers,
                         timeout=5).status_code == 401  # fmt: skip

    up = 'up{job="pipewatch-worker"} == 1'
    wait_for(lambda: query(prom_port, up), timeout=60, interval=0.5, what="Prometheus scraping the worker")
    assert not AnomalyEvent.objects.filter(source="alert", metric="PipewatchWorkerDown").exists()

    worker.stop()
    stopped = time.monotonic()

    def arrived() -> IncidentMember | None:
        event = AnomalyEvent.objects.filter(source="alert", metric="PipewatchWorkerDown").first()
        return IncidentMember.objects.select_related("incident").filter(event=event).first() if event else None

    member = wait_for(arrived, timeout=60, interval=0.5, what="the worker-down alert as an incident")
    elapsed = time.monotonic() - stopped
    assert isinstance(member, IncidentMember)
    # the rule's `for` (3 s) + group_wait (1 s) + a scrape and an evaluation (1 s each) + Alertmanager's
    # first evaluation of the group; the minutes of the production rule never enter.
    assert elapsed < 20, f"{elapsed:.1f} s from the stop to the incident"
    event = member.event
    assert event.severity == "critical"
    assert event.status == "open"
    assert event.evidence["labels"]["instance"] == f"127.0.0.1:{worker_metrics}"
    assert event.evidence["labels"]["pool"] == "default"
    assert event.evidence["annotations"]["summary"].startswith("Celery worker 127.0.0.1")
    incident = member.incident
    assert incident.attributes["host"] == ["127.0.0.1"]
    assert incident.attributes["source"] == ["alert"]
    payload = AlertPayload.objects.filter(processed_at__isnull=False).first()
    assert payload is not None
    assert payload.receiver == "pipewatch"
    assert payload.payload["version"] == "4"
