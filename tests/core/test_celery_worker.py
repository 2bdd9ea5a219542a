"""A real worker on the real Redis: routing per queue, JSON round trips, acks_late redelivery."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator

import pytest
import redis
from django.db import connection

from core.celery import app, route_by_prefix
from tests.conftest import ChildProcess, wait_for

QUEUES = ["default", "detect", "ingest", "training"]


def test_routes_by_name_prefix() -> None:
    assert route_by_prefix("anomaly.detect_minute", (), {}, {}) == {"queue": "detect"}
    assert route_by_prefix("ingest.harvest_page", (), {}, {}) == {"queue": "ingest"}
    assert route_by_prefix("forecasting.train", (), {}, {}) == {"queue": "training"}
    assert route_by_prefix("forecasting.predict_hourly", (), {}, {}) is None  # -> default queue
    assert app.amqp.router.route({}, "anomaly.detect_minute")["queue"].name == "detect"
    assert app.amqp.router.route({}, "sensors.purge_old_readings")["queue"].name == "default"


@pytest.mark.parametrize("queue", QUEUES)
def test_round_trip_on_every_queue(celery_worker: Callable[..., ChildProcess], queue: str) -> None:
    celery_worker(queues=queue)
    payload = {"sensor": "001", "at": "2026-11-22T09:00:00+09:00", "values": [1.5, None]}
    result = app.send_task("pipewatch_test.echo", args=[payload], queue=queue)
    assert result.get(timeout=30) == payload


def test_worker_refuses_pickled_messages(celery_worker: Callable[..., ChildProcess]) -> None:
    worker = celery_worker(queues="default")
    app.send_task("pipewatch_test.echo", args=[1], serializer="pickle")
    wait_for(lambda: "Refusing to deserialize" in worker.output(), what="the worker to refuse pickle")


@pytest.fixture
def effect_table(transactional_db: None) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_effect (key text PRIMARY KEY, value integer NOT NULL)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE test_effect")


def effect_rows(key: str) -> list[tuple[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, value FROM test_effect WHERE key = %s", [key])
        return list(cursor.fetchall())


def test_pool_process_killed_mid_task_reruns_and_applies_once(
    celery_worker: Callable[..., ChildProcess], effect_table: None, clean_redis: redis.Redis
) -> None:
    worker = celery_worker(queues="default", concurrency=1)
    result = app.send_task("pipewatch_test.slow_upsert", args=["k1", 7, 3.0])
    wait_for(lambda: clean_redis.get("attempts:k1") == b"1", what="the first attempt to start")
    (pool_process,) = worker.children()
    pool_process.send_signal(signal.SIGKILL)

    # reject_on_worker_lost requeues the message; the worker's new pool process runs it to the end.
    wait_for(lambda: effect_rows("k1"), timeout=60, what="the task's effect")
    assert clean_redis.get("attempts:k1") == b"2"
    assert effect_rows("k1") == [("k1", 7)]
    # the lost attempt was requeued, not recorded as a failure: the task's one result is the rerun's success
    assert result.get(timeout=30) is None
    assert result.state == "SUCCESS"
    assert "WorkerLostError" in worker.output()


def test_whole_worker_killed_mid_task_runs_again_on_a_new_worker(
    celery_worker: Callable[..., ChildProcess], effect_table: None, clean_redis: redis.Redis
) -> None:
    # A short visibility timeout so the test need not wait an hour for Redis to redeliver.
    short = {"CELERY_VISIBILITY_TIMEOUT": "3"}
    first = celery_worker(queues="default", concurrency=1, env=short)
    app.send_task("pipewatch_test.slow_upsert", args=["k2", 11, 4.0])
    wait_for(lambda: clean_redis.get("attempts:k2") == b"1", what="the first attempt to start")
    first.stop(sig=signal.SIGKILL)  # main process and pool together: nothing acks, nothing requeues
    assert effect_rows("k2") == []

    celery_worker(queues="default", concurrency=1, env=short)
    wait_for(lambda: effect_rows("k2"), timeout=90, what="the new worker to run the unacked task")
    assert clean_redis.get("attempts:k2") == b"2"
    assert effect_rows("k2") == [("k2", 11)]
