"""monitoring's default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    # Host anomaly detection on the last complete minute; a run older than its period is pointless.
    PeriodicTaskSpec(
        name="monitoring: detect host anomalies",
        task="monitoring.detect_host_anomalies",
        cron="* * * * *",
        expires_seconds=50,
        description="Streaming ensemble detector over each host's CPU, memory, disk and network minutes.",
    ),
    # Retention of host samples (age and rows per host); 04:10 stays clear of the readings purge.
    PeriodicTaskSpec(
        name="monitoring: purge old host samples",
        task="monitoring.purge_host_samples",
        cron="10 4 * * *",
        description="Deletes host samples older than MONITORING_RETENTION_DAYS or beyond the per-host row cap.",
    ),
]
