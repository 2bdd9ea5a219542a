"""The beat scheduler: django-celery-beat's DatabaseScheduler, guarded so only one beat sends.

Two beats would send every periodic task twice. Each beat tries to take a Redis lock (redis-py's
token-checked Lock, with a TTL) on every tick; only the holder sends, the others stay on standby and
take over within one TTL when the holder dies. The holder also writes the heartbeat that
/api/v1/health reads, and syncs the declared periodic tasks once it holds the lock.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler
from redis.lock import Lock

from .periodic import sync_periodic_tasks
from .redis import BEAT_HEARTBEAT_KEY, BEAT_LOCK_KEY, redis_client

logger = logging.getLogger(__name__)


class SingletonDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._lock: Lock | None = None
        self._synced = False
        super().__init__(*args, **kwargs)

    def _holds_lock(self) -> bool:
        """Take or keep the beat lock; False while another beat holds it or Redis is unreachable."""
        ttl = settings.BEAT_LOCK_TTL_SECONDS
        try:
            if self._lock is not None:
                try:
                    self._lock.reacquire()
                except redis.exceptions.LockError:
                    logger.warning("beat lost its lock; going to standby")
                    self._lock = None
            if self._lock is None:
                lock = redis_client().lock(BEAT_LOCK_KEY, timeout=ttl, blocking=False)
                if not lock.acquire(blocking=False):
                    return False
                logger.info("beat holds the lock: this instance sends the periodic tasks")
                self._lock = lock
            redis_client().set(BEAT_HEARTBEAT_KEY, f"{time.time():.3f}")
        except redis.RedisError as exc:
            logger.warning("beat cannot reach Redis (%s); not sending until it is back", exc)
            self._lock = None
            return False
        return True

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._holds_lock():
            logger.debug("another beat holds the lock; standing by")
            return min(self.max_interval, settings.BEAT_LOCK_TTL_SECONDS / 3)
        if not self._synced:
            sync_periodic_tasks()
            self._synced = True
        interval = super().tick(*args, **kwargs)
        # Wake before the lock expires, whatever the next due entry is.
        return min(interval, settings.BEAT_LOCK_TTL_SECONDS / 3)

    def close(self) -> None:
        super().close()
        if self._lock is not None:
            try:
                self._lock.release()
            except (redis.RedisError, redis.exceptions.LockError) as exc:
                logger.warning("could not release the beat lock: %s", exc)
            self._lock = None
