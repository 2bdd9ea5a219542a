"""Night flow: 10-minute mean flows during the night (22:00-05:00 local) and each night's summary.

`store_night_flow` upserts the blocks of the last hour (late readings are folded in on the next run) and,
once a night is over, its NightMinimum: the lowest block mean, the baseline from the newest criteria, and
the streak of consecutive nights above baseline x (1 + margin) — what the night method reads each minute.
Both steps are idempotent upserts, safe to re-run.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Min
from django.utils import timezone

from sensors.models import Reading

from ..criteria import MIN_BLOCK_SAMPLES, NIGHT_END_HOUR, NIGHT_START_HOUR
from ..models import Criteria, NightFlow, NightMinimum, SensorMethodSettings

logger = logging.getLogger(__name__)

BLOCK = timedelta(minutes=10)
BLOCKS_PER_RUN = 6  # re-aggregate the last hour, so readings that arrived late are counted


def night_of(moment: datetime) -> date | None:
    """The evening the night containing `moment` began, or None outside 22:00-05:00 local."""
    local = timezone.localtime(moment)
    if NIGHT_END_HOUR <= local.hour < NIGHT_START_HOUR:
        return None
    return (local - timedelta(hours=NIGHT_END_HOUR)).date()


def last_complete_night(moment: datetime) -> date:
    """The latest night that had ended (05:00 local) at `moment`."""
    return (timezone.localtime(moment) - timedelta(hours=NIGHT_END_HOUR)).date() - timedelta(days=1)


def block_floor(moment: datetime) -> datetime:
    return moment.replace(minute=moment.minute - moment.minute % 10, second=0, microsecond=0)


def store_blocks(now: datetime) -> int:
    """Upsert the 10-minute night means of the last BLOCKS_PER_RUN complete blocks; return rows written."""
    latest = block_floor(now) - BLOCK
    written = 0
    for index in range(BLOCKS_PER_RUN):
        start = latest - index * BLOCK
        night = night_of(start)
        if night is None:
            continue
        means = (
            Reading.objects.filter(ts__gte=start, ts__lt=start + BLOCK)
            .values("sensor_id")
            .annotate(mean=Avg("flow"), samples=Count("id"))
            .order_by()
        )
        rows = [
            NightFlow(
                sensor_id=row["sensor_id"], start=start, night=night, mean_flow=row["mean"], samples=row["samples"]
            )
            for row in means
        ]
        NightFlow.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["sensor", "start"],
            update_fields=["mean_flow", "samples", "night"],
            batch_size=5000,
        )
        written += len(rows)
    return written


def summarise_night(night: date) -> int:
    """Upsert every sensor's NightMinimum for `night` (vectorised over sensors); return rows written."""
    minima = list(
        NightFlow.objects.filter(night=night, samples__gte=MIN_BLOCK_SAMPLES)
        .values("sensor_id")
        .annotate(min_flow=Min("mean_flow"), blocks=Count("id"))
        .order_by("sensor_id")
    )
    if not minima:
        return 0
    sensor_ids = np.array([row["sensor_id"] for row in minima])
    min_flow = np.array([row["min_flow"] for row in minima], dtype=float)
    # the baseline is the same on every hour's row of a version: read one slot, newest version wins
    baselines = dict(
        Criteria.objects.filter(
            sensor_id__in=sensor_ids.tolist(), metric="flow", hour=0, weekend=False, night_baseline__isnull=False
        )
        .order_by("sensor_id", "version_id")
        .values_list("sensor_id", "night_baseline")
    )
    margins = dict(
        SensorMethodSettings.objects.filter(night_margin__isnull=False).values_list("sensor_id", "night_margin")
    )
    baseline = np.array([baselines.get(sensor, np.nan) for sensor in sensor_ids], dtype=float)
    margin = np.array([margins.get(sensor, settings.ANOMALY_NIGHT_MARGIN) for sensor in sensor_ids], dtype=float)
    exceeded = ~np.isnan(baseline) & (min_flow > baseline * (1 + margin))
    previous = dict(
        NightMinimum.objects.filter(night=night - timedelta(days=1), sensor_id__in=sensor_ids.tolist()).values_list(
            "sensor_id", "streak"
        )
    )
    streak = np.where(exceeded, np.array([previous.get(sensor, 0) for sensor in sensor_ids]) + 1, 0)
    rows = [
        NightMinimum(
            sensor_id=int(sensor),
            night=night,
            min_flow=float(flow),
            baseline=None if np.isnan(base) else float(base),
            exceeded=bool(over),
            streak=int(count),
            blocks=int(row["blocks"]),
        )
        for sensor, flow, base, over, count, row in zip(
            sensor_ids, min_flow, baseline, exceeded, streak, minima, strict=True
        )
    ]
    NightMinimum.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["sensor", "night"],
        update_fields=["min_flow", "baseline", "exceeded", "streak", "blocks"],
        batch_size=5000,
    )
    return len(rows)


def store_night_flow(now: datetime | None = None) -> dict[str, int]:
    """The 10-minute job: night blocks of the last hour, then the summary of the last complete night."""
    now = now or timezone.now()
    with transaction.atomic():
        blocks = store_blocks(now)
        night = last_complete_night(now)
        # re-summarise during the hour after the night ends, so its last (possibly late) blocks count
        local = timezone.localtime(now)
        summarised = 0
        if local.hour == NIGHT_END_HOUR or not NightMinimum.objects.filter(night=night).exists():
            summarised = summarise_night(night)
    logger.info("night flow: %d block row(s), %d night summaries for %s", blocks, summarised, night)
    return {"blocks": blocks, "summaries": summarised}
