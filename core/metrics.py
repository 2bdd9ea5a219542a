"""Prometheus metrics shared by every process, and the registry behind `/metrics`.

Every process runs in prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR is set in
settings), so a counter incremented in a Celery prefork child shows on the web process's `/metrics`.
Gauges must therefore name a `multiprocess_mode` ("livesum", "max", "mostrecent", …).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from celery import signals
from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CELERY_TASKS = Counter(
    "pipewatch_celery_tasks_total",
    "Celery tasks finished, by task name and final state.",
    ["task", "state"],
)
CELERY_TASK_RUNTIME = Histogram(
    "pipewatch_celery_task_runtime_seconds",
    "Wall time of Celery task runs, by task name.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)

_started: dict[str, float] = {}


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


@signals.task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    name = getattr(task, "name", "unknown")
    CELERY_TASKS.labels(task=name, state=(state or "UNKNOWN").lower()).inc()
    started = _started.pop(task_id or "", None)
    if started is not None:
        CELERY_TASK_RUNTIME.labels(task=name).observe(time.monotonic() - started)


@signals.task_retry.connect
def _task_retried(request: Any = None, **_: Any) -> None:
    CELERY_TASKS.labels(task=getattr(request, "task", "unknown"), state="retry").inc()


@signals.task_rejected.connect
def _task_rejected(message: Any = None, **_: Any) -> None:
    name = getattr(message, "headers", {}).get("task", "unknown") if message is not None else "unknown"
    CELERY_TASKS.labels(task=name, state="rejected").inc()


def queue_lengths() -> dict[str, int]:
    """Messages waiting in each Celery queue, read from the broker (raises redis.RedisError when it is down)."""
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        return {queue.name: int(client.llen(queue.name)) for queue in settings.CELERY_TASK_QUEUES}
    finally:
        client.close()


class QueueLengthCollector(Collector):
    """Reads the length of every Celery queue from Redis at scrape time (the broker is the truth)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis

        family = GaugeMetricFamily(
            "pipewatch_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        try:
            for name, length in queue_lengths().items():
                family.add_metric([name], float(length))
        except redis.RedisError as exc:
            logger.warning("queue length scrape failed: %s", exc)
            return
        yield family


# A live-mode gauge's file (gauge_livesum_<pid>.db, …) counts only while its process runs.
LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def _counted(path: Path) -> bool:
    """Not an empty file (a process killed at start), nor a live gauge of a process that is gone.

    prometheus-client drops a process's live gauges only when told it exited (gunicorn's child_exit
    does); a SIGKILLed Celery worker's file would otherwise hold e.g. kipris_active_workers at 1 forever.
    Pids are this host's: each container has its own PROMETHEUS_MULTIPROC_DIR.
    """
    if path.stat().st_size == 0:
        return False
    live = LIVE_GAUGE_FILE.fullmatch(path.name)
    return live is None or psutil.pid_exists(int(live.group(1)))


class MultiProcessFilesCollector(Collector):
    """prometheus-client's multiprocess merge, minus empty files and dead processes' live gauges."""

    def collect(self) -> Iterator[Metric]:
        directory = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        files = [str(path) for path in directory.glob("*.db") if _counted(path)]
        yield from MultiProcessCollector.merge(files, accumulate=True)


def start_exporter(port: int) -> None:
    """Serve this host's multiprocess samples on `port` (processes in their own container: workers, beat)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry()
    registry.register(MultiProcessFilesCollector())
    start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104 - scraped from the network
    logger.info("Prometheus exporter on :%d", port)


@signals.worker_init.connect
@signals.beat_init.connect
def _exporter_for_celery(**_: Any) -> None:
    if settings.METRICS_PORT:
        start_exporter(settings.METRICS_PORT)


def render_latest() -> bytes:
    """The exposition text for `/metrics`: all processes' samples plus live queue lengths."""
    registry = CollectorRegistry()
    registry.register(MultiProcessFilesCollector())
    registry.register(QueueLengthCollector())
    return generate_latest(registry)
