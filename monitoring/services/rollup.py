"""The hourly host roll-up (HostHour): mean and max of every scalar column per host and hour.

`refresh` runs from beat every hour. Each run re-aggregates from the hour the previous run reached minus
MONITORING_ROLLUP_LATE_HOURS (samples an agent sends late, from its in-memory queue after a database
outage, are picked up within that margin) up to the last complete hour, or every stored sample on the
first run. Upserts on (host, hour): re-running changes nothing. Hours are aggregated by the same database
expressions as the API's raw buckets (queries.TimeBucket, Avg, Max), so a rolled-up hour is the raw hour's
answer. The reads are in queries (`bucket_rows`, `series_rows`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from core.retention import delete_in_batches

from ..models import HostHour, HostSample
from .queries import AGGREGATES, HOUR, SCALAR_COLUMNS, TimeBucket, floor_to

logger = logging.getLogger(__name__)

# Host-hours per INSERT: a run writes (margin + 1) x hosts rows; the first one up to a week of hours per host.
UPSERT_BATCH = 1000
FIELDS = [f"{column}_{agg}" for column in sorted(SCALAR_COLUMNS) for agg in AGGREGATES]


def refresh(until: datetime | None = None, since: datetime | None = None) -> int:
    """Roll up the complete hours before `until` (default: now) that may have changed since the last run,
    or every hour from `since` (a rebuild after an outage longer than the margin); returns hours written."""
    until = floor_to(until or timezone.now(), HOUR)
    if since is None:
        reached = HostHour.objects.aggregate(last=Max("hour"))["last"]
        if reached is not None:
            since = reached + timedelta(hours=1 - settings.MONITORING_ROLLUP_LATE_HOURS)
        elif (since := HostSample.objects.order_by("ts").values_list("ts", flat=True).first()) is None:
            return 0
    since = floor_to(since, HOUR)
    rows = (
        HostSample.objects.filter(ts__gte=since, ts__lt=until)
        .annotate(hour=TimeBucket("ts", HOUR))
        .values("host_id", "hour")
        .annotate(
            samples=Count("id"),
            **{
                f"{column}_{agg}": aggregate(column)
                for column in SCALAR_COLUMNS
                for agg, aggregate in AGGREGATES.items()
            },
        )
        .order_by()
    )
    hours = [HostHour(**row) for row in rows]
    HostHour.objects.bulk_create(
        hours,
        batch_size=UPSERT_BATCH,
        update_conflicts=True,
        unique_fields=["host", "hour"],
        update_fields=["samples", *FIELDS],
    )
    logger.info("host roll-up: %d host-hours in [%s, %s)", len(hours), since.isoformat(), until.isoformat())
    return len(hours)


def purge(now: datetime | None = None) -> int:
    """Delete the hours older than MONITORING_ROLLUP_RETENTION_DAYS. Idempotent."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MONITORING_ROLLUP_RETENTION_DAYS)
    hours = HostHour.objects.filter(hour__lt=cutoff)
    deleted = delete_in_batches(hours, batch_size=settings.MONITORING_PURGE_BATCH)[0]
    if deleted:
        logger.info("purged %d host-hours older than %s", deleted, cutoff.isoformat())
    return deleted
