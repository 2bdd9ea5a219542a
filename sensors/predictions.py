"""What other apps hand to sensors for the outbound frames (sensors imports no other domain app).

forecasting pushes hourly predictions and the 7 daily forecast rows; anomaly pushes each minute's
detection flags. The 10-minute server frame (services.frames) reads them back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db import transaction

from core.redis import redis_client

from .models import DailyForecast, HourlyPrediction
from .protocol import ForecastRow

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


def set_daily_forecasts(sensor_ids: Mapping[str, int], issued: datetime, rows: Iterable[ForecastRow]) -> int:
    """Replace the daily rows of the sensors in `rows` (code -> id in `sensor_ids`); returns rows written."""
    objects = [
        DailyForecast(
            sensor_id=sensor_ids[row.sensor],
            code=row.code,
            start=row.start,
            end=row.end,
            flow=row.flow,
            pressure=row.pressure,
            issued_at=issued,
        )
        for row in rows
    ]
    with transaction.atomic():
        DailyForecast.objects.filter(sensor_id__in={obj.sensor_id for obj in objects}).delete()
        DailyForecast.objects.bulk_create(objects, batch_size=UPSERT_BATCH)
    return len(objects)


def daily_forecasts(codes: Iterable[str]) -> dict[str, list[ForecastRow]]:
    """sensor code -> its daily rows (day 1 first); sensors without a forecast are absent."""
    found: dict[str, list[ForecastRow]] = {}
    rows = DailyForecast.objects.filter(sensor__code__in=list(codes)).order_by("sensor__code", "code")
    for code, start, end, day, flow, pressure in rows.values_list(
        "sensor__code", "start", "end", "code", "flow", "pressure"
    ):
        found.setdefault(code, []).append(ForecastRow(code, start, end, day, flow, pressure))
    return found


# Flags live in Redis, one hash per minute, long enough for the server frames that show the minute.
FLAGS_KEY = "pipewatch:sensors:flags:{minute}"
FLAGS_TTL_SECONDS = 3 * 3600


def set_minute_flags(minute: datetime, flags: Mapping[str, tuple[str, str]]) -> None:
    """Record a minute's detection flags: sensor code -> (flow flags, pressure flags), one 0/1 per method."""
    if flags:
        key = FLAGS_KEY.format(minute=int(minute.timestamp()))
        pipe = redis_client().pipeline()
        pipe.hset(key, mapping={code: f"{flow},{pressure}" for code, (flow, pressure) in flags.items()})
        pipe.expire(key, FLAGS_TTL_SECONDS)
        pipe.execute()


def minute_flags(minutes: Iterable[datetime]) -> dict[tuple[str, datetime], tuple[str, str]]:
    """(sensor code, minute) -> (flow flags, pressure flags) for the minutes detection has flagged."""
    minutes = sorted(set(minutes))
    pipe = redis_client().pipeline()
    for minute in minutes:
        pipe.hgetall(FLAGS_KEY.format(minute=int(minute.timestamp())))
    found: dict[tuple[str, datetime], tuple[str, str]] = {}
    for minute, values in zip(minutes, pipe.execute(), strict=True):
        for code, text in values.items():
            flow, _, pressure = text.decode().partition(",")
            found[(code.decode(), minute)] = (flow, pressure)
    return found
