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

from sensors.models import Metric, Sensor
from sensors.predictions import set_hourly_predictions

from ..metrics import ACTIVE_MODEL_TIMESTAMP, FORECASTS_WRITTEN, MODEL_LOAD_FAILURES, PREDICT_SECONDS, SENSORS_SKIPPED
from ..models import Forecast
from . import ForecastError, registry, rollup
from .model import forecast
from .series import HORIZON_HOURS, LAG_HOURS

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
    report["rolled_up_hours"] = rollup.refresh(issued, LAG_HOURS)
    window_start = issued - timedelta(hours=LAG_HOURS)
    hourly = rollup.load(Metric.values, window_start, issued, sensors.values())
    phases = {"read": time.perf_counter() - started, "forecast": 0.0, "store": 0.0}
    targets = [issued + timedelta(hours=step) for step in range(HORIZON_HOURS)]
    per_metric: dict[str, dict[str, np.ndarray]] = {}
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
    values: dict[str, np.ndarray],
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
                        value=float(value),
                        model_version_id=version_id,
                    )
                    for code, predicted in values.items()
                    for target, value in zip(targets, predicted, strict=True)
                ),
                batch_size=UPSERT_BATCH,
            )
    return len(values) * len(targets)


def _copy_rows(  # noqa: PLR0917 - a private helper of _store, same arguments
    metric: str,
    issued: datetime,
    targets: list[datetime],
    values: dict[str, np.ndarray],
    sensors: dict[str, int],
    version_id: int | None,
) -> None:
    buffer = io.StringIO()
    version = "" if version_id is None else str(version_id)
    issued_text = issued.isoformat()
    target_texts = [target.isoformat() for target in targets]
    for code, predicted in values.items():
        prefix = f"{sensors[code]}\t{metric}\t{issued_text}\t"
        buffer.writelines(
            f"{prefix}{target}\t{value!r}\t{version or chr(92) + 'N'}\n"
            for target, value in zip(target_texts, predicted.tolist(), strict=True)
        )
    buffer.seek(0)
    table = Forecast._meta.db_table
    with connection.cursor() as cursor:
        cursor.copy_expert(
            f"COPY {table} (sensor_id, metric, issued_at, target, value, model_version_id) FROM STDIN",
            buffer,
        )


def _hand_over(per_metric: dict[str, dict[str, np.ndarray]], sensors: dict[str, int], targets: list[datetime]) -> int:
    """Give sensors the next hours' (flow, pressure) for sensors that have both forecasts."""
    flows, pressures = per_metric.get(Metric.FLOW, {}), per_metric.get(Metric.PRESSURE, {})
    rows = [
        (sensors[code], targets[step], float(flows[code][step]), float(pressures[code][step]))
        for code in flows.keys() & pressures.keys()
        for step in range(HANDOVER_HOURS)
    ]
    return set_hourly_predictions(rows)


def purge_old(now: datetime) -> int:
    """Delete forecasts issued more than FORECAST_RETENTION_DAYS ago (idempotent)."""
    cutoff = now - timedelta(days=settings.FORECAST_RETENTION_DAYS)
    deleted, _ = Forecast.objects.filter(issued_at__lt=cutoff).delete()
    return deleted


def daily_rows(sensor: Sensor, issued: datetime) -> list[str]:
    """The 7-day forecast in the seed layout: `<sensor> <YYMMDD from> <YYMMDD to> <code> <flow> <pressure>`.

    Day k (the `<code>`, 1-7) is the mean of the 24 hourly values from issue hour + 24(k-1); its dates are
    the local dates of its first and last hour. A metric without a forecast prints as nan.
    """
    rows = Forecast.objects.filter(sensor=sensor, issued_at=issued).values_list("metric", "target", "value")
    frame = pd.DataFrame.from_records(list(rows), columns=["metric", "target", "value"])
    if frame.empty:
        return []
    hours_ahead = (pd.to_datetime(frame["target"], utc=True) - pd.Timestamp(issued)) / pd.Timedelta(hours=1)
    frame["day"] = (hours_ahead // 24).astype(int) + 1
    daily = frame.pivot_table(index="day", columns="metric", values="value", aggfunc="mean")
    lines = []
    for day, row in daily.iterrows():
        first = pd.Timestamp(issued) + pd.Timedelta(hours=24 * (int(day) - 1))
        last = first + pd.Timedelta(hours=23)
        lines.append(
            f"{sensor.code} {first.tz_convert(settings.TIME_ZONE):%y%m%d} {last.tz_convert(settings.TIME_ZONE):%y%m%d} "
            f"{int(day)} {row.get(Metric.FLOW, float('nan')):.3f} {row.get(Metric.PRESSURE, float('nan')):.3f}"
        )
    return lines
