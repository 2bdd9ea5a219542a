"""anomaly's default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    PeriodicTaskSpec(
        name="anomaly: detect every minute",
        task="anomaly.detect_minute",
        cron="* * * * *",
        # a run older than its minute is useless: the next run catches the minute up anyway
        expires_seconds=50,
        description="Check the last minute of every active sensor (flow: 4 methods, pressure: 3); events; $A frames.",
    ),
    PeriodicTaskSpec(
        name="anomaly: store night flow",
        task="anomaly.store_night_flow",
        cron="*/10 * * * *",
        expires_seconds=540,
        description="10-minute night means (22:00-05:00) and, once a night is over, its minimum and streak.",
    ),
    PeriodicTaskSpec(
        name="anomaly: rebuild criteria",
        task="anomaly.rebuild_criteria",
        # daily check, not a quarterly cron: the switch to DB criteria happens the day 3 months of readings
        # exist, and the rebuild 3 months after the previous build (anomaly.criteria.rebuild_reason)
        cron="30 3 * * *",
        expires_seconds=6 * 3600,
        description="Daily check: DB criteria once 3 months of readings exist; rebuild 3 months after the last.",
    ),
    PeriodicTaskSpec(
        name="anomaly: purge detection results",
        task="anomaly.purge_detection_results",
        cron="45 4 * * *",
        expires_seconds=6 * 3600,
        description="Per sensor-minute detection results older than ANOMALY_RESULTS_RETENTION_DAYS (30).",
    ),
]
