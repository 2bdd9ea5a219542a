"""sensors's default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    PeriodicTaskSpec(
        name="sensors: server frame",
        task="sensors.send_server_frame",
        cron="*/10 * * * *",
        # A run later than this is stale: the next slot's frame supersedes it.
        expires_seconds=540,
        description="Every 10 minutes: the last 10 readings per sensor (predictions at the hour) to the device.",
    ),
    PeriodicTaskSpec(
        name="sensors: purge old readings",
        task="sensors.purge_old_readings",
        cron="17 3 * * *",
        expires_seconds=6 * 3600,
        description="Daily: delete readings older than SENSORS_RETENTION_DAYS, in batches.",
    ),
]
