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
    acks_late=False,  # hours-long on a big site: longer than the visibility timeout; a lost run waits 3 months
    autoretry_for=(OperationalError,),
    retry_backoff=60,
    max_retries=3,
)
def rebuild_criteria(sensor_codes: list[str] | None = None, from_file: str | None = None) -> int:
    """Build a new criteria version (file or database, see anomaly.criteria.build_criteria); returns its id."""
    from .criteria import build_criteria

    version = build_criteria(sensor_codes, Path(from_file) if from_file else None)
    return int(version.pk)
