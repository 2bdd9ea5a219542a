"""anomaly's Celery tasks: thin adapters over services (all on the detect queue by their name prefix)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from celery import shared_task
from django.db import OperationalError
from redis import RedisError

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, RedisError)


@shared_task(
    name="anomaly.detect_minute",
    soft_time_limit=50,
    time_limit=55,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_jitter=True,
    max_retries=3,
)
def detect_minute(now: str | None = None) -> list[dict[str, Any]]:
    """Evaluate the pending minutes (ISO `now` for a replay; default: the current time)."""
    from .services.detect import run_detection

    results = run_detection(datetime.fromisoformat(now) if now else None)
    return [{"minute": r.minute.isoformat(), "sensors": r.sensors, "fired": r.fired} for r in results]


@shared_task(
    name="anomaly.store_night_flow",
    soft_time_limit=240,
    time_limit=270,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_jitter=True,
    max_retries=3,
)
def store_night_flow(now: str | None = None) -> dict[str, int]:
    from .services.night import store_night_flow as store

    return store(datetime.fromisoformat(now) if now else None)


@shared_task(
    name="anomaly.rebuild_criteria",
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 60,
    # Hours-long on a big site: longer than the visibility timeout, so acked on receipt. A lost run leaves
    # nothing (the version is saved in one transaction at the end) and the next daily check rebuilds.
    acks_late=False,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def rebuild_criteria(sensor_codes: list[str] | None = None, from_file: str | None = None) -> int | None:
    """Daily (beat): a new version when one is due (anomaly.criteria.rebuild_reason); with arguments, now.

    Returns the new version's id, or None when nothing was due.
    """
    from .criteria import build_criteria, rebuild_if_due

    if sensor_codes or from_file:
        return int(build_criteria(sensor_codes, Path(from_file) if from_file else None).pk)
    version = rebuild_if_due()
    return int(version.pk) if version else None


@shared_task(
    name="anomaly.purge_detection_results",
    soft_time_limit=300,
    time_limit=330,
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def purge_detection_results(requeued: int = 0) -> int:
    """Daily: drop per-minute results past ANOMALY_RESULTS_RETENTION_DAYS; a run out of time queues the rest."""
    from .services.results import purge_old_results

    deleted, finished = purge_old_results()
    logger.info("detection results: %d deleted%s", deleted, "" if finished else ", more to go")
    if not finished and requeued < 20:
        purge_detection_results.delay(requeued=requeued + 1)
    return deleted
