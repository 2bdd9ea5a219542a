"""monitoring's health check: every active host's agent is reporting.

It passes when no host is registered (a fresh system is healthy) and fails when an agent that reported
stops. Detection freshness is anomaly's own check (`anomaly_detection`).
"""

from __future__ import annotations

import time

from django.conf import settings

from core import health

from .models import Host
from .services.store import last_reports


@health.register("host_agents")
def host_agents_health() -> health.CheckResult:
    hosts = list(Host.objects.filter(active=True).values_list("name", "interval_seconds", "last_seen_at"))
    if not hosts:
        return health.CheckResult(ok=True, detail="no host agent registered")
    reports = last_reports()
    now = time.time()
    silent: list[str] = []
    for name, interval, last_seen_at in hosts:
        allowed = settings.MONITORING_HOST_STALE_INTERVALS * interval + 10
        last = reports.get(name)
        if last is None and last_seen_at is not None:  # Redis lost it: the database lags by one flush
            last, allowed = last_seen_at.timestamp(), allowed + settings.MONITORING_AGENT_FLUSH_SECONDS
        if last is None or now - last > allowed:
            silent.append(f"{name} ({'never' if last is None else f'{now - last:.0f} s ago'})")
    if silent:
        return health.CheckResult(ok=False, detail="not reporting: " + ", ".join(silent))
    return health.CheckResult(ok=True, detail=f"{len(hosts)} reporting")
