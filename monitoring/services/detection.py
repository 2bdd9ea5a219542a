"""Anomaly detection on host metrics, with anomaly's generic detectors and event rules.

Every minute, for every active host:
1. the database averages the host's samples into 1-minute buckets over the last
   MONITORING_DETECT_HISTORY_MINUTES (one query per host, all metrics at once);
2. the streaming detector (MONITORING_DETECT_METHOD, the likelihood by default) is fed each metric's
   buckets in order; the score of the minute under evaluation uses only the minutes up to it; it fires
   when the score reaches the detector's threshold and the value moved at least MIN_CHANGE from the
   median of the hour before;
3. `anomaly.events.observe` opens, extends or resolves the (host, metric, method) event and notifies,
   under the same rules as for sensors.
Replaying the whole window each run keeps the task stateless: any worker may run it, and running a
minute twice gives the same score and changes no event (observe ignores a minute already counted).
A minute without samples is not evaluated: an agent that stopped is the host_agents health check's job.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Avg, F
from django.utils import timezone

from anomaly import events
from anomaly.detectors import make_detector

from ..models import Host, HostSample
from .queries import TimeBucket

logger = logging.getLogger(__name__)

# metric name on the event -> how to read it from a 1-minute bucket
HOST_METRICS = {
    "cpu_percent": ("cpu_percent",),
    "memory_percent": ("memory_percent",),
    "disk_percent": ("disk_percent",),
    "network_bytes_per_second": ("net_sent_bytes_per_second", "net_recv_bytes_per_second"),
}
# The smallest departure from the last hour's median worth an operator's attention. Host series are often
# nearly flat (disk usage, idle memory), where a robust score calls any 0.1 % wiggle an outlier; an event
# needs both a high score and a change of at least this size.
MIN_CHANGE = {
    "cpu_percent": 10.0,
    "memory_percent": 5.0,
    "disk_percent": 2.0,
    "network_bytes_per_second": 100_000.0,
}
BASELINE_MINUTES = 60


@dataclass(frozen=True)
class Evaluation:
    host: str
    metric: str
    minute: datetime
    value: float
    baseline: float
    score: float
    fired: bool


def minute_buckets(host: Host, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """1-minute averages of every detected column, oldest first, for [start, end)."""
    columns = sorted({column for parts in HOST_METRICS.values() for column in parts})
    return list(
        HostSample.objects.filter(host=host, ts__gte=start, ts__lt=end)
        .annotate(minute=TimeBucket("ts", 60))
        .values("minute")
        .annotate(**{column: Avg(F(column)) for column in columns})
        .order_by("minute")
    )


def evaluate_host(host: Host, minute: datetime, method: str) -> list[Evaluation]:
    """Score `minute` for each metric of one host (nothing when the host has no sample in that minute)."""
    start = minute - timedelta(minutes=settings.MONITORING_DETECT_HISTORY_MINUTES)
    buckets = minute_buckets(host, start, minute + timedelta(minutes=1))
    if not buckets or buckets[-1]["minute"] != minute:
        return []
    evaluations = []
    for metric, parts in HOST_METRICS.items():
        detector = make_detector(method)
        values = [sum(float(bucket[part]) for part in parts) for bucket in buckets]
        score = math.nan
        for bucket, value in zip(buckets, values, strict=True):
            score = detector.update(bucket["minute"], value)
        history = values[-BASELINE_MINUTES - 1 : -1]
        baseline = float(np.median(history)) if history else values[-1]
        big_enough = abs(values[-1] - baseline) >= MIN_CHANGE[metric]
        fired = not math.isnan(score) and score >= detector.threshold and big_enough
        evaluations.append(Evaluation(host.name, metric, minute, values[-1], baseline, score, fired))
    return evaluations


def detect_host_minute(minute: datetime | None = None, method: str | None = None) -> list[Evaluation]:
    """Evaluate one minute (default: the last complete one) for every active host; apply events."""
    method = method or settings.MONITORING_DETECT_METHOD
    if minute is None:
        minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    evaluations: list[Evaluation] = []
    for host in Host.objects.filter(active=True):
        evaluations.extend(evaluate_host(host, minute, method))
    observations = []
    for evaluation in evaluations:
        score = 0.0 if math.isnan(evaluation.score) else evaluation.score
        evidence = {"value": evaluation.value, "baseline_median": evaluation.baseline, "score": score,
                    "minute": minute.isoformat()}  # fmt: skip
        observations.append(
            events.Observation(evaluation.host, evaluation.metric, method, evaluation.fired, score, evidence)
        )
    events.observe_many(source="host", at=minute, observations=observations)
    fired = [f"{e.host}/{e.metric}" for e in evaluations if e.fired]
    if fired:
        logger.info("host anomalies at %s: %s", minute.isoformat(), ", ".join(fired))
    return evaluations
