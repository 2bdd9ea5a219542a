"""Training runs: request, claim, execute with a heartbeat, and the watchdog for runs whose worker died.

forecasting.train is not acks_late (a run outlasts the broker's visibility timeout, which would hand it to
a second worker mid-run), so a worker killed mid-run loses the message. The run row is the durable
record instead: the worker claims it with a conditional UPDATE (a duplicate delivery finds it taken),
beats every few seconds while training, and the watchdog re-queues a running run whose heartbeat stopped.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from sensors.models import Metric

from ..metrics import RUNS_REQUEUED, TRAINING_RUNS
from ..models import TrainingRun
from . import ForecastError
from .training import Progress, summary, train_metric

logger = logging.getLogger(__name__)

TRAIN_TASK = "forecasting.train"


def new_run(
    metrics: list[str] | None = None,
    *,
    since: datetime | None = None,
    epochs: int | None = None,
    requested_by: str = "",
) -> TrainingRun:
    """Record a queued run (both metrics unless told otherwise); ForecastError for an unknown metric."""
    chosen = metrics or [Metric.FLOW, Metric.PRESSURE]
    unknown = sorted(set(chosen) - set(Metric.values))
    if unknown:
        raise ForecastError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(Metric.values)}")
    return TrainingRun.objects.create(
        metrics=[str(metric) for metric in chosen], since=since, epochs=epochs, requested_by=requested_by
    )


def request_training(
    metrics: list[str] | None = None,
    *,
    since: datetime | None = None,
    epochs: int | None = None,
    requested_by: str = "",
) -> TrainingRun:
    """Record a run and queue it on the training queue once the row is committed."""
    run = new_run(metrics, since=since, epochs=epochs, requested_by=requested_by)
    transaction.on_commit(lambda: enqueue(run.pk))
    return run


def enqueue(run_id: int) -> None:
    """Send the run's task (by name, routed to the training queue by its prefix)."""
    result = current_app.send_task(TRAIN_TASK, args=[run_id])
    TrainingRun.objects.filter(pk=run_id).update(task_id=result.id)


def claim(run_id: int, worker: str) -> TrainingRun | None:
    """Mark a queued run running for this worker; None if it is unknown, taken or finished already."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING,
        worker=worker,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        error="",
    )
    if not claimed:
        logger.warning("training run %s is not queued (unknown, already running or finished): skipped", run_id)
        return None
    return TrainingRun.objects.get(pk=run_id)


class Heartbeat(threading.Thread):
    """Touches the run's heartbeat_at every few seconds while the worker lives (the watchdog's signal)."""

    def __init__(self, run_id: int, interval: float) -> None:
        super().__init__(name=f"training-run-{run_id}-heartbeat", daemon=True)
        self.run_id = run_id
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=self.interval + 5)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def execute(run_id: int, *, progress: Progress | None = None) -> TrainingRun | None:
    """Claim and run a training run: each metric in sequence, recording the outcome on the row.

    Explainable failures (too little history...) fail the run with the message; anything unexpected
    also fails it, with the error, and is re-raised so the task shows as failed.
    """
    run = claim(run_id, worker_name())
    if run is None:
        return None
    heartbeat = Heartbeat(run_id, interval=max(1.0, settings.FORECAST_RUN_STALE_SECONDS / 10))
    heartbeat.start()
    results: dict[str, dict] = {}
    errors: list[str] = []
    try:
        for position, metric in enumerate(run.metrics, start=1):
            try:
                version = train_metric(
                    metric,
                    since=run.since,
                    epochs=run.epochs,
                    run=run,
                    progress=progress or progress_recorder(run_id, metric, position, len(run.metrics)),
                )
            except ForecastError as exc:
                logger.warning("training run %s, %s: %s", run_id, metric, exc)
                errors.append(f"{metric}: {exc}")
                results[metric] = {"error": str(exc)}
            else:
                results[metric] = summary(version)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        _finish(run, results, errors)
        raise
    finally:
        heartbeat.stop()
    return _finish(run, results, errors)


def progress_recorder(run_id: int, metric: str, position: int, count: int) -> Progress:
    """Keeps the epoch a running run has reached in its summary (the console shows it; _finish replaces it)."""

    def record(epoch: int, epochs: int, logs: dict[str, float]) -> None:
        progress = {"metric": metric, "position": position, "metrics": count, "epoch": epoch, "epochs": epochs}
        if "loss" in logs:
            progress["loss"] = round(logs["loss"], 6)
        TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(summary={"progress": progress})

    return record


def _finish(run: TrainingRun, results: dict[str, dict], errors: list[str]) -> TrainingRun:
    run.status = TrainingRun.Status.FAILED if errors else TrainingRun.Status.SUCCEEDED
    run.error = "\n".join(errors)
    run.summary = results
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "summary", "finished_at"])
    TRAINING_RUNS.labels(status=run.status).inc()
    return run


def watchdog(now: datetime | None = None) -> list[int]:
    """Re-queue running runs whose heartbeat stopped (their worker died); fail them after max attempts.

    The UPDATE is conditional on the heartbeat it read, so two watchdogs never re-queue a run twice.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.FORECAST_RUN_STALE_SECONDS)
    requeued = []
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=cutoff)
    for run in stale:
        same_state = TrainingRun.objects.filter(
            pk=run.pk, status=TrainingRun.Status.RUNNING, heartbeat_at=run.heartbeat_at
        )
        silent = f"worker {run.worker} silent since {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
        if run.attempts >= settings.FORECAST_RUN_MAX_ATTEMPTS:
            if same_state.update(
                status=TrainingRun.Status.FAILED,
                finished_at=now,
                error=f"{silent}; gave up after {run.attempts} attempts",
            ):
                TRAINING_RUNS.labels(status=TrainingRun.Status.FAILED).inc()
                logger.error("training run %s failed for good: %s", run.pk, silent)
            continue
        if same_state.update(status=TrainingRun.Status.QUEUED, error=f"{silent}; re-queued"):
            logger.warning("training run %s re-queued: %s", run.pk, silent)
            RUNS_REQUEUED.inc()
            enqueue(run.pk)
            requeued.append(run.pk)
    return requeued
