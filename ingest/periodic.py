"""ingest's default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    PeriodicTaskSpec(
        name="ingest: refresh KIPRIS rights",
        task="ingest.harvest_all",
        cron="30 2 * * *",
        expires_seconds=6 * 3600,
        description="Harvest patents, utility models, designs and trademarks of every active organisation"
        " (daily, at night in Korea, within the global rate limit and the monthly call budget).",
    ),
    PeriodicTaskSpec(
        name="ingest: resume stalled harvests",
        task="ingest.resume_stalled",
        cron="*/10 * * * *",
        expires_seconds=9 * 60,
        description="Requeue harvest checkpoints left by a crashed worker, and paused ones once the"
        " budget, quota or circuit allow calls again.",
    ),
]
