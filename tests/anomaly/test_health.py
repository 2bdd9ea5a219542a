"""The anomaly_detection health check: failing only when readings arrive and nobody evaluates them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from anomaly.health import detection_fresh
from anomaly.models import DetectionRun
from sensors.models import Reading, Sensor

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 18, 12, 0, 30, tzinfo=UTC)


@time_machine.travel(NOW, tick=False)
def test_states() -> None:
    assert detection_fresh().ok  # nothing to evaluate
    sensor = Sensor.objects.create(code="001")
    Reading.objects.create(sensor=sensor, ts=NOW.replace(second=0), flow=1, pressure=1)
    result = detection_fresh()
    assert (result.ok, result.detail) == (False, "readings are arriving but no minute was evaluated yet")
    DetectionRun.objects.create(minute=NOW - timedelta(minutes=1, seconds=30), started_at=NOW, finished_at=NOW)
    assert detection_fresh().ok
    DetectionRun.objects.all().update(minute=NOW - timedelta(minutes=10))
    stale = detection_fresh()
    assert not stale.ok
    assert "600 s ago" in stale.detail
