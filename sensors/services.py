"""Readings storage: resolve sensor codes, validate physical ranges, upsert in batches."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Avg, Count, DateTimeField, Func, Max, Min
from django.utils import timezone

from .models import HourlyPrediction, Reading, Sensor
from .protocol import FrameError, FrameReading, Ranges, ServerRow, format_server_frame, validate

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

# Sensor rows are re-read this often so range and activity edits made in the admin reach a running bridge.
REGISTRY_REFRESH_SECONDS = 60.0


@dataclass
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class SensorRegistry:
    """code -> (sensor id, physical ranges), cached, registering unknown codes when SENSORS_AUTO_REGISTER."""

    def __init__(self) -> None:
        self._sensors: dict[str, tuple[int, Ranges]] = {}
        self._loaded_at = float("-inf")

    def _load(self) -> None:
        rows = Sensor.objects.values_list("code", "id", "flow_min", "flow_max", "pressure_min", "pressure_max")
        self._sensors = {code: (pk, Ranges(*bounds)) for code, pk, *bounds in rows}
        self._loaded_at = time.monotonic()

    def resolve(self, codes: Iterable[str]) -> dict[str, tuple[int, Ranges]]:
        """The known sensors among `codes` (unknown ones registered first when auto-registration is on)."""
        if time.monotonic() - self._loaded_at > REGISTRY_REFRESH_SECONDS:
            self._load()
        missing = set(codes) - self._sensors.keys()
        if missing:
            self._load()
            missing -= self._sensors.keys()
        if missing and settings.SENSORS_AUTO_REGISTER:
            Sensor.objects.bulk_create(
                [Sensor(code=code, name=f"sensor {code}", auto_registered=True) for code in sorted(missing)],
                ignore_conflicts=True,
            )
            logger.info("registered new sensors from their first frames: %s", ", ".join(sorted(missing)))
            self._load()
        return self._sensors


def store_readings(rows: Sequence[FrameReading], registry: SensorRegistry) -> StoreResult:
    """Validate and upsert readings; a (sensor, minute) already stored is left as it is (idempotent).

    Raises django.db errors when the database is unreachable: the caller keeps the rows and retries.
    """
    result = StoreResult()
    sensors = registry.resolve({row.sensor for row in rows})
    sensor_ids: list[int] = []
    accepted: list[FrameReading] = []
    for row in rows:
        known = sensors.get(row.sensor)
        try:
            validate(row, known[1] if known else None)
        except FrameError as exc:
            result.rejected[exc.result] = result.rejected.get(exc.result, 0) + 1
            logger.warning("reading rejected (%s): %s", exc.result, exc)
            continue
        assert known is not None
        sensor_ids.append(known[0])
        accepted.append(row)
    if accepted:
        inserted = _insert(sensor_ids, accepted)
        result.stored = inserted
        result.duplicates = len(accepted) - inserted
    return result


def _insert(sensor_ids: list[int], rows: list[FrameReading]) -> int:
    """One statement per batch; returns the number of rows that were new."""
    if connection.vendor == "postgresql":
        # unnest() of five arrays: one round trip, one short statement per batch, and the row count says
        # how many were new. Measured 1.4-1.9x the rate of bulk_create(ignore_conflicts) at 2,000 rows.
        table = Reading._meta.db_table
        sql = (
            f"INSERT INTO {table} (sensor_id, ts, flow, pressure, status, received_at) "  # noqa: S608 - model's own table
            "SELECT s, t, f, p, st, now() FROM unnest(%s::bigint[], %s::timestamptz[], %s::float8[], "
            "%s::float8[], %s::smallint[]) AS u(s, t, f, p, st) ON CONFLICT (sensor_id, ts) DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [
                    sensor_ids,
                    [row.ts for row in rows],
                    [row.flow for row in rows],
                    [row.pressure for row in rows],
                    [row.status for row in rows],
                ],
            )
            return int(cursor.rowcount)
    with transaction.atomic():
        return _bulk_insert_new(
            [
                Reading(sensor_id=pk, ts=row.ts, flow=row.flow, pressure=row.pressure, status=row.status)
                for pk, row in zip(sensor_ids, rows, strict=True)
            ]
        )


def _bulk_insert_new(readings: list[Reading]) -> int:
    """The portable path (SQLite, `make run`): insert, skipping stored minutes; returns the new rows' count.

    New rows are counted from one indexed lookup of the batch's keys, not COUNT(*) of a growing table.
    """
    keys = {(reading.sensor_id, reading.ts) for reading in readings}
    stored = set(
        Reading.objects.filter(
            sensor_id__in={sensor_id for sensor_id, _ in keys},
            ts__gte=min(ts for _, ts in keys),
            ts__lte=max(ts for _, ts in keys),
        ).values_list("sensor_id", "ts")
    )
    Reading.objects.bulk_create(readings, ignore_conflicts=True, batch_size=500)
    return len(keys - stored)


PURGE_BATCH = 5000


def purge_old_readings(
    now: datetime | None = None, max_seconds: float = 300.0, batch_size: int = PURGE_BATCH
) -> tuple[int, bool]:
    """Delete readings older than SENSORS_RETENTION_DAYS in batches; returns (deleted, finished).

    Batches keep each transaction and its locks short. Re-running is harmless (what is gone stays gone).
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.SENSORS_RETENTION_DAYS)
    deadline = time.monotonic() + max_seconds
    deleted = 0
    while True:
        ids = list(Reading.objects.filter(ts__lt=cutoff).order_by().values_list("id", flat=True)[:batch_size])
        if not ids:
            HourlyPrediction.objects.filter(hour__lt=cutoff).delete()
            return deleted, True
        deleted += Reading.objects.filter(id__in=ids).delete()[0]
        if time.monotonic() > deadline:
            return deleted, False


def ensure_sensors(codes: Iterable[str]) -> dict[str, int]:
    """code -> id, creating missing sensors (the simulator's back-fill registers the sensors it writes)."""
    codes = sorted(set(codes))
    Sensor.objects.bulk_create(
        [Sensor(code=code, name=f"sensor {code}", auto_registered=True) for code in codes], ignore_conflicts=True
    )
    return dict(Sensor.objects.filter(code__in=codes).values_list("code", "id"))


def write_history(readings: pd.DataFrame) -> int:
    """Bulk-load simulated readings (sensor, ts, flow, pressure, status); existing minutes are kept.

    PostgreSQL: COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING, so a re-run is
    idempotent (COPY ~58k rows/s against execute_values ~24k/s and bulk_create ~12k/s; DESIGN.md).
    """
    import pandas as pd

    if readings.empty:
        return 0
    ids = ensure_sensors(readings["sensor"].unique())
    frame = pd.DataFrame(
        {
            "sensor_id": readings["sensor"].map(ids),
            "ts": pd.to_datetime(readings["ts"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S+00"),
            "flow": readings["flow"],
            "pressure": readings["pressure"],
            "status": readings["status"].astype(int),
        }
    )
    if connection.vendor != "postgresql":
        return _bulk_insert_new(
            [
                Reading(sensor_id=row.sensor_id, ts=row.ts, flow=row.flow, pressure=row.pressure, status=row.status)
                for row in frame.assign(ts=pd.to_datetime(readings["ts"], utc=True).dt.to_pydatetime()).itertuples()
            ]
        )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    table = Reading._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE sensors_reading_load "
            "(sensor_id bigint, ts timestamptz, flow float8, pressure float8, status smallint) ON COMMIT DROP"
        )
        cursor.connection.cursor().copy_expert(
            "COPY sensors_reading_load FROM STDIN WITH (FORMAT csv)",
            buffer,
        )
        cursor.execute(
            f"INSERT INTO {table} (sensor_id, ts, flow, pressure, status, received_at) "  # noqa: S608
            "SELECT sensor_id, ts, flow, pressure, status, now() FROM sensors_reading_load "
            "ON CONFLICT (sensor_id, ts) DO NOTHING"
        )
        return int(cursor.rowcount)


SERVER_FRAME_ROWS = 10
# Only readings this recent count as "the last 10 rows": a sensor silent for a day sends no stale rows.
SERVER_FRAME_LOOKBACK = timedelta(hours=6)


def server_frame_rows(now: datetime) -> list[list[ServerRow]]:
    """Per active sensor, its last 10 readings up to `now` (oldest first) with the predictions at the hour."""
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    latest = (
        Reading.objects.filter(sensor__active=True, ts__gt=now - SERVER_FRAME_LOOKBACK, ts__lte=now)
        .annotate(rank=Window(RowNumber(), partition_by=[F("sensor_id")], order_by=F("ts").desc()))
        .filter(rank__lte=SERVER_FRAME_ROWS)
        .values_list("sensor_id", "sensor__code", "ts", "flow", "pressure")
    )
    rows = sorted(latest, key=lambda row: (row[1], row[2]))
    hours = {row[2] for row in rows if row[2].minute == 0}
    predicted = {
        (sensor_id, hour): (flow, pressure)
        for sensor_id, hour, flow, pressure in HourlyPrediction.objects.filter(
            sensor_id__in={row[0] for row in rows}, hour__in=hours
        ).values_list("sensor_id", "hour", "flow", "pressure")
    }
    blocks: dict[str, list[ServerRow]] = {}
    for sensor_id, code, ts, flow, pressure in rows:
        predicted_flow, predicted_pressure = predicted.get((sensor_id, ts), (0.0, 0.0))
        blocks.setdefault(code, []).append(ServerRow(code, ts, flow, pressure, predicted_flow, predicted_pressure))
    return list(blocks.values())


def send_server_frame(now: datetime | None = None) -> int:
    """Queue the 10-minute server frame for every active sensor; returns the rows queued (0: already sent).

    Once per 10-minute slot: a re-run (redelivered task) in the same slot queues nothing.
    """
    from .outbox import queue_frames_once
    from .settings import frame_layout

    now = now or timezone.now()
    slot = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    layout = frame_layout()
    blocks = server_frame_rows(now)
    frames = [line for block in blocks for line in format_server_frame(block, layout)]
    if not frames:
        return 0
    if not queue_frames_once(f"server:{slot.isoformat()}", frames, ttl_seconds=3600):
        logger.info("server frame for %s already queued", slot.isoformat())
        return 0
    return sum(len(block) for block in blocks)


def check_ranges(
    flow_min: float = 0.0, flow_max: float = 1000.0, pressure_min: float = 0.0, pressure_max: float = 16.0
) -> None:
    """A sensor's physical ranges must be non-empty, or every reading would be rejected."""
    from rest_framework.exceptions import ValidationError

    if flow_min >= flow_max:
        raise ValidationError(f"flow_min ({flow_min}) must be below flow_max ({flow_max})")
    if pressure_min >= pressure_max:
        raise ValidationError(f"pressure_min ({pressure_min}) must be below pressure_max ({pressure_max})")


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
