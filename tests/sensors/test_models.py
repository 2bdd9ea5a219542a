"""Sensor's range rule lives in the model: clean() explains it, the database enforces it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sensors.models import Sensor

pytestmark = pytest.mark.django_db


def test_clean_names_the_empty_range() -> None:
    sensor = Sensor(code="001", flow_min=5.0, flow_max=5.0, pressure_min=3.0, pressure_max=1.0)
    with pytest.raises(ValidationError) as caught:
        sensor.full_clean()
    assert caught.value.message_dict["flow_max"] == ["flow_min (5.0) must be below flow_max (5.0)"]
    assert caught.value.message_dict["pressure_max"] == ["pressure_min (3.0) must be below pressure_max (1.0)"]


def test_clean_accepts_a_proper_range() -> None:
    Sensor(code="001", flow_min=0.0, flow_max=10.0, pressure_min=0.0, pressure_max=1.0).full_clean()


@pytest.mark.parametrize(
    ("fields", "constraint"),
    [({"flow_min": 10.0, "flow_max": 1.0}, "sensor_flow_range"), ({"pressure_max": 0.0}, "sensor_pressure_range")],
)
def test_the_database_refuses_an_empty_range_written_past_clean(fields: dict[str, float], constraint: str) -> None:
    sensor = Sensor.objects.create(code="002")
    with pytest.raises(IntegrityError, match=constraint), transaction.atomic():
        Sensor.objects.filter(pk=sensor.pk).update(**fields)
    sensor.refresh_from_db()
    assert (sensor.flow_min, sensor.flow_max, sensor.pressure_min, sensor.pressure_max) == (0.0, 1000.0, 0.0, 16.0)
