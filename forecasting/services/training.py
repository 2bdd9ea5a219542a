"""Training one metric from the database into a registered, evaluated model version."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

import pandas as pd
from django.conf import settings

from ..metrics import MODEL_RATIO, TRAINING_SECONDS
from ..models import ModelVersion, TrainingRun
from . import registry
from .calendar import resolve_country
from .data import load_hourly
from .forecaster import FitResult, fit
from .series import HourlySeries

logger = logging.getLogger(__name__)

Progress = Callable[[int, int, dict[str, float]], None]


def fit_with_settings(
    series: dict[str, HourlySeries],
    *,
    epochs: int | None = None,
    time_zone: str | None = None,
    exog: pd.DataFrame | None = None,
    progress: Progress | None = None,
) -> FitResult:
    """fit() with the FORECAST_* hyper-parameters from settings: one place for training, backtests and benchmarks."""
    time_zone = time_zone or settings.TIME_ZONE
    return fit(
        series,
        epochs=epochs or settings.FORECAST_EPOCHS,
        batch_size=settings.FORECAST_BATCH_SIZE,
        windows_per_epoch=settings.FORECAST_WINDOWS_PER_EPOCH,
        units=settings.FORECAST_LSTM_UNITS,
        patience=settings.FORECAST_PATIENCE,
        seed=settings.FORECAST_SEED,
        time_zone=time_zone,
        candidates=tuple(settings.FORECAST_CANDIDATES),
        max_tree_rows=settings.FORECAST_TREE_ROWS,
        holiday_country=resolve_country(settings.FORECAST_HOLIDAYS, time_zone),
        exog=exog,
        progress=progress,
    )


def train_metric(
    metric: str,
    *,
    since: datetime | None = None,
    epochs: int | None = None,
    run: TrainingRun | None = None,
    progress: Progress | None = None,
) -> ModelVersion:
    """Read, resample, train and validate one metric across all sensors; register and decide activation.

    Raises NotEnoughHistoryError (with how much is needed) when the data cannot support a model.
    """
    started = time.perf_counter()
    series = load_hourly(metric, since=since)
    read_seconds = time.perf_counter() - started
    rows = sum(item.rows for item in series.values())
    logger.info("%s: %d readings -> %d hourly series in %.1f s", metric, rows, len(series), read_seconds)
    result = fit_with_settings(series, epochs=epochs, progress=progress)
    version = ModelVersion.objects.create(
        metric=metric,
        run=run,
        data_start=result.data_start,
        data_end=result.data_end,
        validation_start=result.validation_start,
        sensors=result.params["series"],
        rows=rows,
        windows=result.windows,
        epochs=result.epochs,
        training_seconds=0.0,
        mae=result.model_errors["mae"],
        mape=result.model_errors["mape"],
        mae_24h=result.model_errors["mae_24h"],
        baseline_mae=result.baseline_errors["mae"],
        baseline_mape=result.baseline_errors["mape"],
        baseline_mae_24h=result.baseline_errors["mae_24h"],
        params={
            **result.params,
            "pool_windows": result.pool,
            "validation_windows": result.validation_windows,
            "read_seconds": round(read_seconds, 2),
            "fit_seconds": round(result.seconds, 2),
            "validation_candidates": result.candidates,
            "validation_band_coverage": result.coverage,
        },
    )
    registry.save_artifact(version, result)
    version.training_seconds = time.perf_counter() - started
    version.save(update_fields=["training_seconds"])
    TRAINING_SECONDS.labels(metric=metric).observe(version.training_seconds)
    if version.mae is not None and version.baseline_mae:
        MODEL_RATIO.labels(metric=metric).set(version.mae / version.baseline_mae)
    return registry.decide(version)


def summary(version: ModelVersion) -> dict:
    """The figures an operator wants after a run (also stored on the run record)."""
    return {
        "version": version.pk,
        "metric": version.metric,
        "status": version.status,
        "sensors": version.sensors,
        "rows": version.rows,
        "windows": version.windows,
        "epochs": version.epochs,
        "seconds": round(version.training_seconds, 1),
        "mae": version.mae,
        "baseline_mae": version.baseline_mae,
        "mae_24h": version.mae_24h,
        "baseline_mae_24h": version.baseline_mae_24h,
        "ratio": round(version.mae / version.baseline_mae, 4) if version.mae and version.baseline_mae else None,
        "reason": version.reason,
    }
