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
        description="Streaming likelihood detector over each host's CPU, memory, disk and network minutes.",
    ),
    # The hourly roll-up of host samples, five minutes past the hour: the agents' last flush of the hour
    # (every 30 s) is in; a run an hour late is replaced by the next one.
    PeriodicTaskSpec(
        name="monitoring: roll up host hours",
        task="monitoring.rollup_host_hours",
        cron="5 * * * *",
        expires_seconds=3000,
        description="Mean and max of every host metric per hour (HostHour), for step=1h and the charts of days.",
    ),
    # Retention of the roll-up, after the samples' purge.
    PeriodicTaskSpec(
        name="monitoring: purge old host hours",
        task="monitoring.purge_host_hours",
        cron="15 4 * * *",
        description="Deletes host-hours older than MONITORING_ROLLUP_RETENTION_DAYS.",
    ),
    # Retention of host samples (age and rows per host); 04:10 stays clear of the readings purge.
    PeriodicTaskSpec(
        name="monitoring: purge old host samples",
        task="monitoring.purge_host_samples",
        cron="10 4 * * *",
        description="Deletes host samples older than MONITORING_RETENTION_DAYS or beyond the per-host row cap.",
    ),
]
