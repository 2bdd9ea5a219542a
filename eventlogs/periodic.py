"""eventlogs' default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    # Batches archived while the database or the broker was down; also refreshes the lag gauge.
    PeriodicTaskSpec(
        name="eventlogs: requeue stale batches",
        task="eventlogs.requeue_stale",
        cron="* * * * *",
        expires_seconds=50,
        description="Registers batches archived during a database outage and requeues archived, unenriched ones.",
    ),
    # Files of finished hours get their sha256 in the manifest.
    PeriodicTaskSpec(
        name="eventlogs: seal archive hours",
        task="eventlogs.seal_archive",
        cron="*/5 * * * *",
        expires_seconds=240,
        description="Records sha256 and final size of archive files whose hour is over.",
    ),
    # Retention of the raw archive; 04:50 stays clear of the other daily purges (03:17 to 04:45, 05:35).
    PeriodicTaskSpec(
        name="eventlogs: purge old archive",
        task="eventlogs.purge_archive",
        cron="50 4 * * *",
        description="Deletes archive hours older than EVENTLOG_ARCHIVE_RETENTION_DAYS.",
    ),
]

from .detection.periodic import PERIODIC_TASKS as DETECTION_TASKS  # noqa: E402 - behaviour detection

PERIODIC_TASKS += DETECTION_TASKS
