"""sensors' Celery tasks: thin adapters over services."""

from __future__ import annotations

import logging

import redis
from celery import shared_task
from django.db import OperationalError

from .services import frames, retention

logger = logging.getLogger(__name__)

# A purge run stops after this long and queues itself again, at most PURGE_MAX_REQUEUES times a day.
PURGE_RUN_SECONDS = 240
PURGE_MAX_REQUEUES = 20


@shared_task(
    name="sensors.send_server_frame",
    autoretry_for=(redis.RedisError, OperationalError),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def send_server_frame() -> int:
    """Queue the 10-minute server frame on the bridge's outbox (once per 10-minute slot)."""
    rows = frames.send_server_frame()
    logger.info("server frame: %d rows queued", rows)
    return rows


@shared_task(
    name="sensors.purge_old_readings",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=PURGE_RUN_SECONDS + 60,
    time_limit=PURGE_RUN_SECONDS + 90,
)
def purge_old_readings(requeued: int = 0) -> int:
    """Delete readings past retention in batches; a run that hits its time budget queues the rest."""
    deleted, finished = retention.purge_old_readings(max_seconds=PURGE_RUN_SECONDS)
    logger.info("retention: %d readings deleted%s", deleted, "" if finished else ", more to go")
    if not finished and requeued < PURGE_MAX_REQUEUES:
        purge_old_readings.delay(requeued=requeued + 1)
    return deleted
