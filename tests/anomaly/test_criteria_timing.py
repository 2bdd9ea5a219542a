"""Criteria timing with controlled time: DB criteria the day 3 months of readings exist (checked daily), the
rebuild 3 months after the previous build; and the old system's initial_data.txt accepted as the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import time_machine

from anomaly import criteria
from anomaly.models import CriteriaVersion
from anomaly.tasks import rebuild_criteria
from sensors.models import Sensor
from sensors.simulation import simulate

from .conftest import store

pytestmark = pytest.mark.django_db
START = datetime(2026, 3, 2, tzinfo=UTC)


def initial_file(tmp_path: Path) -> Path:
    path = tmp_path / "initial.csv"
    frame = simulate(["001", "002"], START - timedelta(days=30), 2 * 1440, seed=5).readings
    frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(path, index=False)
    return path


def test_the_switch_happens_the_day_enough_history_exists_and_rebuilds_follow_the_last_build(
    settings: Any, tmp_path: Path
) -> None:
    settings.ANOMALY_CRITERIA_FILE = initial_file(tmp_path)
    settings.ANOMALY_CRITERIA_DB_DAYS = 3  # "3 months", shortened: the rule, not the length, is under test
    sensors = {code: Sensor.objects.create(code=code) for code in ("001", "002")}
    history = simulate(["001", "002"], START, 4 * 1440, seed=3).readings

    def day(offset: int) -> time_machine.travel:
        return time_machine.travel(START + timedelta(days=offset, hours=3, minutes=30), tick=False)

    with day(0):
        first = rebuild_criteria()  # no criteria yet: from the file
    assert first is not None
    assert CriteriaVersion.objects.get(pk=first).source == "file"
    store(history[history["ts"] < START + timedelta(days=2)], sensors)
    with day(2):
        assert rebuild_criteria() is None  # 2 days of readings < 3
    store(history[history["ts"] >= START + timedelta(days=2)], sensors)  # now 4 days
    with day(4):
        switched = rebuild_criteria()
    assert switched is not None
    built = CriteriaVersion.objects.get(pk=switched)
    assert built.source == "database"
    assert built.created_at == START + timedelta(days=4, hours=3, minutes=30)
    with day(5):
        assert rebuild_criteria() is None  # database criteria are fresh: nothing until 3 months later
    due = pd.Timestamp(built.created_at) + pd.DateOffset(months=3)
    with time_machine.travel(due - timedelta(days=1), tick=False):
        assert rebuild_criteria() is None
    with time_machine.travel(due, tick=False):
        rebuilt = rebuild_criteria()
    assert rebuilt is not None
    assert CriteriaVersion.objects.get(pk=rebuilt).source == "database"
    with time_machine.travel(due + timedelta(days=1), tick=False):
        assert rebuild_criteria() is None  # counted from the rebuild, not from the calendar quarter


def test_the_old_initial_data_txt_layout_is_read(settings: Any, tmp_path: Path) -> None:
    settings.SENSORS_DEVICE_TIME_ZONE = "Asia/Seoul"
    path = tmp_path / "initial_data.txt"
    path.write_text(
        "# sensor YYMMDDhhmm flow pressure status\n"
        "001 2603020000 12.5 3.10 00\n"
        "001 2603020001 12.75 3.125\n"
        "002 2603020000 40 4.0 03\n"
        "002 26030200xx 40 4.0 00\n"  # unparseable time: skipped and counted
    )
    frame = criteria.read_readings_file(path)
    assert frame[["sensor", "flow", "pressure", "status"]].values.tolist() == [
        ["001", 12.5, 3.1, 0],
        ["001", 12.75, 3.125, 0],
        ["002", 40.0, 4.0, 3],
    ]
    # device time (Seoul, UTC+9) to UTC
    assert frame["ts"].tolist() == [
        pd.Timestamp("2026-03-01 15:00", tz=UTC),
        pd.Timestamp("2026-03-01 15:01", tz=UTC),
        pd.Timestamp("2026-03-01 15:00", tz=UTC),
    ]


def test_a_legacy_file_builds_criteria_like_the_csv(settings: Any, tmp_path: Path) -> None:
    readings = simulate(["001"], START, 2 * 1440, seed=9).readings
    local = readings["ts"].dt.tz_convert("Asia/Seoul").dt.strftime("%y%m%d%H%M")
    legacy = tmp_path / "initial_data.txt"
    legacy.write_text(
        "".join(f"{s} {t} {f:.3f} {p:.3f} {st:02d}\n" for s, t, f, p, st in zip(
            readings["sensor"], local, readings["flow"], readings["pressure"], readings["status"], strict=True
        ))
    )  # fmt: skip
    csv = tmp_path / "initial.csv"
    readings.round({"flow": 3, "pressure": 3}).to_csv(csv, index=False)
    settings.SENSORS_DEVICE_TIME_ZONE = "Asia/Seoul"
    Sensor.objects.create(code="001")
    from_legacy = criteria.build_from_file(legacy)
    from_csv = criteria.build_from_file(csv)
    assert from_legacy.readings == from_csv.readings == len(readings)
    assert (from_legacy.data_start, from_legacy.data_end) == (from_csv.data_start, from_csv.data_end)
    columns = ["metric", "hour", "weekend", "median", "lower", "upper"]
    assert list(from_legacy.rows.order_by(*columns[:3]).values_list(*columns)) == list(
        from_csv.rows.order_by(*columns[:3]).values_list(*columns)
    )
