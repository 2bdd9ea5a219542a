"""Capacity forecasts: when will a series cross its limit?

For host disk (the fullest mount) and memory, and for every custom series with a `limit`:
1. the series is averaged by the database into about BUCKETS_PER_WINDOW buckets over each window of
   AIOPS_CAPACITY_WINDOWS (default 6 h and 7 d: the short window sees a runaway fill — a log gone
   wild — within the hour, the long one sees steady growth that a day's cycle hides in 6 h);
2. the robust trend is the Theil-Sen line of the buckets (a backup spike or a cleanup does not tilt
   it), with Mann-Kendall saying whether the rise is real;
3. seconds to the limit = (limit - trend now) / slope when the slope is significantly positive, else
   none (+Inf on the gauge `pipewatch_capacity_seconds_to_limit`);
4. the earliest crossing over the windows opens a warning event (method `capacity`) when it is less than
   AIOPS_CAPACITY_WARN_SECONDS away, and resolves it at the first run where no window predicts a crossing
   within that time (the trend turned, or flattened).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Avg, Max, QuerySet
from django.utils import timezone

from anomaly import events
from anomaly.models import Source
from monitoring.models import Host, HostSample
from monitoring.services.queries import TimeBucket

from ..metrics import CAPACITY_SECONDS_TO_LIMIT
from ..models import CapacityForecast, CapacityKind, MetricPoint, MetricSeries
from .analyze import mann_kendall, theil_sen

logger = logging.getLogger(__name__)

BUCKETS_PER_WINDOW = 360  # 6 h -> 1-minute buckets, 7 d -> 28-minute buckets: Theil-Sen stays ~10 ms
MIN_POINTS = 10
METHOD = "capacity"
WINDOW = re.compile(r"^(\d+)([mhd])$")
UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def window_seconds(window: str) -> int:
    match = WINDOW.match(window)
    if not match:
        raise ValueError(f"capacity window {window!r} must look like 30m, 6h or 7d")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class Estimate:
    window: str
    points: int
    current: float
    slope_per_second: float
    seconds_to_limit: float | None  # None: the trend does not reach the limit


def estimate(seconds: np.ndarray, values: np.ndarray, limit: float, now: float, window: str) -> Estimate | None:
    """Steps 2-3 for one window (None when there are too few points)."""
    if values.size < MIN_POINTS:
        return None
    trend = theil_sen(seconds, values)
    slope = trend["slope_per_second"]
    current = trend["intercept"] + slope * (now - seconds[0])
    rising = mann_kendall(seconds, values)["trend"] == "increasing" and slope > 0
    if current >= limit:
        eta: float | None = 0.0
    elif rising:
        eta = (limit - current) / slope
    else:
        eta = None
    return Estimate(window, int(values.size), float(current), float(slope), eta)


def _bucketed(queryset: QuerySet[Any], column: str, start: datetime, bucket: int) -> tuple[np.ndarray, np.ndarray]:
    rows = (
        queryset.filter(ts__gte=start)
        .annotate(bucket=TimeBucket("ts", bucket))
        .values("bucket")
        .annotate(value=Avg(column))
        .order_by("bucket")
        .values_list("bucket", "value")
    )
    data = [(ts.timestamp(), float(value)) for ts, value in rows if value is not None]
    if not data:
        return np.empty(0), np.empty(0)
    array = np.array(data)
    return array[:, 0], array[:, 1]


@dataclass(frozen=True)
class Target:
    """One series with a limit: where its points are and what its events are called."""

    kind: str
    subject: str
    series: str
    limit: float
    queryset: QuerySet[Any]
    column: str
    source: str
    attributes: dict[str, str]


def targets() -> list[Target]:
    found = []
    for host in Host.objects.filter(active=True):
        samples = HostSample.objects.filter(host=host)
        attrs = {"host": host.name}
        for kind, column, limit in (
            (CapacityKind.HOST_DISK, "disk_percent", settings.AIOPS_CAPACITY_DISK_LIMIT),
            (CapacityKind.HOST_MEMORY, "memory_percent", settings.AIOPS_CAPACITY_MEMORY_LIMIT),
        ):
            found.append(Target(kind, host.name, column, limit, samples, column, Source.HOST, attrs))
    for series in MetricSeries.objects.filter(limit__isnull=False):
        subject = f"{series.name}{{{series.labels_key}}}"[:200]
        attrs = {key: value for key, value in series.labels.items() if key in ("host", "site", "group", "org")}
        found.append(Target(CapacityKind.METRIC, subject, series.name, float(series.limit or 0),
                            MetricPoint.objects.filter(series=series), "value", Source.METRIC, attrs))  # fmt: skip
    return found


def forecast_target(target: Target, now: datetime) -> list[Estimate]:
    estimates = []
    for window in settings.AIOPS_CAPACITY_WINDOWS:
        span = window_seconds(window)
        bucket = max(60, span // BUCKETS_PER_WINDOW)
        seconds, values = _bucketed(target.queryset, target.column, now - timedelta(seconds=span), bucket)
        found = estimate(seconds, values, target.limit, now.timestamp(), window)
        if found is not None:
            estimates.append(found)
    return estimates


def run_capacity(now: datetime | None = None) -> list[dict[str, Any]]:
    """Steps 1-4 for every target; returns one summary per target."""
    now = now or timezone.now()
    horizon = settings.AIOPS_CAPACITY_WARN_SECONDS
    summaries = []
    for target in targets():
        if not target.queryset.filter(ts__gte=now - timedelta(days=8)).aggregate(latest=Max("ts"))["latest"]:
            continue
        estimates = forecast_target(target, now)
        for found in estimates:
            CapacityForecast.objects.update_or_create(
                kind=target.kind, subject=target.subject, window=found.window,
                defaults={"limit": target.limit, "current": found.current, "slope_per_second": found.slope_per_second,
                          "seconds_to_limit": found.seconds_to_limit, "points": found.points, "computed_at": now},
            )  # fmt: skip
            gauge = math.inf if found.seconds_to_limit is None else found.seconds_to_limit
            CAPACITY_SECONDS_TO_LIMIT.labels(
                kind=target.kind, subject=target.subject, series=target.series, window=found.window
            ).set(gauge)
        crossing = [e for e in estimates if e.seconds_to_limit is not None]
        earliest = min(crossing, key=lambda e: e.seconds_to_limit or 0.0) if crossing else None
        fired = bool(earliest is not None and (earliest.seconds_to_limit or 0.0) < horizon)
        evidence: dict[str, Any] = {"limit": target.limit, "attributes": target.attributes,
                                    "windows": {e.window: e.seconds_to_limit for e in estimates}}  # fmt: skip
        if earliest is not None:
            crossing_at = now + timedelta(seconds=earliest.seconds_to_limit or 0.0)
            evidence |= {"window": earliest.window, "seconds_to_limit": earliest.seconds_to_limit,
                         "current": earliest.current, "crosses_at": crossing_at.isoformat()}  # fmt: skip
        events.observe(
            source=target.source, subject=target.subject, metric=target.series[:64], method=METHOD,
            at=now.replace(second=0, microsecond=0), fired=fired,
            score=0.0 if earliest is None else horizon / max(earliest.seconds_to_limit or 1.0, 1.0),
            evidence=evidence, severity="warning", clean_minutes=0,
        )  # fmt: skip
        summaries.append({"kind": target.kind, "subject": target.subject, "fired": fired, **evidence})
    return summaries
