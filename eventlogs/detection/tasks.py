"""Behaviour detection's Celery task (queue `events`): a thin adapter over services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError

from . import services


@shared_task(
    name="eventlogs.score_behaviour",
    queue="events",
    autoretry_for=(OperationalError,),
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=50,
    time_limit=58,
)
def score_behaviour(kind: str | None = None) -> int:
    """Every minute: score the new complete windows (idempotent: a scored window is never scored again)."""
    return services.score_new_windows([kind] if kind else None)
