"""monitoring's health checks: host agents reporting, and anomaly detection running.

Both pass when there is nothing to watch (no registered host, no active sensor), so a fresh system is
healthy; they fail when something that ran stops.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models import Min

from core import health

from . import metrics
from .models import Host
from .services.store import last_reports

DETECT_TASK = "anomaly.detect_minute"


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


@health.register("detection")
def detection_health() -> health.CheckResult:
    from sensors.models import Sensor

    first_sensor = Sensor.objects.filter(active=True).aggregate(first=Min("created_at"))["first"]
    if first_sensor is None:
        return health.CheckResult(ok=True, detail="no active sensor to watch")
    stale_after = settings.HEALTH_DETECT_STALE_SECONDS
    last = metrics.last_success(DETECT_TASK)
    now = time.time()
    if last is None:
        if now - first_sensor.timestamp() <= stale_after:
            return health.CheckResult(ok=True, detail=f"{DETECT_TASK} has not run yet (sensors are new)")
        return health.CheckResult(ok=False, detail=f"{DETECT_TASK} has never succeeded")
    age = now - last
    if age > stale_after:
        return health.CheckResult(ok=False, detail=f"{DETECT_TASK} last succeeded {age:.0f} s ago")
    return health.CheckResult(ok=True, detail=f"{DETECT_TASK} last succeeded {age:.0f} s ago")
