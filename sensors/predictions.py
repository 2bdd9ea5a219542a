"""Hourly predictions handed to sensors by forecasting, for the 10-minute server frame."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from .models import HourlyPrediction

UPSERT_BATCH = 1000


def set_hourly_predictions(rows: Iterable[tuple[int, datetime, float, float]]) -> int:
    """Upsert (sensor_id, hour, predicted flow, predicted pressure) rows; returns how many were written.

    Idempotent: the natural key is (sensor, hour), a second call with the same hour replaces the values.
    """
    objects = []
    for sensor_id, hour, flow, pressure in rows:
        if hour.tzinfo is None:
            raise ValueError("prediction hours must be timezone-aware")
        if hour.minute or hour.second or hour.microsecond:
            raise ValueError(f"{hour.isoformat()} is not the start of an hour")
        objects.append(HourlyPrediction(sensor_id=sensor_id, hour=hour, flow=float(flow), pressure=float(pressure)))
    HourlyPrediction.objects.bulk_create(
        objects,
        batch_size=UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=["sensor", "hour"],
        update_fields=["flow", "pressure", "updated_at"],
    )
    return len(objects)


def predictions_at(hour: datetime, sensor_ids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """sensor_id -> (flow, pressure) predicted for `hour`; sensors without one are absent (the frame sends 0)."""
    rows = HourlyPrediction.objects.filter(hour=hour, sensor_id__in=list(sensor_ids))
    return {row.sensor_id: (row.flow, row.pressure) for row in rows.only("sensor_id", "flow", "pressure")}
