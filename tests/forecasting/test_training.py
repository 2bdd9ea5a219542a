"""Training from the database into a registered version; activation only when it beats seasonal naive."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import LazySettings

from forecasting.models import ModelVersion, TrainingRun
from forecasting.services import ForecastError, NotEnoughHistoryError, registry
from forecasting.services.data import load_hourly
from forecasting.services.forecaster import forecast
from forecasting.services.runs import execute
from forecasting.services.training import train_metric
from sensors.models import Reading

from .conftest import START

pytestmark = pytest.mark.django_db


def make_version(metric: str, mae: float | None, baseline: float | None, **extra: object) -> ModelVersion:
    return ModelVersion.objects.create(
        metric=metric,
        data_start=START,
        data_end=START + timedelta(days=40),
        validation_start=START + timedelta(days=32),
        mae=mae,
        baseline_mae=baseline,
        **extra,
    )


def test_trained_version_has_an_artifact_that_loads_and_predicts(
    load_readings: Callable[..., dict], tiny_training: Path, settings: LazySettings
) -> None:
    settings.FORECAST_CANDIDATES = ["lstm", "boosted"]  # every candidate, blends included
    load_readings(["001", "002"], days=35)
    version = train_metric("flow")
    assert version.mae is not None
    assert version.baseline_mae is not None
    assert version.status in {ModelVersion.Status.ACTIVE, ModelVersion.Status.REJECTED}
    assert (version.status == ModelVersion.Status.ACTIVE) == (version.mae < version.baseline_mae)
    assert version.sensors == 2
    assert version.rows == Reading.objects.count()
    assert version.epochs >= 1
    assert version.windows > 0
    assert version.training_seconds > 0
    assert math.isfinite(version.mae)
    assert math.isfinite(version.baseline_mae)
    assert version.reason
    assert version.params["kind"] in {"profile", "lstm", "boosted", "blend"}
    assert set(version.params["validation_candidates"]) == {"profile", "lstm", "boosted", "chosen"}
    # Per lead day the best candidate or pair on validation: never worse than any one candidate.
    assert version.mae == min(errors["mae"] for errors in version.params["validation_candidates"].values())
    serving = {name for day in version.params["shares"] for name in day}
    assert (tiny_training / version.artifact_dir / "model.keras").is_file() == ("lstm" in serving)
    assert (tiny_training / version.artifact_dir / "boosted.joblib").is_file() == ("boosted" in serving)

    registry._cache.clear()
    loaded = registry.load(version)
    assert set(loaded.scalers) == {"001", "002"}
    series = load_hourly("flow")
    origin = series["001"].end
    values = forecast(loaded.model, loaded.scalers, list(series.values()), origin, loaded.time_zone)
    assert set(values) == {"001", "002"}
    assert values["001"].value.shape == (168,)
    assert np.isfinite(values["001"].value).all()
    # A simulated flow stays in its range: the forecast is in original units, not scaled ones.
    recent = series["001"].values[-168:]
    assert np.nanmin(recent) * 0.5 < values["001"].value.mean() < np.nanmax(recent) * 1.5
    # The calibrated band: a 10 % bound below the 90 % one at every hour.
    assert values["001"].lower is not None
    assert values["001"].upper is not None
    assert (values["001"].lower < values["001"].upper).all()
    assert 0 < version.params["validation_band_coverage"] <= 1
    assert registry.load(version) is loaded  # cached per process


def test_activation_requires_beating_the_baseline() -> None:
    serving = make_version("flow", 1.0, 2.0)
    registry.decide(serving)
    assert serving.status == ModelVersion.Status.ACTIVE

    worse = registry.decide(make_version("flow", 2.5, 2.0))
    assert worse.status == ModelVersion.Status.REJECTED
    assert "does not beat seasonal naive" in worse.reason
    serving.refresh_from_db()
    assert serving.status == ModelVersion.Status.ACTIVE  # the previous version keeps serving

    equal = registry.decide(make_version("flow", 2.0, 2.0))
    assert equal.status == ModelVersion.Status.REJECTED

    better = registry.decide(make_version("flow", 0.5, 2.0))
    assert better.status == ModelVersion.Status.ACTIVE
    assert "ratio 0.250" in better.reason
    serving.refresh_from_db()
    assert serving.status == ModelVersion.Status.RETIRED

    unmeasured = registry.decide(make_version("pressure", None, None))
    assert unmeasured.status == ModelVersion.Status.REJECTED
    assert ModelVersion.objects.filter(status="active").count() == 1


def test_too_little_history_fails_the_run_with_how_much_is_needed(
    load_readings: Callable[..., dict], tiny_training: Path
) -> None:
    load_readings(["001"], days=10)
    run = TrainingRun.objects.create(metrics=["flow", "pressure"])
    finished = execute(run.pk)
    assert finished is not None
    assert finished.status == TrainingRun.Status.FAILED
    assert "at least 672 hours (28 days)" in finished.error
    assert "have 240 h" in finished.error
    assert set(finished.summary) == {"flow", "pressure"}
    assert not ModelVersion.objects.exists()


def test_an_unknown_candidate_is_a_clear_error(
    load_readings: Callable[..., dict], tiny_training: Path, settings: LazySettings
) -> None:
    settings.FORECAST_CANDIDATES = ["boosted", "prophet"]
    load_readings(["001"], days=35)
    with pytest.raises(ForecastError, match="unknown forecast candidate"):
        train_metric("flow")


def test_no_readings_at_all_is_a_clear_error(tiny_training: Path) -> None:
    with pytest.raises(NotEnoughHistoryError, match="no readings at all"):
        train_metric("pressure")


def test_nan_and_infinite_readings_are_ignored_not_propagated(load_readings: Callable[..., dict]) -> None:
    sensors = load_readings(["001"], days=1)
    first = Reading.objects.order_by("ts").first()
    assert first is not None
    Reading.objects.filter(pk=first.pk).update(flow=float("nan"))
    Reading.objects.create(sensor=sensors["001"], ts=first.ts + timedelta(minutes=1), flow=math.inf, pressure=4.0)
    series = load_hourly("flow")
    values = series["001"].values
    assert np.isfinite(values).all()
    assert len(values) == 24
    expected = Reading.objects.filter(ts__lt=first.ts + timedelta(hours=1)).exclude(pk=first.pk)
    finite = [row.flow for row in expected if math.isfinite(row.flow)]
    assert values[0] == pytest.approx(sum(finite) / len(finite))


def test_since_limits_the_training_data(load_readings: Callable[..., dict], tiny_training: Path) -> None:
    load_readings(["001"], days=40)
    since = pd.Timestamp(START + timedelta(days=20)).to_pydatetime()
    with pytest.raises(NotEnoughHistoryError):
        train_metric("flow", since=since)  # only 20 days left
    version = train_metric("flow", since=START + timedelta(days=5))
    assert version.data_start == START + timedelta(days=5)


def test_the_yearly_schedule_records_its_own_run(tiny_training: Path) -> None:
    from forecasting.tasks import train

    result = train()  # beat sends no arguments
    assert result is not None
    run = TrainingRun.objects.get(pk=result["run"])
    assert (run.requested_by, run.metrics, run.status) == ("schedule", ["flow", "pressure"], "failed")
    assert "no readings at all" in run.error
