"""Readings storage: registration of new codes, physical ranges, idempotent upserts, history back-fill."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from sensors.models import Reading, Sensor
from sensors.protocol import FrameReading
from sensors.services.backfill import write_history
from sensors.services.storage import SensorRegistry, store_readings
from sensors.simulation import simulate

pytestmark = pytest.mark.django_db

MINUTE = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def reading(code: str, minute: int = 0, flow: float = 10.0, pressure: float = 4.0) -> FrameReading:
    return FrameReading(code, MINUTE + timedelta(minutes=minute), flow, pressure, 0)


def test_unknown_codes_are_registered_on_their_first_frame() -> None:
    result = store_readings([reading("301"), reading("302")], SensorRegistry())
    assert result.stored == 2
    assert set(Sensor.objects.filter(auto_registered=True).values_list("code", flat=True)) == {"301", "302"}


@override_settings(SENSORS_AUTO_REGISTER=False)
def test_unknown_codes_are_rejected_when_registration_is_off() -> None:
    Sensor.objects.create(code="303")
    result = store_readings([reading("303"), reading("304")], SensorRegistry())
    assert result.stored == 1
    assert result.rejected == {"unknown_sensor": 1}
    assert not Sensor.objects.filter(code="304").exists()


def test_values_outside_the_sensors_physical_range_are_rejected() -> None:
    Sensor.objects.create(code="305", flow_max=100, pressure_min=1)
    result = store_readings(
        [reading("305", 0, flow=150), reading("305", 1, pressure=0.5), reading("305", 2)], SensorRegistry()
    )
    assert result.rejected == {"out_of_range": 2}
    assert Reading.objects.count() == 1


def test_range_edits_reach_a_running_registry() -> None:
    registry = SensorRegistry()
    store_readings([reading("306", 0, flow=500)], registry)
    Sensor.objects.filter(code="306").update(flow_max=100)
    registry._loaded_at = float("-inf")  # the periodic refresh is due
    assert store_readings([reading("306", 1, flow=500)], registry).rejected == {"out_of_range": 1}


def test_a_repeated_minute_is_a_no_op_first_value_wins() -> None:
    registry = SensorRegistry()
    store_readings([reading("307", 0, flow=1)], registry)
    result = store_readings([reading("307", 0, flow=2), reading("307", 0, flow=3), reading("307", 1)], registry)
    assert (result.stored, result.duplicates) == (1, 2)
    assert Reading.objects.get(ts=MINUTE).flow == 1


@pytest.mark.django_db(transaction=True)
def test_history_backfill_uses_copy_and_is_idempotent() -> None:
    history = simulate(["401", "402"], MINUTE, 600, seed=2).readings
    assert write_history(history) == 1200
    assert write_history(history) == 0
    stored = pd.DataFrame(
        Reading.objects.order_by("ts", "sensor__code").values("sensor__code", "ts", "flow", "pressure")
    )
    assert stored["flow"].tolist() == history["flow"].tolist()
    assert write_history(history.iloc[:0]) == 0


@pytest.mark.django_db(transaction=True)
def test_simulate_sensors_backfill_and_truth(tmp_path: Path) -> None:
    out = StringIO()
    truth = tmp_path / "truth.csv"
    call_command(
        "simulate_sensors",
        "--sensors",
        "3",
        "--backfill",
        "0.5",
        "--fault",
        "dropout:002:1h:2h",
        "--fault",
        "leak:1:0m:12h:0.3",
        "--truth",
        str(truth),
        stdout=out,
    )
    # 3 x (720 minutes + the minute in progress, which a real-time start logs too), 120 of them dropped
    assert "back-filled 2043 readings" in out.getvalue()
    assert Reading.objects.filter(sensor__code="002").count() == 601
    rows = pd.read_csv(truth, dtype={"sensor": str})
    assert set(zip(rows["sensor"], rows["kind"], strict=True)) == {("002", "dropout"), ("001", "leak")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fault", "flood:001:0m:1h"], "unknown fault kind"),
        (["--fault", "leak:001:0m"], "KIND:SENSOR:OFFSET:DURATION"),
        (["--fault", "leak:001:soon:1h"], "is not a duration"),
        (["--sensors", "0"], "3 digits"),
        (["--speed", "0"], "--speed must be positive"),
    ],
)
def test_simulate_sensors_rejects_bad_options(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("simulate_sensors", *args, "--backfill", "0.001")


def test_serial_bridge_rejects_an_unknown_url_scheme() -> None:
    with pytest.raises(CommandError, match="no handler for serail://"):
        call_command("serial_bridge", "--url", "serail://ttyUSB0")


def test_system_checks_reject_bad_sensor_settings() -> None:
    with override_settings(SENSORS_SERIAL_URL="tcp://host:1", SENSORS_DEVICE_TIME_ZONE="Mars/Olympus"):
        ids = {message.id for message in run_checks()}
    assert {"sensors.E001", "sensors.E002"} <= ids
    with override_settings(SENSORS_SERIAL_URL="socket://host:1"):
        assert not {message.id for message in run_checks()} & {"sensors.E001", "sensors.E002"}
