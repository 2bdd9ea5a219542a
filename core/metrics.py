"""Prometheus metrics shared by every process, and the registry behind `/metrics`.

Every process runs in prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR is set in
settings), so a counter incremented in a Celery prefork child shows on the web process's `/metrics`.
Gauges must therefore name a `multiprocess_mode` ("livesum", "max", "mostrecent", …).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class QueueLengthCollector(Collector):
    """Reads the length of every Celery queue from Redis at scrape time (the broker is the truth)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis

        family = GaugeMetricFamily(
            "pipewatch_celery_queue_length", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        try:
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
            for queue in settings.CELERY_TASK_QUEUES:
                family.add_metric([queue.name], float(client.llen(queue.name)))
        except redis.RedisError as exc:
            logger.warning("queue length scrape failed: %s", exc)
            return
        yield family


class MultiProcessFilesCollector(Collector):
    """prometheus-client's multiprocess merge, minus the empty files a process killed at start leaves."""

    def collect(self) -> Iterator[Metric]:
        directory = Path(settings.PROMETHEUS_MULTIPROC_DIR)
        files = [str(path) for path in directory.glob("*.db") if path.stat().st_size > 0]
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
