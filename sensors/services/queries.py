"""The readings API's queries: raw rows or time buckets aggregated by the database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, DateTimeField, Func, Max, Min, OuterRef, Subquery

from ..models import Reading, Sensor

READINGS_LIMIT_DEFAULT = 100
READINGS_LIMIT_MAX = 10_000
# Bucket widths of the readings API's `resample`, in seconds.
RESAMPLE_RULES = {"1min": 60, "10min": 600, "1h": 3600}


class Bucket(Func):
    """The start of the `seconds`-wide bucket holding a timestamp, computed by the database."""

    output_field = DateTimeField()

    def __init__(self, expression: Any, seconds: int) -> None:
        super().__init__(expression)
        self.seconds = seconds

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date_bin(%s::interval, {sql}, TIMESTAMPTZ '2000-01-01 00:00:00+00')", [
            f"{self.seconds} seconds",
            *params,
        ]

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        # SQLite (the embedded default) keeps datetimes as UTC text.
        sql, params = compiler.compile(self.source_expressions[0])
        return f"datetime((CAST(strftime('%%s', {sql}) AS INTEGER) / %s) * %s, 'unixepoch')", [
            *params,
            self.seconds,
            self.seconds,
        ]


def readings_query(
    sensor: Sensor,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = READINGS_LIMIT_DEFAULT,
    resample: str = "",
) -> list[dict[str, Any]]:
    """A sensor's readings in [start, end), oldest first, at most `limit` rows/buckets.

    Without `start` the most recent rows are returned (the latest `limit`); resampling (`1min`, `10min`,
    `1h`) aggregates in the database: mean, min and max per metric, highest status, count.
    """
    rows = Reading.objects.filter(sensor=sensor)
    if start:
        rows = rows.filter(ts__gte=start)
    if end:
        rows = rows.filter(ts__lt=end)
    newest_first = start is None
    if not resample:
        ordered = rows.order_by("-ts" if newest_first else "ts").values(
            "ts", "flow", "pressure", "status", "received_at"
        )[:limit]
        result: list[dict[str, Any]] = [dict(row) for row in ordered]
    else:
        buckets = (
            rows.annotate(bucket=Bucket("ts", RESAMPLE_RULES[resample]))
            .values("bucket")
            .annotate(
                flow_mean=Avg("flow"),
                flow_low=Min("flow"),
                flow_high=Max("flow"),
                pressure_mean=Avg("pressure"),
                pressure_low=Min("pressure"),
                pressure_high=Max("pressure"),
                status_max=Max("status"),
                readings=Count("id"),
            )
            .order_by("-bucket" if newest_first else "bucket")[:limit]
        )
        result = [
            {
                "ts": row["bucket"],
                "flow": row["flow_mean"],
                "pressure": row["pressure_mean"],
                "flow_min": row["flow_low"],
                "flow_max": row["flow_high"],
                "pressure_min": row["pressure_low"],
                "pressure_max": row["pressure_high"],
                "status": row["status_max"],
                "count": row["readings"],
            }
            for row in buckets
        ]
    return result[::-1] if newest_first else result


def latest_readings(sensor_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
    """sensor id -> its newest reading (ts, flow, pressure, status), for every sensor or the given ones.

    Two queries: the newest reading id per sensor (one walk down the (sensor, ts) index each), then those
    rows by primary key: ~1,000 index probes for 1,000 sensors, whatever the table holds.
    """
    sensors = Sensor.objects.all() if sensor_ids is None else Sensor.objects.filter(pk__in=list(sensor_ids))
    newest = Reading.objects.filter(sensor_id=OuterRef("pk")).order_by("-ts").values("pk")[:1]
    ids = [pk for pk in sensors.order_by().annotate(latest=Subquery(newest)).values_list("latest", flat=True) if pk]
    rows = Reading.objects.filter(pk__in=ids).values("sensor_id", "ts", "flow", "pressure", "status")
    return {row["sensor_id"]: dict(row) for row in rows}
