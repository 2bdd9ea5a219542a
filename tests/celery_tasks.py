"""Tasks that exist only to test Celery's wiring (routing, serialization, acks_late redelivery)."""

from __future__ import annotations

import time

import redis
from celery import shared_task
from django.conf import settings
from django.db import connection


@shared_task(name="pipewatch_test.echo")
def echo(value: object) -> object:
    return value


@shared_task(name="pipewatch_test.slow_upsert")
def slow_upsert(key: str, value: int, seconds: float) -> None:
    """Count the attempt, work for a while, then write idempotently (an upsert on the natural key)."""
    redis.Redis.from_url(settings.REDIS_URL).incr(f"attempts:{key}")
    time.sleep(seconds)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO test_effect (key, value) VALUES (%s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [key, value],
        )


@shared_task(name="pipewatch_test.tick")
def tick() -> None:
    """One row per run (the broker-restart test's periodic task: did beat send it and a worker run it?)."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO test_effect (key, value) VALUES (%s, 1)", [f"tick-{time.time():.6f}"])
