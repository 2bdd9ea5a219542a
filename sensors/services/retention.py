"""Readings retention: delete what is older than SENSORS_RETENTION_DAYS (core.retention's batches)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from core.retention import delete_in_batches

from ..models import HourlyPrediction, Reading

PURGE_BATCH = 5000


def purge_old_readings(
    now: datetime | None = None, max_seconds: float = 300.0, batch_size: int = PURGE_BATCH
) -> tuple[int, bool]:
    """Delete readings older than SENSORS_RETENTION_DAYS; returns (deleted, finished). Idempotent."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SENSORS_RETENTION_DAYS)
    deleted, finished = delete_in_batches(
        Reading.objects.filter(ts__lt=cutoff), batch_size=batch_size, max_seconds=max_seconds
    )
    if finished:
        delete_in_batches(HourlyPrediction.objects.filter(hour__lt=cutoff), batch_size=batch_size)
    return deleted, finished
