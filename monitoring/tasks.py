"""monitoring's Celery tasks: thin adapters over services."""

from __future__ import annotations

from celery import shared_task

from .services.store import purge_samples


@shared_task(name="monitoring.purge_host_samples", soft_time_limit=600, time_limit=660)
def purge_host_samples() -> int:
    """Daily: delete host samples beyond the retention age and row count (idempotent)."""
    return purge_samples()
