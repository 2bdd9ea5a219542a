"""aiops' default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    # Streaming scoring of the custom series' new points; a run older than its period is pointless.
    PeriodicTaskSpec(
        name="aiops: score custom metrics",
        task="aiops.score_metrics",
        cron="* * * * *",
        expires_seconds=50,
        queue="detect",
        description="Scores each custom series' points since its last run with its saved detector state.",
    ),
    # Incidents are processed when events change (post_save) and when a group_wait ends; this is the
    # safety net for a trigger lost while Redis was down, and the clock for repeat_interval.
    PeriodicTaskSpec(
        name="aiops: process incidents",
        task="aiops.process_incidents",
        cron="* * * * *",
        expires_seconds=50,
        queue="detect",
        description="Groups new anomaly events into incidents, resolves finished ones, sends due messages.",
    ),
    # Time-to-limit of host disk/memory and custom series with a limit; trends move slowly.
    PeriodicTaskSpec(
        name="aiops: forecast capacity",
        task="aiops.forecast_capacity",
        cron="*/5 * * * *",
        expires_seconds=240,
        queue="detect",
        description="Theil-Sen trend per window (AIOPS_CAPACITY_WINDOWS); warns when the limit is < 24 h away.",
    ),
    # Retention of custom-metric points; 04:20 stays clear of the readings and host sample purges.
    PeriodicTaskSpec(
        name="aiops: purge old metric points",
        task="aiops.purge_metric_points",
        cron="20 4 * * *",
        expires_seconds=6 * 3600,
        queue="default",
        description="Deletes custom-metric points older than AIOPS_METRICS_RETENTION_DAYS.",
    ),
    # Retention of Alertmanager payloads, resolved incidents and insights; 05:35 is after every other daily
    # purge (the last, anomaly's at 04:45, and its requeues), so they do not compete for the database.
    PeriodicTaskSpec(
        name="aiops: purge old payloads and incidents",
        task="aiops.purge_old_records",
        cron="35 5 * * *",
        expires_seconds=6 * 3600,
        queue="default",
        description="Deletes Alertmanager payloads older than AIOPS_ALERT_PAYLOAD_RETENTION_DAYS (30) and resolved "
        "incidents (members, insights) older than AIOPS_INCIDENT_RETENTION_DAYS (180).",
    ),
]
