"""docker-compose.yml: no Docker engine runs here, so check the file itself and that its commands exist."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BASE_DIR

INFRASTRUCTURE = {"postgres", "redis", "prometheus", "grafana"}
APP = {"migrate", "web", "worker", "worker-training", "beat", "flower", "bridge", "host-agent"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"])


def test_names_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= INFRASTRUCTURE | APP


def test_app_services_share_one_build(services: dict[str, dict[str, Any]]) -> None:
    app_services = [name for name, service in services.items() if "build" in service]
    assert set(app_services) >= APP
    assert {(services[name]["build"], services[name]["image"]) for name in app_services} == {(".", "pipewatch:latest")}
    assert (BASE_DIR / "Dockerfile").is_file()


def test_production_settings_and_secrets_come_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    for name in APP:
        env = services[name]["environment"]
        assert env["PIPEWATCH_ENV"] == "prod"
        assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")


def test_mounted_deploy_files_exist(services: dict[str, dict[str, Any]]) -> None:
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (BASE_DIR / source).exists(), f"{source} is mounted but missing"


def help_argv(command: str) -> list[str]:
    """The `--help` (or config check) form of a service command, run with this venv's interpreter."""
    argv = shlex.split(command)
    if argv[0] == "python":
        return [sys.executable, *argv[1:3], "--help"]
    if argv[0] == "celery":
        return [sys.executable, "-m", "celery", *argv[1:4], "--help"]
    if argv[0] == "gunicorn":
        return [sys.executable, "-m", "gunicorn", "--check-config", *argv[1:]]
    raise AssertionError(f"unexpected command {command!r}")


@pytest.mark.parametrize("name", sorted(APP))
def test_service_command_exists(services: dict[str, dict[str, Any]], name: str) -> None:
    result = subprocess.run(
        help_argv(services[name]["command"]), cwd=BASE_DIR, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_installs_the_pinned_requirements() -> None:
    dockerfile = Path(BASE_DIR / "Dockerfile").read_text()
    assert "pip install -r requirements.txt" in dockerfile
    assert "FROM python:3.11" in dockerfile


REQUIRED_SECRETS = {"SECRET_KEY", "POSTGRES_PASSWORD", "FLOWER_BASIC_AUTH", "GRAFANA_ADMIN_PASSWORD"}


def compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A real Compose implementation (Debian's docker-compose, installed by `make tools`) validating the file."""
    return subprocess.run(
        ["docker-compose", "-f", str(BASE_DIR / "docker-compose.yml"), "config", "-q"],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_real_compose_accepts_the_file_with_its_secrets_set() -> None:
    result = compose_config(dict.fromkeys(REQUIRED_SECRETS, "set-by-the-test"))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_a_real_compose_refuses_to_start_without_each_secret(missing: str) -> None:
    result = compose_config(dict.fromkeys(REQUIRED_SECRETS - {missing}, "set-by-the-test"))
    assert result.returncode != 0
    assert f"set {missing}" in result.stderr
