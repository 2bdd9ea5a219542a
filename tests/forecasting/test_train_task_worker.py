"""Training through the real training queue on a real worker; the watchdog after a worker is killed."""

from __future__ import annotations

import signal
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import time_machine
from django.conf import LazySettings
from django.utils import timezone

from forecasting.models import ModelVersion, TrainingRun
from forecasting.services import registry
from forecasting.services.data import load_hourly
from forecasting.services.forecaster import forecast
from forecasting.services.runs import claim, request_training, watchdog
from tests.conftest import ChildProcess, wait_for

from .conftest import TINY_TRAINING

pytestmark = pytest.mark.slow


def run_status(run_id: int) -> str:
    return TrainingRun.objects.get(pk=run_id).status


@pytest.fixture
def model_dir(settings: LazySettings, tmp_path: Path) -> Path:
    settings.FORECAST_MODEL_DIR = tmp_path / "models"
    return settings.FORECAST_MODEL_DIR


def test_training_runs_on_the_training_queue_and_produces_a_usable_model(
    celery_worker: Callable[..., ChildProcess], load_readings: Callable[..., dict], model_dir: Path
) -> None:
    load_readings(["001", "002"], days=35)
    worker = celery_worker(queues="training", env={**TINY_TRAINING, "FORECAST_MODEL_DIR": str(model_dir)})
    run = request_training(["flow"], requested_by="test")
    wait_for(lambda: run_status(run.pk) in {"succeeded", "failed"}, timeout=180, what=f"run {run.pk} to finish")
    run.refresh_from_db()
    assert run.status == "succeeded", f"{run.error}\n{worker.output()[-3000:]}"
    assert run.attempts == 1
    assert run.task_id
    assert run.worker.endswith(tuple(str(child.pid) for child in worker.children()))
    assert "Task forecasting.train" in worker.output()
    version = ModelVersion.objects.get(run=run)
    assert run.summary["flow"]["version"] == version.pk
    loaded = registry.load(version)  # the artifact the worker wrote loads here
    series = load_hourly("flow")
    values = forecast(loaded.model, loaded.scalers, list(series.values()), series["001"].end, loaded.time_zone)
    assert np.isfinite(values["002"].value).all()
    assert values["002"].value.shape == (168,)


def test_watchdog_requeues_a_run_whose_worker_was_killed(
    celery_worker: Callable[..., ChildProcess],
    load_readings: Callable[..., dict],
    model_dir: Path,
    settings: LazySettings,
) -> None:
    load_readings(["001"], days=35)
    endless = {**TINY_TRAINING, "FORECAST_EPOCHS": "500", "FORECAST_PATIENCE": "500"}
    doomed = celery_worker(queues="training", env={**endless, "FORECAST_MODEL_DIR": str(model_dir)})
    run = request_training(["pressure"], epochs=500)
    wait_for(lambda: run_status(run.pk) == "running", timeout=60, what="the run to start")
    doomed.stop(signal.SIGKILL)  # the whole worker, mid-run: the message was acked, nothing redelivers it

    assert watchdog() == []  # the heartbeat is still fresh
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.FORECAST_RUN_STALE_SECONDS + 5)):
        assert watchdog() == [run.pk]
        assert watchdog() == []  # re-queued once, not twice
    run.refresh_from_db()
    assert run.status == "queued"
    assert "re-queued" in run.error

    celery_worker(queues="training", env={**TINY_TRAINING, "FORECAST_MODEL_DIR": str(model_dir)})
    wait_for(lambda: run_status(run.pk) in {"succeeded", "failed"}, timeout=180, what="the re-queued run")
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert run.attempts == 2
    assert ModelVersion.objects.filter(run=run, metric="pressure").count() == 1


@pytest.mark.django_db
def test_a_run_is_claimed_once(settings: LazySettings) -> None:
    run = TrainingRun.objects.create(metrics=["flow"])
    assert claim(run.pk, "a:1") is not None
    assert claim(run.pk, "b:2") is None  # a duplicate delivery finds it taken
    assert claim(123456, "b:2") is None


@pytest.mark.django_db
def test_watchdog_gives_up_after_max_attempts(settings: LazySettings) -> None:
    old = timezone.now() - timedelta(hours=2)
    run = TrainingRun.objects.create(
        metrics=["flow"], status="running", attempts=settings.FORECAST_RUN_MAX_ATTEMPTS, heartbeat_at=old, worker="x:1"
    )
    assert watchdog() == []
    run.refresh_from_db()
    assert run.status == "failed"
    assert "gave up after" in run.error
