"""The hourly roll-up: hourly means of new readings, kept so the hourly run never re-reads minute data.

Each run re-aggregates from the hour the previous run reached minus FORECAST_LATE_DATA_HOURS (readings
that arrive late, e.g. the bridge's spool back-filling after an outage, are picked up within that
margin), or the whole input window on the first run. Upserts on (sensor, hour): safe to re-run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pandas as pd
from django.conf import settings
from django.db import connection
from django.db.models import Avg, Count, Max, Q
from django.db.models.functions import TruncHour

from core.retention import delete_in_batches
from sensors.models import Metric, Reading

from ..models import HourlyMean
from .series import HourlySeries, hourly_series

UPSERT_BATCH = 5000


def _finite(metric: str) -> Q:
    return Q(**{f"{metric}__lt": math.inf, f"{metric}__gt": -math.inf})


def refresh(until: datetime, window_hours: int) -> int:
    """Roll up the readings before `until` that may have changed since the last run; returns hours written."""
    first_needed = until - timedelta(hours=window_hours)
    reached = HourlyMean.objects.filter(hour__gte=first_needed).aggregate(last=Max("hour"))["last"]
    since = first_needed
    if reached is not None:
        since = max(first_needed, reached + timedelta(hours=1) - timedelta(hours=settings.FORECAST_LATE_DATA_HOURS))
    if connection.vendor == "postgresql":
        return _refresh_in_sql(since, until)
    rows = (
        Reading.objects.filter(ts__gte=since, ts__lt=until)
        .annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values("sensor_id", "hour")
        .annotate(
            flow=Avg("flow", filter=_finite(Metric.FLOW)),
            pressure=Avg("pressure", filter=_finite(Metric.PRESSURE)),
            rows=Count("id"),
        )
        .order_by()
    )
    means = [HourlyMean(**row) for row in rows]
    HourlyMean.objects.bulk_create(
        means,
        batch_size=UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=["sensor", "hour"],
        update_fields=["flow", "pressure", "rows"],
    )
    return len(means)


def _refresh_in_sql(since: datetime, until: datetime) -> int:
    """The same aggregation as one INSERT ... SELECT ... ON CONFLICT: nothing leaves PostgreSQL.

    The ORM path moves every aggregated row through Python (~70 s for the first run's 2 M readings of
    1,000 sensors in bench/forecasting_predict.py); this one does not.
    """
    means, readings = HourlyMean._meta.db_table, Reading._meta.db_table
    finite = "{0} < 'Infinity'::float8 AND {0} > '-Infinity'::float8"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {means} (sensor_id, hour, flow, pressure, rows)
            SELECT sensor_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
                   avg(flow) FILTER (WHERE {finite.format("flow")}),
                   avg(pressure) FILTER (WHERE {finite.format("pressure")}),
                   count(*)
            FROM {readings}
            WHERE ts >= %s AND ts < %s
            GROUP BY 1, 2
            ON CONFLICT (sensor_id, hour)
            DO UPDATE SET flow = EXCLUDED.flow, pressure = EXCLUDED.pressure, rows = EXCLUDED.rows
            """,  # noqa: S608 - table names come from the models, values are parameters
            [since, until],
        )
        return cursor.rowcount


def load(
    metrics: Iterable[str], since: datetime, until: datetime, sensor_ids: Iterable[int]
) -> dict[str, dict[str, HourlySeries]]:
    """metric -> sensor code -> hourly series over [since, until), from the roll-up."""
    rows = HourlyMean.objects.filter(hour__gte=since, hour__lt=until, sensor_id__in=list(sensor_ids)).values_list(
        "sensor__code", "hour", "flow", "pressure", "rows"
    )
    frame = pd.DataFrame.from_records(list(rows), columns=["key", "hour", "flow", "pressure", "rows"])
    if not frame.empty:
        frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    result = {}
    for metric in metrics:
        part = frame[["key", "hour", metric, "rows"]].rename(columns={metric: "value"}).dropna(subset=["value"])
        result[metric] = hourly_series(part)
    return result


def purge(before: datetime) -> int:
    """Delete roll-ups of hours before `before` (the oldest hour a forecast window still reads)."""
    return delete_in_batches(HourlyMean.objects.filter(hour__lt=before), batch_size=10_000)[0]
