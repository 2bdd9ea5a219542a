"""API basics: index, auth (anonymous writes refused, tokens accepted), throttling, JSON errors, docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client, override_settings
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from rest_framework.test import APIClient

from tests.conftest import BASE_DIR

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule() -> PeriodicTask:
    return PeriodicTask.objects.create(
        name="api test", task="pipewatch_test.echo", crontab=CrontabSchedule.objects.create(minute="*/5")
    )


def test_index_lists_links() -> None:
    body = Client().get("/").json()
    assert body["name"] == "pipewatch"
    assert body["links"]["docs"].endswith("/api/docs/")
    assert body["links"]["health"].endswith("/api/v1/health")


def test_anonymous_write_is_refused(schedule: PeriodicTask) -> None:
    response = APIClient().patch(f"/api/v1/schedules/{schedule.pk}/", {"enabled": False}, format="json")
    assert response.status_code in {401, 403}
    assert response.json()["message"] == "Authentication credentials were not provided."
    schedule.refresh_from_db()
    assert schedule.enabled is True


def test_token_write_pauses_a_schedule(token_client: APIClient, schedule: PeriodicTask) -> None:
    response = token_client.patch(f"/api/v1/schedules/{schedule.pk}/", {"enabled": False, "task": "x"}, format="json")
    assert response.status_code == 200
    schedule.refresh_from_db()
    assert (schedule.enabled, schedule.task) == (False, "pipewatch_test.echo")  # only `enabled` is writable


def test_throttle_answers_429(token_client: APIClient) -> None:
    with override_settings(API_THROTTLE_USER="3/min"):
        codes = [token_client.get("/api/v1/schedules/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_validation_error_is_readable(token_client: APIClient, schedule: PeriodicTask) -> None:
    response = token_client.patch(f"/api/v1/schedules/{schedule.pk}/", {"enabled": "perhaps"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert body["message"] == "enabled: Must be a valid boolean."


def test_unknown_api_path_is_json_404() -> None:
    response = Client().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_schema_and_docs_are_served() -> None:
    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/health" in schema.json()["paths"]
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/redoc/").status_code == 200


def test_admin_requires_login() -> None:
    response = Client().get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_openapi_schema_is_valid_without_warnings(tmp_path: Path) -> None:
    """Every app's endpoints are documented: drf-spectacular validates the schema and fails on a warning."""
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml")],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
