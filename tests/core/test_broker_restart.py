"""A restart of the Redis that Celery uses, while the system runs: nothing stops for good, nothing is lost.

A private redis-server (append-only file on, as `make run`'s and compose's) stands in for the broker; the
shared Redis of the machine is never touched. Celery has had bugs where a worker stops consuming after a
Redis restart (the consumer is not re-declared after the reconnect); the first test proves pipewatch's
worker and beat are not affected: a real worker and a real beat keep working across the restart.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery
from django.db import connection
from django.test import override_settings

from sensors.bridge import Bridge
from sensors.outbox import OUTBOX_KEY, queue_frames
from sensors.settings import frame_layout
from tests.conftest import ChildProcess, free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RECOVERY_SECONDS = 60  # the bound for workers and beat to be back after the broker is


class PrivateRedis:
    """A redis-server of the test's own (append-only file on) that the test can restart."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: self._answers(client), timeout=20, what="the private Redis")

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            self.proc.wait(timeout=20)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)  # the outage itself: clients see connection refused meanwhile
        self.start()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def effects(transactional_db: None) -> Iterator[Callable[[], dict[str, int]]]:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_effect (key text PRIMARY KEY, value integer NOT NULL)")

    def rows() -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT key, value FROM test_effect")
            return dict(cursor.fetchall())

    yield rows
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE test_effect")


def tick_schedule() -> None:
    """An operator's periodic task every 2 s (beat sends it; the worker writes one row per run)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every = IntervalSchedule.objects.create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="test tick", task="pipewatch_test.tick", interval=every, queue="default")


def started(process: ChildProcess, line: str) -> bool:
    if process.proc.poll() is not None:
        pytest.fail(f"{process.name} exited:\n{process.output()}")
    return line in process.output()


def test_worker_and_beat_resume_and_no_acks_late_task_is_lost(
    broker: PrivateRedis,
    effects: Callable[[], dict[str, int]],
    start_process: Callable[..., ChildProcess],
    child_env: dict[str, str],
) -> None:
    # a short visibility timeout, so a message whose ack was lost comes back within the test (not in an hour)
    env = {**child_env, "REDIS_URL": broker.url, "BEAT_LOCK_TTL_SECONDS": "6", "CELERY_VISIBILITY_TIMEOUT": "5"}
    tick_schedule()
    worker = start_process(
        "worker", "-m", "celery", "-A", "core", "worker", "--queues", "default", "--concurrency", "1",
        "--include", "tests.celery_tasks", "--loglevel", "INFO", "--without-gossip", "--without-mingle", env=env,
    )  # fmt: skip
    beat = start_process("beat", "-m", "celery", "-A", "core", "beat", "--loglevel", "INFO", env=env)
    wait_for(lambda: started(worker, "ready."), timeout=60, what="the worker")
    wait_for(lambda: started(beat, "beat holds the lock"), timeout=60, what="beat")
    wait_for(lambda: sum(key.startswith("tick") for key in effects()) >= 2, timeout=60, what="two ticks")

    # not the current app: shared tasks sent later in this test process must keep using the project's app
    probe = Celery("probe", broker=broker.url, backend=broker.url, set_as_current=False)
    for n in range(6):  # acks_late tasks queued behind one another on a single-process worker
        probe.send_task("pipewatch_test.slow_upsert", args=[f"batch-{n}", n, 1.0], queue="default")
    wait_for(lambda: "batch-0" in effects(), timeout=60, what="the batch to start")

    broker.restart(down_seconds=5)
    restarted = time.monotonic()
    ticks_before = {key for key in effects() if key.startswith("tick")}

    # Beat sends again and the worker consumes again (new ticks arrive), within the bound.
    wait_for(lambda: {key for key in effects() if key.startswith("tick")} - ticks_before, timeout=RECOVERY_SECONDS,
             interval=0.5, what="a tick sent and run after the restart")  # fmt: skip
    assert time.monotonic() - restarted < RECOVERY_SECONDS
    # Every queued or running acks_late task still runs: none was lost with the connection.
    wait_for(lambda: all(f"batch-{n}" in effects() for n in range(6)), timeout=90, what="all six batch tasks")
    assert {key: value for key, value in effects().items() if key.startswith("batch")} == {
        f"batch-{n}": n for n in range(6)
    }
    # A task sent after the restart is consumed too (the worker re-declared its consumer).
    probe.send_task("pipewatch_test.slow_upsert", args=["after", 99, 0.0], queue="default")
    wait_for(lambda: effects().get("after") == 99, timeout=30, what="a task sent after the restart")
    # The task that was running at the restart lost its ack with the connection: Redis hands it out again
    # after the visibility timeout and it runs once more, idempotently; nothing stays unacknowledged.
    broker_client = redis.Redis.from_url(broker.url)
    wait_for(lambda: broker_client.hlen("unacked") == 0, timeout=60, interval=1, what="no unacknowledged message")
    assert {key: value for key, value in effects().items() if key.startswith("batch")} == {
        f"batch-{n}": n for n in range(6)
    }


def test_the_bridge_outbox_and_the_token_bucket_recover(broker: PrivateRedis, tmp_path: Path) -> None:
    from ingest.kipris.guards import TokenBucket

    with override_settings(REDIS_URL=broker.url):
        bridge = Bridge("loop://", layout=frame_layout(), spool_dir=tmp_path, name="loop")
        assert bridge.ensure_port()
        bucket = TokenBucket(rate=100, burst=5)
        assert bucket.try_reserve() == 0  # the script is loaded into this server
        queue_frames([b"$E,1*00\r\n"])

        broker.stop()
        queue_attempt_failed = False
        try:
            queue_frames([b"$E,2*00\r\n"])
        except redis.RedisError:
            queue_attempt_failed = True  # the caller (detection, the server frame task) retries it
        assert queue_attempt_failed
        assert bridge.outbox_unit() == 0  # Redis down: the bridge backs off instead of failing
        with pytest.raises(redis.RedisError):
            bucket.try_reserve()

        broker.start()
        assert redis.Redis.from_url(broker.url).llen(OUTBOX_KEY) == 1  # the queued frame survived the restart
        # the bridge's backoff ends and it delivers the frame; the bucket's script is re-loaded by redis-py
        wait_for(lambda: bridge.outbox_unit() == 1, timeout=30, interval=0.2, what="the bridge to send again")
        assert bridge.port is not None
        assert bridge.port.read(4096) == b"$E,1*00\r\n"
        assert bucket.try_reserve() == 0
