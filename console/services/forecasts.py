"""What the forecasts page shows and does: model versions against seasonal naive, training runs, train now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from forecasting.models import Forecast, ModelVersion, TrainingRun
from forecasting.services import runs
from sensors.models import Metric

TRAIN_TASK = runs.TRAIN_TASK
VERSIONS_SHOWN = 50
RUNS_SHOWN = 20


def next_run(task: str, now: datetime | None = None) -> datetime | None:
    """When beat next sends `task` (its enabled schedule in django-celery-beat), or None when unscheduled."""
    now = now or timezone.now()
    entry = PeriodicTask.objects.filter(task=task, enabled=True).select_related("crontab").first()
    if entry is None or entry.crontab is None:
        return None
    moment = now + entry.schedule.remaining_estimate(now) + timedelta(seconds=30)
    return moment.replace(second=0, microsecond=0)  # to the minute: the estimate is measured a moment later


def version_rows() -> list[dict[str, Any]]:
    rows = []
    for version in ModelVersion.objects.order_by("-created_at")[:VERSIONS_SHOWN]:
        ratio = version.mae / version.baseline_mae if version.mae is not None and version.baseline_mae else None
        rows.append({"version": version, "ratio": ratio, "beats_baseline": ratio is not None and ratio < 1})
    return rows


def run_progress(run: TrainingRun) -> dict[str, Any] | None:
    """How far a running run is: metric i of n, epoch e of E, as a fraction of the whole run."""
    progress = (run.summary or {}).get("progress")
    if run.status != TrainingRun.Status.RUNNING or not progress:
        return None
    done = (progress["position"] - 1 + progress["epoch"] / max(1, progress["epochs"])) / max(1, progress["metrics"])
    return {**progress, "percent": round(100 * done)}


def run_rows() -> list[dict[str, Any]]:
    return [
        {"run": run, "progress": run_progress(run), "seconds": _duration(run)}
        for run in TrainingRun.objects.order_by("-queued_at")[:RUNS_SHOWN]
    ]


def _duration(run: TrainingRun) -> float | None:
    if run.started_at is None:
        return None
    return ((run.finished_at or timezone.now()) - run.started_at).total_seconds()


@dataclass
class ForecastsPage:
    versions: list[dict[str, Any]]
    active: dict[str, ModelVersion | None]
    runs: list[dict[str, Any]]
    busy: bool
    next_training: datetime | None
    last_issue: datetime | None
    metrics: list[tuple[str, str]]


def forecasts_page() -> ForecastsPage:
    active = dict.fromkeys(Metric.values) | {
        version.metric: version for version in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE)
    }
    runs_shown = run_rows()
    busy = any(row["run"].status in {TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING} for row in runs_shown)
    return ForecastsPage(
        versions=version_rows(),
        active=active,
        runs=runs_shown,
        busy=busy,
        next_training=next_run(TRAIN_TASK),
        last_issue=Forecast.objects.aggregate(latest=Max("issued_at"))["latest"],
        metrics=list(Metric.choices),
    )


def train_now(metrics: list[str], requested_by: str, since_days: int | None = None) -> TrainingRun:
    """Queue a training run (forecasting's request_training); ForecastError for an unknown metric."""
    since = timezone.now() - timedelta(days=since_days) if since_days else None
    return runs.request_training(metrics or None, since=since, requested_by=requested_by)
