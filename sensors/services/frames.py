"""Outbound frames: the 10-minute server frame (last 10 readings per sensor, predictions, flags, forecasts)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from ..models import HourlyPrediction, Reading
from ..outbox import queue_frames_once
from ..predictions import daily_forecasts, minute_flags
from ..protocol import ServerRow, forecast_lines, format_server_frame
from ..settings import frame_layout

logger = logging.getLogger(__name__)

SERVER_FRAME_ROWS = 10
# Only readings this recent count as "the last 10 rows": a sensor silent for a day sends no stale rows.
SERVER_FRAME_LOOKBACK = timedelta(hours=6)


def server_frame_rows(now: datetime) -> list[list[ServerRow]]:
    """Per active sensor, its last 10 readings up to `now` (oldest first), predictions at the hour, flags."""
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
    flags = minute_flags(row[2] for row in rows)
    blocks: dict[str, list[ServerRow]] = {}
    for sensor_id, code, ts, flow, pressure in rows:
        predicted_flow, predicted_pressure = predicted.get((sensor_id, ts), (0.0, 0.0))
        flow_flags, pressure_flags = flags.get((code, ts), ("0000", "000"))
        blocks.setdefault(code, []).append(
            ServerRow(code, ts, flow, pressure, predicted_flow, predicted_pressure, flow_flags, pressure_flags)
        )
    return list(blocks.values())


def send_server_frame(now: datetime | None = None) -> int:
    """Queue the 10-minute server frame for every active sensor; returns the rows queued (0: already sent).

    At the full hour each sensor's frame is followed by its 7 daily forecast rows (device layout).
    Once per 10-minute slot: a re-run (redelivered task) in the same slot queues nothing.
    """
    now = now or timezone.now()
    slot = now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0)
    layout = frame_layout()
    blocks = server_frame_rows(now)
    at_the_hour = slot.minute == 0
    forecasts = daily_forecasts(block[0].sensor for block in blocks) if at_the_hour else {}
    frames = []
    for block in blocks:
        frames += format_server_frame(block, layout)
        frames += forecast_lines(forecasts.get(block[0].sensor, []))
    if not frames:
        return 0
    if not queue_frames_once(f"server:{slot.isoformat()}", frames, ttl_seconds=3600):
        logger.info("server frame for %s already queued", slot.isoformat())
        return 0
    return sum(len(block) for block in blocks)
