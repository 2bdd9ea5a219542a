"""eventlogs' Celery tasks (queue `events`): thin adapters over services."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from .services import enrichment, maintenance


@shared_task(
    name="eventlogs.enrich_batch",
    queue="events",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=300,
    time_limit=330,
)
def enrich_batch(batch_id: str) -> dict[str, Any] | None:
    """Idempotent: a redelivered or repeated run rewrites the same rows (upsert on the event id)."""
    outcome = enrichment.enrich_batch(batch_id)
    if outcome is None:
        return None
    return {"enriched": outcome.enriched, "failed": len(outcome.failures), "duplicates": outcome.duplicates}


@shared_task(name="eventlogs.requeue_stale", queue="events", soft_time_limit=50, time_limit=55)
def requeue_stale() -> int:
    return maintenance.requeue_stale()


@shared_task(name="eventlogs.seal_archive", queue="events", soft_time_limit=600, time_limit=660)
def seal_archive() -> int:
    return maintenance.seal_archive()


@shared_task(name="eventlogs.purge_archive", queue="events", soft_time_limit=600, time_limit=660)
def purge_archive() -> int:
    return maintenance.purge_archive()


from .detection import tasks as detection_tasks  # noqa: E402, F401 - registers eventlogs.score_behaviour
