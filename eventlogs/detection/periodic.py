"""Behaviour detection's beat schedule (listed in eventlogs/periodic.py, synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    # Score the minutes that completed since the last run; a run older than its minute is pointless
    # (the next one catches the backlog up, MAX_WINDOWS_PER_RUN windows per kind at a time).
    PeriodicTaskSpec(
        name="eventlogs: score account behaviour",
        task="eventlogs.score_behaviour",
        cron="* * * * *",
        expires_seconds=50,
        queue="events",
        description="Per-account behaviour features and scores of every new one-minute window; anomaly events.",
    ),
]
