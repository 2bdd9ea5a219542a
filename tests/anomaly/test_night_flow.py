"""store_night_flow: 10-minute night means, then each night's minimum, baseline comparison and streak."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from anomaly.models import CriteriaVersion, NightFlow, NightMinimum
from anomaly.services.night import last_complete_night, night_of, store_night_flow
from sensors.models import Sensor
from sensors.simulation import Fault

from .conftest import CODES

pytestmark = pytest.mark.django_db(transaction=True)
# 2026-11-10 13:00 UTC = 22:00 in Seoul: the first night of the window starts here.
EVENING = datetime(2026, 11, 10, 13, 0, tzinfo=UTC)


def test_night_boundaries() -> None:
    assert night_of(EVENING) == EVENING.date()
    assert night_of(EVENING - timedelta(minutes=1)) is None  # 21:59
    assert night_of(EVENING + timedelta(hours=6, minutes=59)) == EVENING.date()  # 04:59 next morning
    assert night_of(EVENING + timedelta(hours=7)) is None  # 05:00
    assert last_complete_night(EVENING + timedelta(hours=7)) == EVENING.date()
    assert last_complete_night(EVENING + timedelta(hours=6)) == EVENING.date() - timedelta(days=1)


def run_every_ten_minutes(start: datetime, end: datetime) -> None:
    moment = start
    while moment <= end:
        store_night_flow(moment)
        moment += timedelta(minutes=10)


def test_a_leak_builds_a_streak_and_a_clean_sensor_does_not(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    first_night = EVENING
    leak = Fault("leak", "002", first_night - timedelta(hours=12), first_night + timedelta(days=3), magnitude=1.2)
    end = first_night + timedelta(days=2, hours=8)
    readings(end=end, minutes=int((end - first_night).total_seconds() // 60) + 30, faults=[leak])
    run_every_ten_minutes(first_night, end)
    nights = [first_night.date() + timedelta(days=offset) for offset in range(3)]
    blocks = NightFlow.objects.filter(night=nights[0], sensor=sensors["001"])
    assert blocks.count() == 42  # 22:00-05:00 in 10-minute blocks
    assert all(block.samples == 10 for block in blocks)
    summary = {(row.sensor.code, row.night): row for row in NightMinimum.objects.select_related("sensor")}
    assert {code for code, _ in summary} == set(CODES)
    assert [summary[("001", night)].streak for night in nights] == [0, 0, 0]
    leaking = [summary[("002", night)] for night in nights]
    assert [row.exceeded for row in leaking] == [True, True, True]
    assert [row.streak for row in leaking] == [1, 2, 3]
    assert leaking[0].baseline == pytest.approx(
        criteria.rows.get(sensor=sensors["002"], metric="flow", hour=0, weekend=False).night_baseline
    )


def test_rerunning_is_idempotent_and_folds_in_late_readings(
    criteria: CriteriaVersion, readings: Callable[..., pd.DataFrame], sensors: dict[str, Sensor]
) -> None:
    end = EVENING + timedelta(minutes=30)
    frame = readings(end=end, minutes=31)
    late = frame[frame["ts"] >= EVENING + timedelta(minutes=15)]
    from sensors.models import Reading

    Reading.objects.filter(ts__gte=EVENING + timedelta(minutes=15)).delete()
    store_night_flow(end + timedelta(minutes=1))
    partial = NightFlow.objects.get(sensor=sensors["001"], start=EVENING + timedelta(minutes=10))
    assert partial.samples == 5
    from .conftest import store

    store(late, sensors)
    store_night_flow(end + timedelta(minutes=1))
    store_night_flow(end + timedelta(minutes=2))
    full = NightFlow.objects.get(sensor=sensors["001"], start=EVENING + timedelta(minutes=10))
    assert full.samples == 10
    assert NightFlow.objects.filter(sensor=sensors["001"]).count() == 3
