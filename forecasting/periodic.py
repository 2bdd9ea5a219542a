"""forecasting's default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = [
    PeriodicTaskSpec(
        name="forecasting: hourly 7-day forecasts",
        task="forecasting.predict_hourly",
        # Two minutes past the hour: the last minute of the hour has arrived through the bridge by then.
        cron="2 * * * *",
        expires_seconds=50 * 60,
        description="Hourly forecasts for the next 168 hours, every active sensor, flow and pressure.",
    ),
    PeriodicTaskSpec(
        name="forecasting: yearly training",
        task="forecasting.train",
        cron="30 3 1 1 *",
        description="Retrain both metrics on all history; activated only if better than seasonal naive.",
    ),
    PeriodicTaskSpec(
        name="forecasting: training watchdog",
        task="forecasting.watchdog",
        cron="*/5 * * * *",
        expires_seconds=240,
        description="Re-queue training runs whose worker died (stale heartbeat).",
    ),
]
