"""Settings come from the environment; production refuses DEBUG and a missing/dev SECRET_KEY."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from tests.conftest import BASE_DIR


def check_ids() -> set[str]:
    return {message.id for message in run_checks() if message.id and message.id.startswith("pipewatch.")}


@override_settings(PIPEWATCH_ENV="prod", DEBUG=True, SECRET_KEY="x" * 50)
def test_production_with_debug_is_refused() -> None:
    assert check_ids() == {"pipewatch.E001"}


@override_settings(PIPEWATCH_ENV="prod", DEBUG=False, SECRET_KEY=settings.DEV_SECRET_KEY)
def test_production_without_secret_key_is_refused() -> None:
    assert check_ids() == {"pipewatch.E002"}


@override_settings(PIPEWATCH_ENV="staging")
def test_unknown_environment_is_refused() -> None:
    assert "pipewatch.E003" in check_ids()


@override_settings(PIPEWATCH_ENV="prod", DEBUG=False, SECRET_KEY="a-real-production-secret-" * 2)
def test_production_configured_properly_passes() -> None:
    assert check_ids() == set()


def manage_check(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "PIPEWATCH_ENV"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_process_started_in_production_without_secret_fails_loudly() -> None:
    result = manage_check(PIPEWATCH_ENV="prod")
    assert result.returncode != 0
    assert "pipewatch.E002" in result.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["-c", "import core.wsgi"],
        ["-m", "celery", "-A", "core", "worker", "--queues", "default", "--concurrency", "1"],
    ],
    ids=["gunicorn-app", "celery-worker"],
)
def test_long_running_processes_refuse_debug_in_production(argv: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, *argv],
        cwd=BASE_DIR,
        env={**os.environ, "PIPEWATCH_ENV": "prod", "DEBUG": "true", "SECRET_KEY": "s" * 60},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "pipewatch.E001" in result.stdout + result.stderr


def run_python(code: str, **env: str) -> str:
    """Run `code` in a fresh interpreter with Django set up under the given environment; return stdout."""
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "core.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def test_settings_read_from_environment() -> None:
    out = run_python(
        "from django.conf import settings as s\n"
        "print(s.TIME_ZONE, s.DEBUG, ','.join(s.ALLOWED_HOSTS), s.DATABASES['default']['ENGINE'])",
        TIME_ZONE="UTC",
        DEBUG="false",
        ALLOWED_HOSTS="a.example,b.example",
        DATABASE_URL="sqlite:////tmp/x.sqlite3",
    )
    assert out.split() == ["UTC", "False", "a.example,b.example", "django.db.backends.sqlite3"]


def test_bad_boolean_fails_loudly() -> None:
    result = manage_check(DEBUG="maybe-ish", PIPEWATCH_ENV="dev")
    assert result.returncode != 0
    assert "DEBUG='maybe-ish' is not a boolean" in result.stderr


def test_log_dir_writes_structured_rotating_file(tmp_path: Path) -> None:
    out = run_python(
        "import logging\n"
        "logging.getLogger('pipewatch.test').warning('hello')\n"
        "(h,) = [x for x in logging.getLogger().handlers if isinstance(x, logging.handlers.TimedRotatingFileHandler)]\n"
        "print(h.when, h.backupCount)",
        LOG_DIR=str(tmp_path),
        PIPEWATCH_PROCESS="unit",
    )
    assert out.split() == ["MIDNIGHT", "7"]
    line = (tmp_path / "unit.log").read_text().strip().splitlines()[-1]
    assert line.split(" | ")[1:] == ["WARNING", "pipewatch.test", "hello"]
