"""Only one beat sends: a second beat stands by on the Redis lock and takes over when the first stops."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import redis
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from core.redis import BEAT_HEARTBEAT_KEY, BEAT_LOCK_KEY
from tests.conftest import ChildProcess, wait_for

QUEUE = "beat-test"


def start_beat(start_process: Callable[..., ChildProcess]) -> ChildProcess:
    return start_process(
        "beat",
        "-m",
        "celery",
        "-A",
        "core",
        "beat",
        "--loglevel",
        "INFO",
        "--max-interval",
        "1",
        env={"BEAT_LOCK_TTL_SECONDS": "3"},
    )


def sent(client: redis.Redis) -> int:
    """Messages beat has put on the test queue (no worker consumes it)."""
    return int(client.llen(QUEUE))


def test_second_beat_sends_nothing_until_the_first_stops(
    start_process: Callable[..., ChildProcess], clean_redis: redis.Redis
) -> None:
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="beat test", task="pipewatch_test.echo", interval=every_second, queue=QUEUE, args=json.dumps([1])
    )
    first = start_beat(start_process)
    wait_for(lambda: clean_redis.get(BEAT_LOCK_KEY), timeout=60, what="the first beat to take the lock")
    second = start_beat(start_process)
    wait_for(lambda: "standing by" in second.output() or sent(clean_redis) >= 2, timeout=60, what="beat 2 up")

    start, began = sent(clean_redis), time.monotonic()
    time.sleep(8)
    elapsed, count = time.monotonic() - began, sent(clean_redis) - start
    # One sender: about one message a second. Two senders would give about two a second.
    assert 0.5 * elapsed <= count <= elapsed + 2, (count, elapsed)
    assert clean_redis.get(BEAT_HEARTBEAT_KEY) is not None

    first.stop()  # SIGTERM: the lock is released on close, the standby takes over
    taken_over_at = sent(clean_redis)
    wait_for(lambda: sent(clean_redis) >= taken_over_at + 3, timeout=30, what="the standby beat to take over")
    assert "holds the lock" in second.output()
