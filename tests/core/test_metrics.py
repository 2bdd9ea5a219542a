"""/metrics aggregates every process: a counter incremented in a worker's pool process shows on the web."""

from __future__ import annotations

from collections.abc import Callable

import redis
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from core.celery import app
from tests.conftest import ChildProcess


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_worker_task_counter_and_queue_lengths_show_on_metrics(
    celery_worker: Callable[..., ChildProcess], clean_redis: redis.Redis
) -> None:
    celery_worker(queues="default")
    for value in range(3):
        assert app.send_task("pipewatch_test.echo", args=[value]).get(timeout=30) == value
    clean_redis.lpush("ingest", "waiting-1", "waiting-2")  # two messages nobody consumes

    response = Client().get("/metrics")
    assert response.status_code == 200
    found = samples(response.content.decode())
    task = (("state", "success"), ("task", "pipewatch_test.echo"))
    assert found[("pipewatch_celery_tasks_total", task)] >= 3
    assert found[("pipewatch_celery_task_runtime_seconds_count", (("task", "pipewatch_test.echo"),))] >= 3
    assert found[("pipewatch_celery_queue_length", (("queue", "ingest"),))] == 2


def test_a_killed_process_live_gauge_stops_counting() -> None:
    """A process SIGKILLed mid-task never says it exited: its livesum gauge must not stay on /metrics."""
    import signal
    import subprocess
    import sys

    script = (
        "from prometheus_client import Gauge; import sys\n"
        "Gauge('pipewatch_test_busy', 'test', multiprocess_mode='livesum').inc()\n"
        "print('set', flush=True); sys.stdin.readline()\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "set"
        assert gauge_value("pipewatch_test_busy") == 1.0
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert gauge_value("pipewatch_test_busy") == 0.0
    finally:
        child.kill()


def gauge_value(name: str) -> float:
    body = Client().get("/metrics").content.decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    )
