"""anomaly's fixtures: sensors, simulated readings in the database, criteria built from clean simulation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from anomaly.criteria import build_from_frame
from anomaly.models import CriteriaSource, CriteriaVersion
from sensors.models import Reading, Sensor
from sensors.simulation import Fault, simulate

# A Wednesday, 21:00 in Seoul: a weekday evening hour.
MINUTE = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)
CODES = ["001", "002", "003", "004"]


@pytest.fixture(autouse=True)
def event_notifications(settings: Any) -> None:
    """anomaly's tests check per-event messages, which aiops' incident messages replace by default."""
    settings.ANOMALY_EVENT_NOTIFICATIONS = True


@pytest.fixture
def sensors(db: None) -> dict[str, Sensor]:
    return {code: Sensor.objects.create(code=code, name=f"sensor {code}") for code in CODES}


@pytest.fixture
def criteria(sensors: dict[str, Sensor]) -> CriteriaVersion:
    """Criteria from two clean simulated weeks before the test window."""
    history = simulate(CODES, MINUTE - timedelta(days=15), 14 * 1440, seed=5).readings
    return build_from_frame(history, source=CriteriaSource.FILE, detail="simulation")


def store(frame: pd.DataFrame, sensors: dict[str, Sensor]) -> int:
    Reading.objects.bulk_create(
        [
            Reading(
                sensor=sensors[row.sensor],
                ts=row.ts.to_pydatetime(),
                flow=row.flow,
                pressure=row.pressure,
                status=int(row.status),
            )
            for row in frame.itertuples(index=False)
        ],
        batch_size=5000,
    )
    return len(frame)


@pytest.fixture
def readings(sensors: dict[str, Sensor]) -> Callable[..., pd.DataFrame]:
    """Store simulated readings for `minutes` minutes ending at `end` (inclusive), with faults."""

    def make(end: datetime = MINUTE, minutes: int = 90, faults: Sequence[Fault] = (), seed: int = 5) -> pd.DataFrame:
        frame = simulate(CODES, end - timedelta(minutes=minutes - 1), minutes, seed=seed, faults=faults).readings
        store(frame, sensors)
        return frame

    return make
