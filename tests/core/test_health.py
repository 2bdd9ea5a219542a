"""GET /api/v1/health: 200 with every component up, 503 naming what is down."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
import requests
from django.test import Client

from core.redis import BEAT_HEARTBEAT_KEY
from tests.conftest import ChildProcess, free_port, get_or_none, wait_for


def test_everything_up_is_200(
    celery_worker: Callable[..., ChildProcess],
    start_process: Callable[..., ChildProcess],
    clean_redis: redis.Redis,
) -> None:
    celery_worker(queues="default")
    start_process("beat", "-m", "celery", "-A", "core", "beat", "--loglevel", "INFO")
    wait_for(lambda: clean_redis.get(BEAT_HEARTBEAT_KEY), timeout=60, what="beat's heartbeat")

    response = Client().get("/api/v1/health")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert {"database", "broker", "workers", "beat"} <= set(body["checks"])
    assert body["checks"]["workers"]["detail"].startswith("test-")


def test_broker_unreachable_is_503_naming_it(start_process: Callable[..., ChildProcess]) -> None:
    """A real web process whose broker is a closed port."""
    port = free_port()
    start_process(
        "web",
        "-m",
        "gunicorn",
        "core.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--config",
        "python:core.gunicorn_conf",
        env={"CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "HEALTH_WORKER_PING_TIMEOUT": "0.3"},
    )
    url = f"http://127.0.0.1:{port}/api/v1/health"
    wait_for(lambda: get_or_none(url) is not None, timeout=60, what="web")
    response = requests.get(url, timeout=10)
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "failing"
    assert "broker" in body["failing"]
    assert "broker unreachable" in body["checks"]["broker"]["detail"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_no_worker_and_no_beat_are_named() -> None:
    body = Client().get("/api/v1/health").json()
    assert {"workers", "beat"} <= set(body["failing"])
    assert body["checks"]["beat"]["detail"] == "beat has never reported"
