"""forecasting's health check: every active version's artifact is on disk, no training run is stuck."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core import health

from .models import ModelVersion, TrainingRun
from .services.registry import MODEL_FILE, SCALERS_FILE, artifact_path


@health.register("forecasting")
def forecasting_health() -> health.CheckResult:
    problems, serving = [], []
    for version in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE):
        directory = artifact_path(version)
        if not (directory / MODEL_FILE).is_file() or not (directory / SCALERS_FILE).is_file():
            problems.append(f"{version}: artifact missing under {directory} (serving seasonal naive)")
        else:
            serving.append(f"{version.metric} v{version.pk}")
    stale = timezone.now() - timedelta(seconds=settings.FORECAST_RUN_STALE_SECONDS * 2)
    stuck = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=stale).count()
    if stuck:
        problems.append(f"{stuck} training run(s) without a heartbeat (is the watchdog scheduled?)")
    detail = "; ".join(problems) or f"serving: {', '.join(serving) or 'seasonal naive (no active model)'}"
    return health.CheckResult(ok=not problems, detail=detail)
