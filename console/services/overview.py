"""What the overview shows: health, queues, the pipeline's last steps, open events, sensors, KIPRIS, hosts.

The health checks (core.health.run_all: the worker ping can take a second) are a separate live region the
page loads after it renders; everything else here is a handful of indexed queries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.db.models import Max
from django.utils import timezone

from anomaly.models import DetectionRun, Severity, Source
from core import health
from core.metrics import queue_lengths
from forecasting.models import Forecast
from ingest.models import HarvestRun, RunStatus
from monitoring.services import queries as host_queries
from sensors.models import Reading, Sensor

from .charts import Chart
from .events import open_counts
from .harvest import Guards, guards
from .hosts import host_charts
from .sensors import silent_after

logger = logging.getLogger(__name__)

SPARK_SPAN = timedelta(hours=1)


def health_checks() -> dict[str, dict[str, Any]]:
    """Every registered check: name -> ok, detail, ms, cached."""
    return health.run_all()


def queues() -> dict[str, int] | None:
    """Messages waiting per Celery queue; None when the broker cannot be read."""
    try:
        return queue_lengths()
    except redis.RedisError as exc:
        logger.warning("queue lengths unavailable: %s", exc)
        return None


@dataclass
class Overview:
    last_detection: DetectionRun | None
    last_forecast: datetime | None
    events: dict[str, dict[str, int]]
    severities: list[tuple[str, str]]
    sources: list[tuple[str, str]]
    sensors_active: int
    sensors_reporting: int
    silent_minutes: int
    harvest_under_way: int
    harvest_failed: int
    last_harvest: HarvestRun | None
    kipris: Guards
    host: str | None
    sparks: list[Chart]
    queues: dict[str, int] | None


def overview(now: datetime | None = None) -> Overview:
    now = now or timezone.now()
    reporting = (
        Reading.objects.filter(ts__gte=now - silent_after(), sensor__active=True)
        .order_by()
        .values("sensor_id")
        .distinct()
        .count()
    )
    hosts = host_queries.hosts()
    host = next((row["name"] for row in hosts if row["reporting"]), hosts[0]["name"] if hosts else None)
    sparks = host_charts(host, SPARK_SPAN, now, kind="spark", names=("cpu", "memory")) if host else []
    return Overview(
        last_detection=DetectionRun.objects.order_by("-minute").first(),
        last_forecast=Forecast.objects.aggregate(latest=Max("issued_at"))["latest"],
        events=open_counts(),
        severities=list(reversed(Severity.choices)),
        sources=list(Source.choices),
        sensors_active=Sensor.objects.filter(active=True).count(),
        sensors_reporting=reporting,
        silent_minutes=int(silent_after().total_seconds() // 60),
        harvest_under_way=HarvestRun.objects.filter(status__in=[RunStatus.QUEUED, RunStatus.RUNNING]).count(),
        harvest_failed=HarvestRun.objects.filter(
            status=RunStatus.FAILED, created_at__gte=now - timedelta(days=7)
        ).count(),
        last_harvest=HarvestRun.objects.select_related("organization").order_by("-created_at", "-id").first(),
        kipris=guards(),
        host=host,
        sparks=sparks,
        queues=queues(),
    )
