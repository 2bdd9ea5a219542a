"""The admin: events can be acknowledged and resolved in bulk; criteria and settings pages render."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client

from anomaly.models import AnomalyEvent, SensorMethodSettings
from sensors.models import Sensor

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


@pytest.fixture
def admin_client_logged_in() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("admin", password="unused-here"))
    return client


def test_bulk_acknowledge_and_resolve(admin_client_logged_in: Client) -> None:
    sensor = Sensor.objects.create(code="001")
    common = {"source": "sensor", "sensor": sensor, "subject": "001", "started_at": T0, "last_fired_at": T0}
    first = AnomalyEvent.objects.create(metric="flow", method="value", **common)
    second = AnomalyEvent.objects.create(metric="pressure", method="system", **common)
    url = "/admin/anomaly/anomalyevent/"
    response = admin_client_logged_in.post(url, {"action": "acknowledge", "_selected_action": [first.pk]}, follow=True)
    assert response.status_code == 200
    first.refresh_from_db()
    assert (first.status, first.acknowledged_by.username if first.acknowledged_by else None) == (
        "acknowledged",
        "admin",
    )
    admin_client_logged_in.post(url, {"action": "resolve", "_selected_action": [first.pk, second.pk]})
    assert set(AnomalyEvent.objects.values_list("status", flat=True)) == {"resolved"}


@pytest.mark.parametrize(
    "path",
    ["anomalyevent", "criteria", "criteriaversion", "sensormethodsettings", "nightminimum", "detectionrun"],
)
def test_pages_render(admin_client_logged_in: Client, path: str) -> None:
    SensorMethodSettings.objects.create(sensor=Sensor.objects.create(code="002"), value_k=4)
    assert admin_client_logged_in.get(f"/admin/anomaly/{path}/").status_code == 200
