"""/api/v1/sensors/: the registry (public reads, authenticated writes) and readings resampled in the DB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from sensors.models import Reading, Sensor

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def sensor() -> Sensor:
    sensor = Sensor.objects.create(code="042", name="main inlet", location="Gangnam pump station")
    # Two hours of minutes: flow = minute index, pressure = 4 + minute/1000, status 3 at minute 61.
    Reading.objects.bulk_create(
        Reading(sensor=sensor, ts=START + timedelta(minutes=i), flow=i, pressure=4 + i / 1000, status=3 * (i == 61))
        for i in range(120)
    )
    return sensor


def test_anyone_lists_and_reads_sensors(sensor: Sensor) -> None:
    Sensor.objects.create(code="043", active=False)
    body = APIClient().get("/api/v1/sensors/").json()
    assert [row["code"] for row in body["results"]] == ["042", "043"]
    assert APIClient().get("/api/v1/sensors/?active=false").json()["count"] == 1
    assert APIClient().get("/api/v1/sensors/?location=gangnam").json()["results"][0]["code"] == "042"
    detail = APIClient().get("/api/v1/sensors/042/").json()
    assert detail["name"] == "main inlet"
    assert detail["flow_max"] == 1000.0


def test_writes_need_authentication() -> None:
    response = APIClient().post("/api/v1/sensors/", {"code": "050"}, format="json")
    assert response.status_code in {401, 403}
    assert not Sensor.objects.filter(code="050").exists()


def test_create_and_update_with_a_token(token_client: APIClient) -> None:
    response = token_client.post(
        "/api/v1/sensors/", {"code": "050", "name": "new", "flow_max": 300, "auto_registered": True}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["auto_registered"] is False  # read-only
    response = token_client.patch("/api/v1/sensors/050/", {"pressure_max": 10, "active": False}, format="json")
    assert response.status_code == 200
    sensor = Sensor.objects.get(code="050")
    assert (sensor.flow_max, sensor.pressure_max, sensor.active) == (300, 10, False)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"code": "12"}, "code: a sensor code is 3 digits"),
        ({"code": "abc"}, "code: a sensor code is 3 digits"),
        ({"code": "042"}, "code: sensor 042 already exists"),
        ({"code": "051", "flow_min": 5, "flow_max": 5}, "flow_min (5.0) must be below flow_max (5.0)"),
        ({"code": "051", "pressure_max": -1}, "pressure_min (0.0) must be below pressure_max (-1.0)"),
    ],
)
def test_bad_sensor_payloads_are_400_with_a_readable_message(
    token_client: APIClient, sensor: Sensor, payload: dict[str, object], message: str
) -> None:
    response = token_client.post("/api/v1/sensors/", payload, format="json")
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_update_checks_ranges_against_the_stored_values(token_client: APIClient, sensor: Sensor) -> None:
    response = token_client.patch("/api/v1/sensors/042/", {"flow_min": 2000}, format="json")
    assert response.status_code == 400
    assert "flow_min (2000.0) must be below flow_max (1000.0)" in response.json()["message"]


def test_readings_default_to_the_latest_hundred_oldest_first(sensor: Sensor) -> None:
    body = APIClient().get("/api/v1/sensors/042/readings/").json()
    assert body["count"] == 100
    assert body["results"][0]["flow"] == 20
    assert body["results"][-1]["flow"] == 119
    assert body["results"][-1]["ts"] == "2026-03-02T10:59:00+09:00"


def test_readings_in_a_window_with_a_limit(sensor: Sensor) -> None:
    body = (
        APIClient()
        .get(
            "/api/v1/sensors/042/readings/",
            {"start": "2026-03-02T00:10:00Z", "end": "2026-03-02T00:20:00Z", "limit": "3"},
        )
        .json()
    )
    assert [row["flow"] for row in body["results"]] == [10, 11, 12]


@pytest.mark.parametrize(("rule", "buckets", "first_mean"), [("1min", 120, 0), ("10min", 12, 4.5), ("1h", 2, 29.5)])
def test_readings_resampled_in_the_database(sensor: Sensor, rule: str, buckets: int, first_mean: float) -> None:
    body = (
        APIClient()
        .get("/api/v1/sensors/042/readings/", {"start": "2026-03-02T00:00:00Z", "resample": rule, "limit": "10000"})
        .json()
    )
    assert body["resample"] == rule
    assert body["count"] == buckets
    first = body["results"][0]
    assert first["flow"] == pytest.approx(first_mean)
    assert first["count"] == 120 // buckets
    assert first["flow_min"] == 0
    assert body["results"][0]["ts"] == "2026-03-02T09:00:00+09:00"
    if rule == "1h":
        assert body["results"][1]["status"] == 3
        assert body["results"][1]["flow_max"] == 119
        assert body["results"][1]["pressure"] == pytest.approx(4 + 89.5 / 1000)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": 10001}, "limit: Ensure this value is less than or equal to 10000."),
        ({"limit": 0}, "limit: Ensure this value is greater than or equal to 1."),
        ({"resample": "5min"}, 'resample: "5min" is not a valid choice.'),
        ({"start": "yesterday"}, "start: Datetime has wrong format"),
        ({"start": "2026-03-02T01:00:00Z", "end": "2026-03-02T00:00:00Z"}, "start must be before end"),
    ],
)
def test_bad_readings_queries_are_400_with_a_readable_message(
    sensor: Sensor, query: dict[str, str | int], message: str
) -> None:
    response = APIClient().get("/api/v1/sensors/042/readings/", query)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_unknown_sensor_is_404() -> None:
    assert APIClient().get("/api/v1/sensors/999/readings/").status_code == 404
    assert APIClient().get("/api/v1/sensors/abc/").status_code == 404
