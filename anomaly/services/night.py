"""Night flow: 10-minute mean flows during the night (22:00-05:00 local) and each night's summary.

`store_night_flow` upserts the blocks of the last hour (late readings are folded in on the next run) and,
once a night is over, its NightMinimum: the lowest block mean, the baseline from the newest criteria, and
the streak of consecutive nights above baseline x (1 + margin) — what the night method reads each minute.
A block counts towards the minimum when it holds the readings its sensor's cadence gives it
(criteria.min_block_samples: 5 of 10 at 1 minute, 1 from 5 minutes on). Both steps are idempotent upserts,
safe to re-run. A replay (replay_detection) runs the same steps for its sensors with its period's criteria.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, Min
from django.utils import timezone

from sensors.models import Reading

from ..criteria import NIGHT_END_HOUR, NIGHT_START_HOUR, live_rows, min_block_samples
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


def store_blocks(now: datetime, sensor_ids: Sequence[int] | None = None) -> int:
    """Upsert the 10-minute night means of the last BLOCKS_PER_RUN complete blocks; return rows written."""
    latest = block_floor(now) - BLOCK
    written = 0
    for index in range(BLOCKS_PER_RUN):
        start = latest - index * BLOCK
        night = night_of(start)
        if night is None:
            continue
        readings = Reading.objects.filter(ts__gte=start, ts__lt=start + BLOCK)
        if sensor_ids is not None:
            readings = readings.filter(sensor_id__in=sensor_ids)
        means = readings.values("sensor_id").annotate(mean=Avg("flow"), samples=Count("id")).order_by()
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


def summarise_night(night: date, sensor_ids: Sequence[int] | None = None, criteria_version: int | None = None) -> int:
    """Upsert every sensor's NightMinimum for `night` (vectorised over sensors); return rows written.

    Baseline and cadence come from the newest live criteria of each sensor, or from `criteria_version` (a
    replayed period's). Blocks are grouped by their reading count, so each sensor's minimum uses the blocks
    its own cadence counts (min_block_samples) in one query.
    """
    blocks = NightFlow.objects.filter(night=night)
    if sensor_ids is not None:
        blocks = blocks.filter(sensor_id__in=sensor_ids)
    by_samples = list(
        blocks.values("sensor_id", "samples")
        .annotate(min_flow=Min("mean_flow"), blocks=Count("id"))
        .order_by("sensor_id", "samples")
    )
    if not by_samples:
        return 0
    # baseline and cadence are the same on every hour's row of a version: read one slot, newest version wins
    # (for the baseline, the newest version that has one)
    learned = live_rows() if criteria_version is None else Criteria.objects.filter(version_id=criteria_version)
    baselines: dict[int, float] = {}
    cadences: dict[int, int] = {}
    for sensor, night_baseline, cadence in (
        learned.filter(sensor_id__in={row["sensor_id"] for row in by_samples}, metric="flow", hour=0, weekend=False)
        .order_by("sensor_id", "version_id")
        .values_list("sensor_id", "night_baseline", "cadence_minutes")
    ):
        cadences[sensor] = cadence
        if night_baseline is not None:
            baselines[sensor] = night_baseline
    minima: dict[int, tuple[float, int]] = {}
    for row in by_samples:
        sensor = row["sensor_id"]
        if row["samples"] < int(min_block_samples(cadences.get(sensor, 1))):
            continue
        low, count = minima.get(sensor, (np.inf, 0))
        minima[sensor] = (min(low, row["min_flow"]), count + row["blocks"])
    if not minima:
        return 0
    summarised = np.array(sorted(minima))
    min_flow = np.array([minima[sensor][0] for sensor in summarised], dtype=float)
    block_counts = [minima[sensor][1] for sensor in summarised]
    margins = dict(
        SensorMethodSettings.objects.filter(night_margin__isnull=False).values_list("sensor_id", "night_margin")
    )
    baseline = np.array([baselines.get(sensor, np.nan) for sensor in summarised], dtype=float)
    margin = np.array([margins.get(sensor, settings.ANOMALY_NIGHT_MARGIN) for sensor in summarised], dtype=float)
    exceeded = ~np.isnan(baseline) & (min_flow > baseline * (1 + margin))
    previous = dict(
        NightMinimum.objects.filter(night=night - timedelta(days=1), sensor_id__in=summarised.tolist()).values_list(
            "sensor_id", "streak"
        )
    )
    streak = np.where(exceeded, np.array([previous.get(sensor, 0) for sensor in summarised]) + 1, 0)
    rows = [
        NightMinimum(
            sensor_id=int(sensor),
            night=night,
            min_flow=float(flow),
            baseline=None if np.isnan(base) else float(base),
            exceeded=bool(over),
            streak=int(count),
            blocks=int(blocks_counted),
        )
        for sensor, flow, base, over, count, blocks_counted in zip(
            summarised, min_flow, baseline, exceeded, streak, block_counts, strict=True
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


def store_night_flow(
    now: datetime | None = None, sensor_ids: Sequence[int] | None = None, criteria_version: int | None = None
) -> dict[str, int]:
    """The 10-minute job: night blocks of the last hour, then the summary of the last complete night.

    `sensor_ids` and `criteria_version` scope it to a replay's sensors and period (default: every sensor,
    the newest live criteria).
    """
    now = now or timezone.now()
    with transaction.atomic():
        blocks = store_blocks(now, sensor_ids)
        night = last_complete_night(now)
        # re-summarise during the hour after the night ends, so its last (possibly late) blocks count
        local = timezone.localtime(now)
        summarised = 0
        summaries = NightMinimum.objects.filter(night=night)
        if sensor_ids is not None:
            summaries = summaries.filter(sensor_id__in=sensor_ids)
        if local.hour == NIGHT_END_HOUR or not summaries.exists():
            summarised = summarise_night(night, sensor_ids, criteria_version)
    level = logging.INFO if sensor_ids is None else logging.DEBUG  # a replay runs this every 10 minutes of history
    logger.log(level, "night flow: %d block row(s), %d night summaries for %s", blocks, summarised, night)
    return {"blocks": blocks, "summaries": summarised}
