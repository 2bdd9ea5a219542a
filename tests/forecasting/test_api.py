"""The forecasting API: latest forecasts by default, filters, model versions, training on demand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from rest_framework.test import APIClient

from forecasting.models import Forecast, ModelVersion, TrainingRun
from sensors.models import Sensor

from .conftest import START

pytestmark = pytest.mark.django_db


@pytest.fixture
def forecasts() -> dict[str, Sensor]:
    sensors = {code: Sensor.objects.create(code=code) for code in ("001", "002")}
    rows = [
        Forecast(
            sensor=sensor,
            metric=metric,
            issued_at=START + timedelta(hours=issue),
            target=START + timedelta(hours=issue + step),
            value=issue + step / 100,
        )
        for sensor in sensors.values()
        for metric in ("flow", "pressure")
        for issue in (0, 1)
        for step in range(168)
    ]
    Forecast.objects.bulk_create(rows)
    return sensors


def test_forecasts_default_to_the_latest_issue(forecasts: dict[str, Sensor]) -> None:
    body = APIClient().get("/api/v1/forecasts/", {"sensor": "001", "metric": "flow", "limit": "500"}).json()
    assert body["count"] == 168
    first = body["results"][0]
    assert first["sensor"] == "001"
    assert first["metric"] == "flow"
    assert first["issued_at"].startswith("2026-09-01T10:00:00")  # 01:00 UTC in Asia/Seoul
    assert first["produced_by"] == "seasonal_naive"


def test_issued_after_returns_every_issue_since(forecasts: dict[str, Sensor]) -> None:
    response = APIClient().get("/api/v1/forecasts/", {"sensor": "002", "issued_after": START.isoformat()})
    assert response.json()["count"] == 2 * 2 * 168


def test_bad_filters_are_400s_with_a_message(forecasts: dict[str, Sensor]) -> None:
    response = APIClient().get("/api/v1/forecasts/", {"metric": "temperature"})
    assert response.status_code == 400
    assert "temperature" in response.json()["message"]
    response = APIClient().get("/api/v1/forecasts/", {"issued_after": "last tuesday"})
    assert response.status_code == 400


def test_daily_rows_of_the_latest_issue(forecasts: dict[str, Sensor]) -> None:
    body = APIClient().get("/api/v1/forecasts/daily/", {"sensor": "001"}).json()
    assert len(body["rows"]) == 7
    assert body["rows"][0].split()[0] == "001"
    assert APIClient().get("/api/v1/forecasts/daily/", {"sensor": "999"}).status_code == 400


def test_models_list_versions_with_their_metrics() -> None:
    ModelVersion.objects.create(
        metric="flow",
        data_start=START,
        data_end=START,
        validation_start=START,
        mae=1.0,
        baseline_mae=2.0,
        status="active",
    )
    body = APIClient().get("/api/v1/models/").json()
    assert body["count"] == 1
    assert body["results"][0]["ratio"] == 0.5
    assert body["results"][0]["status"] == "active"


def test_training_needs_authentication() -> None:
    response = APIClient().post("/api/v1/models/train", {}, format="json")
    assert response.status_code in {401, 403}
    assert not TrainingRun.objects.exists()


def test_authenticated_training_request_queues_a_run(
    token_client: APIClient, clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = token_client.post("/api/v1/models/train", {"metrics": ["pressure"], "epochs": 3}, format="json")
    assert response.status_code == 202, response.json()
    run = TrainingRun.objects.get(pk=response.json()["id"])
    assert (run.metrics, run.epochs, run.status, run.requested_by) == (["pressure"], 3, "queued", "operator")
    assert clean_redis.llen("training") == 1  # on the training queue, by name prefix
    assert token_client.get(f"/api/v1/training-runs/{run.pk}/").json()["status"] == "queued"


def test_training_request_with_a_bad_metric_is_a_400(token_client: APIClient) -> None:
    response = token_client.post("/api/v1/models/train", {"metrics": ["temperature"]}, format="json")
    assert response.status_code == 400
    assert "temperature" in response.json()["message"]
