"""One Redis client per process, and the keys core owns.

The client is created on first use (never at import) and re-created after a fork, so Celery's prefork
children and gunicorn workers never share a socket with their parent.
"""

from __future__ import annotations

import os

import redis
from django.conf import settings

BEAT_LOCK_KEY = "pipewatch:beat:lock"
BEAT_HEARTBEAT_KEY = "pipewatch:beat:heartbeat"

_client: tuple[int, str, redis.Redis] | None = None


def redis_client() -> redis.Redis:
    """The process's Redis client for settings.REDIS_URL (short timeouts: callers handle RedisError)."""
    global _client  # noqa: PLW0603 - a per-process cache keyed by pid
    if _client is None or _client[0] != os.getpid() or _client[1] != settings.REDIS_URL:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        )
        _client = (os.getpid(), settings.REDIS_URL, client)
    return _client[2]
