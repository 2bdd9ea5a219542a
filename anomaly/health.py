"""anomaly's health check: detection is alive when a recent minute was evaluated."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core import health

from .models import DetectionRun


@health.register("anomaly_detection")
def detection_fresh() -> health.CheckResult:
    latest = DetectionRun.objects.order_by("-minute").values_list("minute", "duration_ms").first()
    if latest is None:
        return health.CheckResult(ok=False, detail="no minute evaluated yet")
    minute, duration = latest
    age = timezone.now() - minute
    ok = age <= timedelta(minutes=settings.ANOMALY_STALE_MINUTES + settings.ANOMALY_DETECT_DELAY_MINUTES)
    return health.CheckResult(
        ok=ok, detail=f"last minute {minute.isoformat()} ({age.total_seconds():.0f} s ago, {duration:.0f} ms)"
    )
