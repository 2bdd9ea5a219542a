"""anomaly's default beat schedules (synced by core.periodic)."""

from __future__ import annotations

from core.periodic import PeriodicTaskSpec

PERIODIC_TASKS: list[PeriodicTaskSpec] = []
