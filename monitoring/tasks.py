"""monitoring's Celery tasks: thin adapters over services."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task

from .services import rollup
from .services.detection import detect_host_minute
from .services.store import purge_samples


@shared_task(name="monitoring.purge_host_samples", soft_time_limit=600, time_limit=660)
def purge_host_samples() -> int:
    """Daily: delete host samples beyond the retention age and row count (idempotent)."""
    return purge_samples()


@shared_task(name="monitoring.detect_host_anomalies", soft_time_limit=50, time_limit=60)
def detect_host_anomalies(minute: str | None = None) -> int:
    """Every minute: score each host's last complete minute; returns how many metrics fired."""
    at = datetime.fromisoformat(minute) if minute else None
    return sum(evaluation.fired for evaluation in detect_host_minute(at))


@shared_task(name="monitoring.rollup_host_hours", soft_time_limit=300, time_limit=360)
def rollup_host_hours(since: str | None = None) -> int:
    """Hourly: roll the last complete hours of host samples up into HostHour (idempotent); `since` (ISO)
    rebuilds every hour from then, after an agent sent samples later than the margin."""
    return rollup.refresh(since=datetime.fromisoformat(since) if since else None)


@shared_task(name="monitoring.purge_host_hours", soft_time_limit=300, time_limit=360)
def purge_host_hours() -> int:
    """Daily: delete host-hours beyond MONITORING_ROLLUP_RETENTION_DAYS (idempotent)."""
    return rollup.purge()
