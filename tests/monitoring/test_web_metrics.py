"""Web request/latency/DB metrics from the middleware, and Celery task freshness from a real worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from core.celery import app
from tests.conftest import ChildProcess, wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metrics() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(Client().get("/metrics").content.decode())


@pytest.mark.django_db
def test_requests_latency_and_queries_are_counted_by_view() -> None:
    client = APIClient()
    client.force_authenticate(User.objects.create_user("operator"))
    before = metrics()
    for _ in range(3):
        assert client.get("/api/v1/metrics/cpu").status_code == 200
    assert client.get("/api/v1/metrics/cpu", {"limit": "0"}).status_code == 400
    assert Client().get("/api/v1/no-such-thing").status_code == 404
    after = metrics()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("pipewatch_http_requests_total", view="metrics-cpu", method="GET", status="200") == 3
    assert delta("pipewatch_http_requests_total", view="metrics-cpu", method="GET", status="400") == 1
    assert delta("pipewatch_http_requests_total", view="<unmatched>", method="GET", status="404") == 1
    assert delta("pipewatch_http_request_duration_seconds_count", view="metrics-cpu", method="GET") == 4
    assert delta("pipewatch_db_queries_total", alias="default") >= 3  # each 200 reads the samples table
    assert delta("pipewatch_db_query_duration_seconds_count", alias="default") >= 3
    # both scrapes see themselves in progress (or neither does): every answered request was taken off again
    assert after[("pipewatch_http_requests_in_progress", ())] == before[("pipewatch_http_requests_in_progress", ())]


def test_a_task_success_records_its_time_for_alerts_and_health(
    celery_worker: Callable[..., ChildProcess],
) -> None:
    celery_worker(queues="default")
    result = app.send_task("monitoring.purge_host_samples")  # routed to the default queue by its name
    assert result.get(timeout=60) == 0

    key = ("pipewatch_celery_task_last_success_timestamp_seconds", (("task", "monitoring.purge_host_samples"),))
    # task_success is signalled just after the result is stored: the client may see the result first.
    found = wait_for(lambda: (scraped := metrics()).get(key) and scraped, timeout=10, what="the success gauge")
    assert isinstance(found, dict)
    stamp = found[key]
    assert stamp == pytest.approx(time.time(), abs=60)
    published = found[
        ("pipewatch_celery_task_last_published_timestamp_seconds", (("task", "monitoring.purge_host_samples"),))
    ]
    assert published <= stamp
