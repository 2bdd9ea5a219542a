"""anomaly's health check: readings that arrive are being evaluated.

Failing means sensors are reporting but no minute was evaluated for ANOMALY_STALE_MINUTES (a stopped
detect worker, beat, or a cycle that keeps failing). With no recent readings there is nothing to detect.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from core import health
from sensors.models import Reading

from .models import DetectionRun


@health.register("anomaly_detection")
def detection_fresh() -> health.CheckResult:
    now = timezone.now()
    window = timedelta(minutes=settings.ANOMALY_STALE_MINUTES + settings.ANOMALY_DETECT_DELAY_MINUTES)
    latest_reading = Reading.objects.filter(ts__gte=now - window).aggregate(latest=Max("ts"))["latest"]
    latest = DetectionRun.objects.order_by("-minute").values_list("minute", "duration_ms").first()
    if latest is None:
        if latest_reading is None:
            return health.CheckResult(ok=True, detail="no recent readings to evaluate")
        return health.CheckResult(ok=False, detail="readings are arriving but no minute was evaluated yet")
    minute, duration = latest
    age = now - minute
    detail = f"last minute {minute.isoformat()} ({age.total_seconds():.0f} s ago, {duration:.0f} ms)"
    return health.CheckResult(ok=latest_reading is None or age <= window, detail=detail)
