"""sensors' periodic work: the 10-minute server frame, hourly predictions, retention."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import cast

import pytest
import redis
import time_machine
from django.test import override_settings

from sensors.models import HourlyPrediction, Reading, Sensor
from sensors.outbox import OUTBOX_KEY
from sensors.predictions import set_daily_forecasts, set_hourly_predictions, set_minute_flags
from sensors.protocol import ForecastRow, split_frame
from sensors.services import frames as frame_service
from sensors.services import retention
from sensors.tasks import purge_old_readings, send_server_frame
from tests.conftest import ChildProcess

NOW = datetime(2026, 3, 2, 4, 5, 30, tzinfo=UTC)  # 13:05 in Seoul


def readings_until(sensor: Sensor, end: datetime, minutes: int) -> None:
    Reading.objects.bulk_create(
        Reading(sensor=sensor, ts=end - timedelta(minutes=i), flow=100 + i, pressure=4 + i / 100)
        for i in range(minutes)
    )


@pytest.mark.django_db
def test_server_frame_is_the_last_ten_rows_with_predictions_at_the_hour(clean_redis: redis.Redis) -> None:
    first, second, idle = (Sensor.objects.create(code=code) for code in ("001", "002", "003"))
    Sensor.objects.filter(pk=idle.pk).update(active=False)
    minute = NOW.replace(second=0)
    readings_until(first, minute, 30)
    readings_until(second, minute - timedelta(minutes=2), 5)  # fewer than 10 recent rows
    readings_until(idle, minute, 10)
    Reading.objects.create(sensor=first, ts=minute + timedelta(minutes=1), flow=1, pressure=1)  # the future
    hour = NOW.replace(minute=0, second=0)
    set_hourly_predictions([(first.pk, hour, 150.5, 3.25), (first.pk, hour + timedelta(hours=1), 1, 1)])
    set_minute_flags(minute - timedelta(minutes=1), {"001": ("0100", "001")})
    set_minute_flags(minute - timedelta(minutes=2), {"002": ("1000", "100")})
    daily = [
        ForecastRow("001", date(2026, 3, 2 + day), date(2026, 3, 3 + day), day + 1, 99.5, 4.25) for day in range(7)
    ]
    assert set_daily_forecasts({"001": first.pk}, hour, daily) == 7

    assert frame_service.send_server_frame(now=NOW) == 15
    lines = cast("list[bytes]", clean_redis.lrange(OUTBOX_KEY, 0, -1))
    # At the hour the first sensor's frame is followed by its 7 daily rows, in the device's layout.
    assert lines[11:18] == [f"001 2603{2 + d:02d} 2603{3 + d:02d} {d + 1} 99.5 4.25\r\n".encode() for d in range(7)]
    frames = [split_frame(frame) for frame in lines[:11] + lines[18:]]
    first_block, second_block = frames[:11], frames[11:]
    flagged = [row for row in first_block if row[0] == "S" and row[2] == "2603021304"]
    assert flagged == [["S", "001", "2603021304", "101.0", "4.01", "0.0", "0.0", "0100", "001"]]
    assert all(row[7:] == ["0000", "000"] for row in first_block[:10] if row[2] != "2603021304")
    assert [row[2] for row in first_block[:10]] == [
        "2603021256",
        "2603021257",
        "2603021258",
        "2603021259",
        *(f"26030213{m:02d}" for m in range(6)),
    ]
    at_hour = [row for row in first_block if row[0] == "S" and row[2] == "2603021300"]
    assert at_hour == [["S", "001", "2603021300", "105.0", "4.05", "150.5", "3.25", "0000", "000"]]
    assert all(row[5:7] == ["0.0", "0.0"] for row in first_block[:10] if row[2] != "2603021300")
    assert first_block[10] == ["E", "10"]
    assert [row[1] for row in second_block[:5]] == ["002"] * 5
    assert second_block[5] == ["E", "5"]
    assert second_block[4][7:] == ["1000", "100"]
    assert len(lines) == 24

    # Redelivered in the same 10-minute slot: nothing is queued twice.
    assert frame_service.send_server_frame(now=NOW + timedelta(minutes=3)) == 0
    assert clean_redis.llen(OUTBOX_KEY) == 24


@pytest.mark.django_db
def test_hourly_predictions_upsert_and_reject_bad_hours() -> None:
    sensor = Sensor.objects.create(code="009")
    hour = datetime(2026, 3, 2, 4, tzinfo=UTC)
    assert set_hourly_predictions([(sensor.pk, hour, 1.0, 2.0)]) == 1
    assert set_hourly_predictions([(sensor.pk, hour, 3.0, 4.0)]) == 1
    assert HourlyPrediction.objects.count() == 1
    assert list(HourlyPrediction.objects.values_list("sensor_id", "hour", "flow", "pressure")) == [
        (sensor.pk, hour, 3.0, 4.0)
    ]
    with pytest.raises(ValueError, match="start of an hour"):
        set_hourly_predictions([(sensor.pk, hour + timedelta(minutes=5), 1.0, 1.0)])
    with pytest.raises(ValueError, match="timezone-aware"):
        set_hourly_predictions([(sensor.pk, datetime(2026, 3, 2, 4), 1.0, 1.0)])


@pytest.mark.django_db
@override_settings(SENSORS_RETENTION_DAYS=365)
def test_retention_deletes_only_old_readings_in_batches_and_is_idempotent() -> None:
    sensor = Sensor.objects.create(code="010")
    cutoff = NOW - timedelta(days=365)
    old = [cutoff - timedelta(minutes=i + 1) for i in range(23)]
    kept = [cutoff + timedelta(minutes=i) for i in range(7)]
    Reading.objects.bulk_create(Reading(sensor=sensor, ts=ts, flow=1, pressure=1) for ts in old + kept)
    set_hourly_predictions([(sensor.pk, datetime(2025, 1, 1, tzinfo=UTC), 1, 1)])
    with time_machine.travel(NOW, tick=False):
        assert retention.purge_old_readings(batch_size=5) == (23, True)
        assert sorted(Reading.objects.values_list("ts", flat=True)) == kept
        assert retention.purge_old_readings(batch_size=5) == (0, True)
        assert purge_old_readings() == 0
    assert HourlyPrediction.objects.count() == 0


@pytest.mark.django_db
def test_retention_stops_at_its_time_budget_and_reports_unfinished() -> None:
    sensor = Sensor.objects.create(code="011")
    Reading.objects.bulk_create(
        Reading(sensor=sensor, ts=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=i), flow=1, pressure=1)
        for i in range(20)
    )
    deleted, finished = retention.purge_old_readings(max_seconds=0, batch_size=5)
    assert (deleted, finished) == (5, False)


@pytest.mark.slow
def test_send_server_frame_runs_on_a_real_worker(
    celery_worker: Callable[..., ChildProcess], clean_redis: redis.Redis
) -> None:
    sensor = Sensor.objects.create(code="012")
    readings_until(sensor, datetime.now(UTC).replace(second=0, microsecond=0), 12)
    celery_worker(queues="default")
    result = send_server_frame.delay()
    assert result.get(timeout=60) == 10
    frames = cast("list[bytes]", clean_redis.lrange(OUTBOX_KEY, 0, -1))
    assert len(frames) == 11
    assert frames[-1].startswith(b"$E,10*")
