"""Reading rows -> hourly series for training, aggregated in the database (one GROUP BY; 60x fewer rows)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pandas as pd
from django.db.models import Avg, Count
from django.db.models.functions import TruncHour

from sensors.models import Reading

from .series import HourlySeries, hourly_series


def load_hourly(metric: str, *, since: datetime | None = None) -> dict[str, HourlySeries]:
    """Sensor code -> hourly series of `metric` from `since` on. NaN and infinite readings are ignored (a
    broken value is not a measurement; the hour keeps its other minutes)."""
    readings = Reading.objects.filter(**{f"{metric}__lt": math.inf, f"{metric}__gt": -math.inf})
    if since is not None:
        readings = readings.filter(ts__gte=since)
    rows = (
        readings.annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values("sensor__code", "hour")
        .annotate(value=Avg(metric), rows=Count("id"))
        .order_by()
        .values_list("sensor__code", "hour", "value", "rows")
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["key", "hour", "value", "rows"])
    if not frame.empty:
        frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    return hourly_series(frame)
