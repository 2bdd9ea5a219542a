"""Readings storage: resolve sensor codes, validate physical ranges, upsert in batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction

from ..models import Reading, Sensor
from ..protocol import FrameError, FrameReading, Ranges, validate

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
        return bulk_insert_new(
            [
                Reading(sensor_id=pk, ts=row.ts, flow=row.flow, pressure=row.pressure, status=row.status)
                for pk, row in zip(sensor_ids, rows, strict=True)
            ]
        )


def bulk_insert_new(readings: list[Reading]) -> int:
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
