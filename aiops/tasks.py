"""aiops' Celery tasks: thin adapters over services (queue `detect`, explicit on each)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from django.db import OperationalError
from redis import RedisError

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, RedisError)


@shared_task(name="aiops.process_incidents", queue="detect", soft_time_limit=50, time_limit=55,
             autoretry_for=TRANSIENT, retry_backoff=2, retry_jitter=True, max_retries=5)  # fmt: skip
def process_incidents() -> dict[str, Any]:
    """Group new events, resolve finished incidents, send due messages; come back when the next one is due."""
    from .services import incidents

    result = incidents.process()
    wait = result["next_due_in"]
    if wait is not None:
        process_incidents.apply_async(countdown=max(1.0, wait + 0.5))
    return {**result, "sent": [list(item) for item in result["sent"]]}


@shared_task(name="aiops.score_metrics", queue="detect", soft_time_limit=50, time_limit=55,
             autoretry_for=TRANSIENT, retry_backoff=2, retry_jitter=True, max_retries=2)  # fmt: skip
def score_metrics(now: str | None = None) -> dict[str, Any]:
    from .services.scoring import score_metrics as score

    result = score(datetime.fromisoformat(now) if now else None)
    return {"series": result.series, "points": result.points, "fired": result.fired, "seconds": result.seconds}


@shared_task(name="aiops.forecast_capacity", queue="detect", soft_time_limit=240, time_limit=270,
             autoretry_for=TRANSIENT, retry_backoff=5, retry_jitter=True, max_retries=2)  # fmt: skip
def forecast_capacity(now: str | None = None) -> list[dict[str, Any]]:
    from .services.capacity import run_capacity

    return run_capacity(datetime.fromisoformat(now) if now else None)


# A purge run stops after this long and queues itself again, at most PURGE_MAX_REQUEUES times a day.
PURGE_RUN_SECONDS = 240
PURGE_MAX_REQUEUES = 20


@shared_task(name="aiops.purge_metric_points", queue="default", soft_time_limit=PURGE_RUN_SECONDS + 60,
             time_limit=PURGE_RUN_SECONDS + 90, autoretry_for=(OperationalError,), retry_backoff=30,
             max_retries=3)  # fmt: skip
def purge_metric_points(requeued: int = 0) -> int:
    """Daily: custom-metric points past retention; a run out of time queues the rest."""
    from .services.metrics import purge_points

    deleted, finished = purge_points(max_seconds=PURGE_RUN_SECONDS)
    logger.info("metric points: %d deleted%s", deleted, "" if finished else ", more to go")
    if not finished and requeued < PURGE_MAX_REQUEUES:
        purge_metric_points.delay(requeued=requeued + 1)
    return deleted


@shared_task(name="aiops.purge_old_records", queue="default", soft_time_limit=PURGE_RUN_SECONDS + 60,
             time_limit=PURGE_RUN_SECONDS + 90, autoretry_for=(OperationalError,), retry_backoff=30,
             max_retries=3)  # fmt: skip
def purge_old_records(requeued: int = 0) -> dict[str, int]:
    """Daily: Alertmanager payloads, resolved incidents and insights past retention; a run out of time
    queues the rest."""
    from .services.retention import purge_old_records as purge

    deleted, finished = purge(max_seconds=PURGE_RUN_SECONDS)
    logger.info("aiops retention: %s deleted%s", deleted, "" if finished else ", more to go")
    if not finished and requeued < PURGE_MAX_REQUEUES:
        purge_old_records.delay(requeued=requeued + 1)
    return deleted
