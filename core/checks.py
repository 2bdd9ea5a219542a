"""Start-up checks: Django system checks that refuse a bad configuration, and core's health checks."""

from __future__ import annotations

import sys
import time
from typing import Any

import redis
from django.conf import settings
from django.core.checks import CheckMessage, Error, register
from django.db import connection

from . import health
from .redis import BEAT_HEARTBEAT_KEY, redis_client

ENVIRONMENTS = ("dev", "prod")


@register(deploy=False)
def check_environment(app_configs: Any = None, **_: Any) -> list[CheckMessage]:
    """Production never runs with DEBUG on, without a SECRET_KEY or with the dev key."""
    errors: list[CheckMessage] = []
    if settings.PIPEWATCH_ENV not in ENVIRONMENTS:
        errors.append(
            Error(f"PIPEWATCH_ENV={settings.PIPEWATCH_ENV!r} is not one of {ENVIRONMENTS}.", id="pipewatch.E003")
        )
    if settings.PIPEWATCH_ENV == "prod":
        if settings.DEBUG:
            errors.append(
                Error("DEBUG is on in production.", hint="Unset DEBUG or set DEBUG=false.", id="pipewatch.E001")
            )
        if not settings.SECRET_KEY or settings.SECRET_KEY == settings.DEV_SECRET_KEY:
            errors.append(
                Error(
                    "SECRET_KEY is missing (or is the development key) in production.",
                    hint="Set SECRET_KEY to a long random value from your secret store.",
                    id="pipewatch.E002",
                )
            )
    return errors


def refuse_bad_configuration() -> None:
    """Run the system checks and exit on any error (gunicorn and Celery skip them otherwise).

    SystemExit, not an exception: Celery's signal dispatch logs and swallows exceptions.
    """
    from django.core.checks import run_checks

    errors = [message for message in run_checks() if message.is_serious()]
    if errors:
        sys.exit("refusing to start:\n" + "\n".join(str(error) for error in errors))


@health.register("database")
def database_health() -> health.CheckResult:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return health.CheckResult(ok=True, detail=connection.vendor)


def _broker_error() -> str | None:
    """Why the broker cannot be reached within a second, or None when it answers."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"broker unreachable: {exc}"
    finally:
        client.close()
    return None


@health.register("broker")
def broker_health() -> health.CheckResult:
    error = _broker_error()
    return health.CheckResult(ok=error is None, detail=error or "redis answers")


@health.register("workers")
def workers_health() -> health.CheckResult:
    from .celery import app

    # Without a broker Celery's ping would retry its connection for seconds: answer at once instead.
    if error := _broker_error():
        return health.CheckResult(ok=False, detail=f"cannot ping workers: {error}")
    try:
        replies = app.control.ping(timeout=settings.HEALTH_WORKER_PING_TIMEOUT) or []
    except (OSError, redis.RedisError) as exc:
        return health.CheckResult(ok=False, detail=f"cannot ping workers: {exc}")
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return health.CheckResult(ok=False, detail="no worker answered the ping")
    return health.CheckResult(ok=True, detail=", ".join(names))


@health.register("beat")
def beat_health() -> health.CheckResult:
    try:
        raw = redis_client().get(BEAT_HEARTBEAT_KEY)
    except redis.RedisError as exc:
        return health.CheckResult(ok=False, detail=f"cannot read beat heartbeat: {exc}")
    if raw is None:
        return health.CheckResult(ok=False, detail="beat has never reported")
    age = time.time() - float(raw)
    if age > settings.BEAT_STALE_AFTER_SECONDS:
        return health.CheckResult(ok=False, detail=f"beat last ticked {age:.0f} s ago")
    return health.CheckResult(ok=True, detail=f"last tick {age:.1f} s ago")
