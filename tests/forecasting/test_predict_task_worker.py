"""forecasting.predict_hourly through a real worker on the default queue (routing, JSON arguments)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from core.celery import app
from forecasting.models import Forecast
from tests.conftest import ChildProcess

from .conftest import START

pytestmark = pytest.mark.slow


def test_predict_hourly_runs_on_the_default_queue(
    celery_worker: Callable[..., ChildProcess], load_readings: Callable[..., dict]
) -> None:
    load_readings(["001", "002"], days=15)
    celery_worker(queues="default")
    issued = START + timedelta(days=15)
    report = app.send_task("forecasting.predict_hourly", args=[(issued + timedelta(minutes=2)).isoformat()]).get(
        timeout=120
    )
    assert report["issued_at"] == issued.isoformat()
    assert report["metrics"]["flow"]["forecast_sensors"] == 2
    assert Forecast.objects.filter(issued_at=issued).count() == 2 * 2 * 168
