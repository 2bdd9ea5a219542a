"""eventlogs' health check: enrichment keeps up (the oldest unenriched batch is younger than the limit)."""

from __future__ import annotations

from django.conf import settings

from core import health

from .services.lag import enrichment_lag_seconds


@health.register("eventlogs_enrichment")
def enrichment_health() -> health.CheckResult:
    lag = enrichment_lag_seconds()
    if lag > settings.EVENTLOG_MAX_LAG_SECONDS:
        return health.CheckResult(ok=False, detail=f"oldest unenriched batch is {lag:.0f} s old")
    return health.CheckResult(ok=True, detail=f"lag {lag:.0f} s")
