"""The host-metrics service's contract: /docs and /redoc, JSON 404/405 under /api/ in every mode, schedules."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
CSRF = re.compile(r'"X-CSRFTOKEN"\] = "\w+"')


@pytest.mark.parametrize(
    ("alias", "page"), [("/docs", "/api/docs/"), ("/redoc", "/api/redoc/"), ("/docs/", "/api/docs/")]
)
def test_docs_aliases_serve_the_same_pages(alias: str, page: str) -> None:
    client = Client()
    served, original = client.get(alias), client.get(page)
    assert served.status_code == original.status_code == 200
    # Identical but for the per-request CSRF token Swagger UI embeds.
    assert CSRF.sub("", served.content.decode()) == CSRF.sub("", original.content.decode())


UNKNOWN = ["/api/nothing", "/api/v1/no-such-thing/", "/api/v1/sensors/abcd/", "/api/v2/metrics/current", "/api/"]


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("path", UNKNOWN)
def test_unknown_api_paths_are_json_404_in_every_mode(debug: bool, path: str) -> None:
    with override_settings(DEBUG=debug):
        response = Client().get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "not_found", "message": f"No such path: {path}"}


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(("method", "path"), [("delete", "/api/v1/health"), ("put", "/api/schema/")])
def test_wrong_methods_are_json_405_in_every_mode(debug: bool, method: str, path: str) -> None:
    with override_settings(DEBUG=debug):
        response = getattr(Client(), method)(path)
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_pages_outside_the_api_keep_django_s_html_404() -> None:
    response = Client().get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_schedules_show_the_crontab_as_fields_and_a_human_string(token_client: APIClient) -> None:
    crontab = CrontabSchedule.objects.create(minute="30", hour="2", timezone="Asia/Seoul")
    every = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="a cron", task="pipewatch_test.echo", crontab=crontab)
    PeriodicTask.objects.create(name="b interval", task="pipewatch_test.echo", interval=every)
    listed = {row["name"]: row for row in token_client.get("/api/v1/schedules/", {"limit": 1000}).json()["results"]}
    cron, interval = listed["a cron"], listed["b interval"]
    assert cron["crontab"] == {
        "minute": "30",
        "hour": "2",
        "day_of_week": "*",
        "day_of_month": "*",
        "month_of_year": "*",
        "timezone": "Asia/Seoul",
    }
    assert cron["schedule"] == "At 02:30 AM Asia/Seoul"
    assert interval["crontab"] is None
    assert interval["schedule"] == "every 10 seconds"
