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
        cron="30 3 1 */3 *",
        description="New criteria version every 3 months (initial data file until the DB holds 90 days).",
    ),
]
