"""The forecasting health check: serving versions' artifacts exist, no training run is stuck."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from core import health
from forecasting.models import ModelVersion, TrainingRun

from .conftest import START

pytestmark = pytest.mark.django_db


def check() -> health.CheckResult:
    from forecasting.health import forecasting_health

    assert "forecasting" in health.registered()
    return forecasting_health()


def test_no_model_is_healthy_and_says_the_baseline_serves(tiny_training: Path) -> None:
    result = check()
    assert result.ok
    assert "seasonal naive" in result.detail


def test_an_active_version_without_its_artifact_fails(tiny_training: Path) -> None:
    version = ModelVersion.objects.create(
        metric="flow", status="active", data_start=START, data_end=START, validation_start=START, artifact_dir="flow/v1"
    )
    result = check()
    assert not result.ok
    assert str(version) in result.detail
    (tiny_training / "flow" / "v1").mkdir(parents=True)
    (tiny_training / "flow" / "v1" / "model.keras").write_bytes(b"x")
    (tiny_training / "flow" / "v1" / "scalers.json").write_text("{}")
    result = check()
    assert result.ok
    assert f"flow v{version.pk}" in result.detail


def test_a_run_without_heartbeat_fails(tiny_training: Path) -> None:
    TrainingRun.objects.create(metrics=["flow"], status="running", heartbeat_at=timezone.now() - timedelta(hours=1))
    result = check()
    assert not result.ok
    assert "without a heartbeat" in result.detail
