"""forecasting's fixtures: simulated readings in the real database, tiny training settings, a model dir."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.conf import LazySettings
from django.db import connection

from sensors.models import Sensor
from sensors.simulation import simulate

# Every 10th minute: 6 readings an hour keep tests fast while hourly means stay honest.
SAMPLE_EVERY_MINUTES = 10
START = datetime(2026, 9, 1, tzinfo=UTC)

TINY_TRAINING = {
    "FORECAST_EPOCHS": "2",
    "FORECAST_WINDOWS_PER_EPOCH": "256",
    "FORECAST_BATCH_SIZE": "128",
    "FORECAST_LSTM_UNITS": "8",
    "FORECAST_PATIENCE": "1",
    "FORECAST_TREE_ROWS": "6000",
}


def copy_readings(frame: pd.DataFrame, sensor_ids: dict[str, int]) -> int:
    """COPY simulated rows (sensor code, ts, flow, pressure, status) into the readings table."""
    buffer = io.StringIO()
    out = frame.assign(sensor_id=frame["sensor"].map(sensor_ids), received_at=datetime.now(UTC))
    out[["sensor_id", "ts", "flow", "pressure", "status", "received_at"]].to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY sensors_reading (sensor_id, ts, flow, pressure, status, received_at) FROM STDIN WITH CSV",
            buffer,
        )
    return len(out)


@pytest.fixture
def load_readings() -> Callable[..., dict[str, Sensor]]:
    """Factory: simulated readings for `codes` over `days` from START (sampled every 10 minutes)."""

    def load(codes: Iterable[str], days: float, *, start: datetime = START, seed: int = 3) -> dict[str, Sensor]:
        codes = list(codes)
        sensors = {code: Sensor.objects.get_or_create(code=code)[0] for code in codes}
        result = simulate(codes, start, int(days * 1440), seed=seed)
        sampled = result.readings[result.readings["ts"].dt.minute % SAMPLE_EVERY_MINUTES == 0]
        copy_readings(sampled, {code: sensor.pk for code, sensor in sensors.items()})
        return sensors

    return load


@pytest.fixture
def tiny_training(settings: LazySettings, tmp_path: Path) -> Path:
    """Seconds-long training into a private model directory."""
    for name, value in TINY_TRAINING.items():
        setattr(settings, name, int(value))
    settings.FORECAST_MODEL_DIR = tmp_path / "models"
    return settings.FORECAST_MODEL_DIR


def hours_after(start: datetime, days: float) -> datetime:
    return start + timedelta(days=days)
