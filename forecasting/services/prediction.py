"""The hourly run: 7-day hourly forecasts for every active sensor and metric, stored idempotently."""

from __future__ import annotations

import io
import logging
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core.retention import delete_in_batches
from sensors.models import Metric, Sensor
from sensors.predictions import set_daily_forecasts, set_hourly_predictions
from sensors.protocol import ForecastRow, format_forecast_rows

from ..metrics import ACTIVE_MODEL_TIMESTAMP, FORECASTS_WRITTEN, MODEL_LOAD_FAILURES, PREDICT_SECONDS, SENSORS_SKIPPED
from ..models import Forecast
from . import ForecastError, registry, rollup
from .forecaster import Prediction, forecast
from .series import HISTORY_HOURS, HORIZON_HOURS

logger = logging.getLogger(__name__)

UPSERT_BATCH = 5000
# The sensors service gets the next day: the 10-minute server frame only shows the coming hours, and the
# next hourly run replaces them.
HANDOVER_HOURS = 24


def issue_hour(at: datetime | None = None) -> datetime:
    """The hour a run issues for: the current hour's start (its forecasts cover it and the next 167)."""
    moment = (at or timezone.now()).astimezone(UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def predict_hourly(issued_at: datetime | None = None) -> dict:
    """Forecast every active sensor, both metrics, from hourly means of the readings before `issued_at`.

    Idempotent per (sensor, metric, issue hour): a re-run replaces the same rows. Serves each metric's
    active model; without one (or with a broken artifact: logged, counted) the seasonal-naive baseline.
    """
    started = time.perf_counter()
    issued = issue_hour(issued_at)
    sensors = dict(Sensor.objects.filter(active=True).values_list("code", "id"))
    origin = pd.Timestamp(issued)
    report: dict = {"issued_at": issued.isoformat(), "sensors": len(sensors), "metrics": {}}
    report["rolled_up_hours"] = rollup.refresh(issued, HISTORY_HOURS)
    window_start = issued - timedelta(hours=HISTORY_HOURS)
    hourly = rollup.load(Metric.values, window_start, issued, sensors.values())
    phases = {"read": time.perf_counter() - started, "forecast": 0.0, "store": 0.0}
    targets = [issued + timedelta(hours=step) for step in range(HORIZON_HOURS)]
    per_metric: dict[str, dict[str, Prediction]] = {}
    for metric in Metric.values:
        series = hourly[metric]
        phase = time.perf_counter()
        loaded = registry.active_model(metric)
        if loaded is not None:
            try:
                values = forecast(loaded.model, loaded.scalers, list(series.values()), origin, loaded.time_zone)
            except ForecastError:
                logger.exception("model v%s failed for %s; serving seasonal naive this hour", loaded.version_id, metric)
                MODEL_LOAD_FAILURES.labels(metric=metric).inc()
                loaded = None
        if loaded is None:
            values = forecast(None, {}, list(series.values()), origin, settings.TIME_ZONE)
        else:
            ACTIVE_MODEL_TIMESTAMP.labels(metric=metric).set(loaded.trained_at)
        phases["forecast"] += time.perf_counter() - phase
        no_readings = len(sensors) - len(series)
        no_recent = len(series) - len(values)
        if no_readings:
            SENSORS_SKIPPED.labels(metric=metric, reason="no_readings").inc(no_readings)
        if no_recent:
            SENSORS_SKIPPED.labels(metric=metric, reason="no_recent_readings").inc(no_recent)
        phase = time.perf_counter()
        written = _store(
            metric,
            issued,
            targets=targets,
            values=values,
            sensors=sensors,
            version_id=loaded.version_id if loaded else None,
        )
        phases["store"] += time.perf_counter() - phase
        FORECASTS_WRITTEN.labels(metric=metric, source="model" if loaded else "baseline").inc(written)
        per_metric[metric] = values
        report["metrics"][metric] = {
            "source": f"model v{loaded.version_id}" if loaded else "seasonal naive",
            "forecast_sensors": len(values),
            "degraded": sum(prediction.degraded for prediction in values.values()),
            "skipped_no_readings": no_readings,
            "skipped_no_recent_readings": no_recent,
            "rows": written,
        }
    report["handed_to_sensors"] = _hand_over(per_metric, sensors, targets)
    report["deleted_old"] = purge_old(issued)
    rollup.purge(window_start - timedelta(hours=settings.FORECAST_LATE_DATA_HOURS))
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["phase_seconds"] = {name: round(value, 3) for name, value in phases.items()}
    PREDICT_SECONDS.observe(report["seconds"])
    logger.info("hourly forecast %s", report)
    return report


def _store(
    metric: str,
    issued: datetime,
    *,
    targets: list[datetime],
    values: dict[str, Prediction],
    sensors: dict[str, int],
    version_id: int | None,
) -> int:
    """Replace this issue's rows for these sensors in one transaction (idempotent per sensor+metric+hour).

    Delete + insert instead of upserts: on PostgreSQL the insert is a COPY, ~10x faster than
    INSERT ... ON CONFLICT for the 168 rows x 1,000 sensors of a run (bench/forecasting_predict.py).
    """
    sensor_ids = [sensors[code] for code in values]
    with transaction.atomic():
        Forecast.objects.filter(metric=metric, issued_at=issued, sensor_id__in=sensor_ids).delete()
        if connection.vendor == "postgresql":
            _copy_rows(metric, issued, targets, values, sensors, version_id)
        else:
            Forecast.objects.bulk_create(
                (
                    Forecast(
                        sensor_id=sensors[code],
                        metric=metric,
                        issued_at=issued,
                        target=target,
                        value=value,
                        lower=lower,
                        upper=upper,
                        degraded=predicted.degraded,
                        model_version_id=version_id,
                    )
                    for code, predicted in values.items()
                    for target, value, lower, upper in zip(targets, *_columns(predicted), strict=True)
                ),
                batch_size=UPSERT_BATCH,
            )
    return len(values) * len(targets)


def _copy_rows(  # noqa: PLR0917 - a private helper of _store, same arguments
    metric: str,
    issued: datetime,
    targets: list[datetime],
    values: dict[str, Prediction],
    sensors: dict[str, int],
    version_id: int | None,
) -> None:
    buffer = io.StringIO()
    version = "" if version_id is None else str(version_id)
    issued_text = issued.isoformat()
    target_texts = [target.isoformat() for target in targets]
    null = chr(92) + "N"
    for code, predicted in values.items():
        prefix = f"{sensors[code]}\t{metric}\t{issued_text}\t"
        suffix = f"\t{'t' if predicted.degraded else 'f'}\t{version or null}\n"
        buffer.writelines(
            f"{prefix}{target}\t{value!r}\t{null if lower is None else repr(lower)}\t"
            f"{null if upper is None else repr(upper)}{suffix}"
            for target, value, lower, upper in zip(target_texts, *_columns(predicted), strict=True)
        )
    buffer.seek(0)
    table = Forecast._meta.db_table
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} (sensor_id, metric, issued_at, target, value, lower, upper, degraded, model_version_id) "
            "FROM STDIN",
            buffer,
        )


def _columns(predicted: Prediction) -> tuple[list[float], list[float | None], list[float | None]]:
    """(values, lower bounds, upper bounds) as Python floats; bounds None without a calibrated band."""
    missing: list[float | None] = [None] * len(predicted.value)
    return (
        predicted.value.tolist(),
        missing if predicted.lower is None else predicted.lower.tolist(),
        missing if predicted.upper is None else predicted.upper.tolist(),
    )


def _hand_over(per_metric: dict[str, dict[str, Prediction]], sensors: dict[str, int], targets: list[datetime]) -> int:
    """Give sensors the next hours' (flow, pressure) for sensors that have both forecasts."""
    flows, pressures = per_metric.get(Metric.FLOW, {}), per_metric.get(Metric.PRESSURE, {})
    rows = [
        (sensors[code], targets[step], float(flows[code].value[step]), float(pressures[code].value[step]))
        for code in flows.keys() & pressures.keys()
        for step in range(HANDOVER_HOURS)
    ]
    # The 7 daily rows the device gets after the server frame at the hour.
    set_daily_forecasts(
        sensors,
        targets[0],
        [
            row
            for code in flows.keys() & pressures.keys()
            for row in daily_forecast(code, targets[0], flows[code].value, pressures[code].value)
        ],
    )
    return set_hourly_predictions(rows)


# One issue hour of 1,000 sensors is 336,000 forecast rows (2 metrics x 168 hours): the hourly run spends
# at most about 10 s deleting old issues and the next run takes whatever is left.
PURGE_BATCH = 10_000
PURGE_SECONDS = 10.0


def purge_old(now: datetime) -> int:
    """Delete forecasts issued more than FORECAST_RETENTION_DAYS ago (idempotent)."""
    cutoff = now - timedelta(days=settings.FORECAST_RETENTION_DAYS)
    old = Forecast.objects.filter(issued_at__lt=cutoff)
    return delete_in_batches(old, batch_size=PURGE_BATCH, max_seconds=PURGE_SECONDS)[0]


def daily_forecast(
    code: str, issued: datetime, flow: np.ndarray | None, pressure: np.ndarray | None
) -> list[ForecastRow]:
    """The 7 daily rows of a 168-hour forecast; day k (the `code`, 1-7) is the mean of its 24 hours.

    A day's dates are the local dates of its first and last hour; a metric without a forecast is nan.
    """
    rows = []
    for day in range(1, HORIZON_HOURS // 24 + 1):
        first = pd.Timestamp(issued) + pd.Timedelta(hours=24 * (day - 1))
        hours = slice(24 * (day - 1), 24 * day)
        means = [
            float(np.nanmean(values[hours])) if values is not None else float("nan") for values in (flow, pressure)
        ]
        rows.append(
            ForecastRow(
                code,
                first.tz_convert(settings.TIME_ZONE).date(),
                (first + pd.Timedelta(hours=23)).tz_convert(settings.TIME_ZONE).date(),
                day,
                *means,
            )
        )
    return rows


def daily_rows(sensor: Sensor, issued: datetime) -> list[str]:
    """A stored issue's 7-day forecast in the device layout `<sensor> <YYMMDD> <YYMMDD> <code> <flow> <pressure>`."""
    stored = Forecast.objects.filter(sensor=sensor, issued_at=issued).values_list("metric", "target", "value")
    series: dict[str, np.ndarray] = {}
    for metric, target, value in stored:
        step = int((target - issued).total_seconds() // 3600)
        if 0 <= step < HORIZON_HOURS:
            series.setdefault(metric, np.full(HORIZON_HOURS, np.nan))[step] = value
    if not series:
        return []
    return format_forecast_rows(
        daily_forecast(sensor.code, issued, series.get(Metric.FLOW), series.get(Metric.PRESSURE))
    )
