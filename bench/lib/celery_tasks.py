"""The benchmark's task: report how long after its enqueue it finished (same host, same clock)."""

from __future__ import annotations

import time

import redis
from celery import shared_task
from django.conf import settings


@shared_task(name="bench.done", ignore_result=True)
def done(sent_at: float, key: str) -> None:
    redis.Redis.from_url(settings.REDIS_URL).rpush(key, f"{sent_at} {time.time()}")
