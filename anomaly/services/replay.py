"""Replay detection over stored history (`manage.py replay_detection`): the live minute job's own code,
minute by minute, over readings imported from a utility's SCADA exports (or any stored period).

For the window [start, end) and the chosen sensors:
1. Criteria per period: calendar blocks of ANOMALY_CRITERIA_REBUILD_MONTHS months from January (Jan, Apr,
   Jul, Oct for 3: the live rebuild's rhythm), each built from the ANOMALY_CRITERIA_DB_DAYS days of readings
   before it (a CriteriaVersion of source "replay", reused when the same data would give it again), so no
   minute is judged by criteria that saw it. A sensor with less than MIN_HISTORY_DAYS of readings before a
   period has no criteria in it (value and night say no_criteria, as live before criteria exist).
2. Where to start: an episode still going at `start` (an event of an earlier, adjacent replay) is replayed
   from its own beginning, so [Jan, Feb) then [Feb, Mar) gives the events of one replay over [Jan, Mar);
   the replayed events of these sensors from that minute to `end` are deleted first, which makes a second
   run give the same events.
3. Minute by minute as the live beat would run it: the night-flow job at every 10-minute mark of the wall
   clock (minute + ANOMALY_DETECT_DELAY_MINUTES), starting the nights before the start so streaks are known,
   then `detect.evaluate_minute` with a Scope of these sensors, the period's criteria and replayed events.
4. Events still firing at `end` are closed there: nothing replayed stays open.
The replay is one transaction: interrupted, it stores nothing, and nothing outside sees it half done — the
live incident grouping (aiops) only ever finds replayed events resolved, and they notify nobody (events).
Not done for history: the live job's DetectionRun rows, per-minute results, alert frames and flags (meant
for devices, now) and Prometheus counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef
from django.utils import timezone

from sensors.models import Reading, Sensor

from .. import criteria
from ..criteria import NIGHT_END_HOUR, NIGHT_START_HOUR
from ..events import clean_minutes_at
from ..models import (
    AnomalyEvent,
    Criteria,
    CriteriaSource,
    CriteriaVersion,
    DetectionRun,
    EventStatus,
    SensorMethodSettings,
)
from . import detect
from .night import BLOCK, store_night_flow

logger = logging.getLogger(__name__)

MIN_HISTORY_DAYS = 14  # two of every weekday and weekend hour slot: the evaluation's history, enough for its figures
# History only: the live incident grouping (aiops) still looks at events that ended within
# AIOPS_GROUP_SHARE_SECONDS (1 h); a day keeps every replayed event out of its reach.
MIN_AGE = timedelta(days=1)
PROGRESS_MINUTES = 60  # progress is reported per hour of history replayed
LOCK_CLASS = 15  # PostgreSQL advisory locks (15, sensor id): one replay per sensor at a time


class ReplayError(ValueError):
    """The replay cannot run as asked; the message says why and what to do."""


@dataclass
class Period:
    start: datetime
    end: datetime
    version: CriteriaVersion | None


@dataclass
class ReplayResult:
    start: datetime  # where evaluation began (before the requested start when an episode was going on)
    end: datetime
    sensors: list[str]
    minutes: int = 0
    periods: list[Period] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)  # "metric.method" -> replayed events in the window


def period_start(moment: datetime) -> datetime:
    """The start (local midnight on the 1st) of the calendar block of criteria periods holding `moment`."""
    months = settings.ANOMALY_CRITERIA_REBUILD_MONTHS
    local = timezone.localtime(moment)
    first_month = (local.month - 1) // months * months + 1
    return local.replace(month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0)


def next_period(start: datetime) -> datetime:
    month = start.month + settings.ANOMALY_CRITERIA_REBUILD_MONTHS
    if month > 12:  # blocks restart in January (a period length that does not divide 12 shortens the last one)
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=month)


def periods(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(period start, period end) of every period that [start, end) touches."""
    begin = period_start(start)
    while begin < end:
        following = next_period(begin)
        yield begin, following
        begin = following


def period_criteria(begin: datetime, sensor_ids: list[int], codes: list[str]) -> CriteriaVersion | None:
    """The criteria of the period starting at `begin`: from the ANOMALY_CRITERIA_DB_DAYS days before it."""
    data_start = begin - timedelta(days=settings.ANOMALY_CRITERIA_DB_DAYS)
    count = Reading.objects.filter(sensor_id__in=sensor_ids, ts__gte=data_start, ts__lt=begin).count()
    same = (
        CriteriaVersion.objects.filter(
            source=CriteriaSource.REPLAY,
            data_start=data_start,
            data_end=begin,
            readings=count,
            parameters__sensors=codes,
        )
        .order_by("-id")
        .first()
    )
    if same is not None:
        return same
    rows = criteria.compute_from_database(
        sensor_ids, data_start, begin, begun_by=begin - timedelta(days=MIN_HISTORY_DAYS)
    )
    if rows.empty:
        return None
    return criteria.save_version(
        rows,
        source=CriteriaSource.REPLAY,
        detail=f"replay: the {settings.ANOMALY_CRITERIA_DB_DAYS} days before {timezone.localtime(begin):%Y-%m-%d}",
        data_start=data_start,
        data_end=begin,
        readings=count,
        parameters={"sensors": codes},
    )


def carry_minutes(sensor_ids: list[int]) -> float:
    """How long after its last firing an event of these sensors can still be open (their slowest cadence)."""
    slowest = Criteria.objects.filter(sensor_id__in=sensor_ids).aggregate(slowest=Max("cadence_minutes"))
    return clean_minutes_at(slowest["slowest"] or 1)


def episode_start(sensor_ids: list[int], start: datetime) -> datetime:
    """`start`, or earlier: the beginning of any replayed episode of these sensors still open at it (repeated,
    since the earlier start may fall inside another one)."""
    carry = timedelta(minutes=carry_minutes(sensor_ids))
    while True:
        going = AnomalyEvent.objects.filter(
            replayed=True, sensor_id__in=sensor_ids, started_at__lt=start, last_fired_at__gte=start - carry
        ).aggregate(first=Min("started_at"))["first"]
        if going is None:
            return start
        start = going


def select_sensors(codes: list[str] | None, start: datetime, end: datetime) -> dict[str, int]:
    """code -> id of the sensors to replay: the given codes, or every sensor that reported in the window or in
    the ANOMALY_CRITERIA_DB_DAYS before it (one silent all through the window is a gap, not a sensor to skip)."""
    if codes:
        known = dict(Sensor.objects.filter(code__in=codes).values_list("code", "id"))
        unknown = sorted(set(codes) - set(known))
        if unknown:
            raise ReplayError(f"not registered: sensor(s) {', '.join(unknown)}")
        return known
    since = start - timedelta(days=settings.ANOMALY_CRITERIA_DB_DAYS)
    reported = Reading.objects.filter(sensor=OuterRef("pk"), ts__gte=since, ts__lt=end)
    return dict(Sensor.objects.filter(Exists(reported)).values_list("code", "id"))


def check_window(start: datetime, end: datetime, now: datetime) -> None:
    if start >= end:
        raise ReplayError(f"--from ({start:%Y-%m-%d %H:%M}) must be before --to ({end:%Y-%m-%d %H:%M})")
    if end > now - MIN_AGE:
        raise ReplayError(
            f"--to must be at least a day ago (at most {timezone.localtime(now - MIN_AGE):%Y-%m-%d %H:%M}): "
            "replay is for history; the live minute job judges the last day"
        )
    live = DetectionRun.objects.filter(minute__gte=start, minute__lt=end).aggregate(first=Min("minute"))["first"]
    if live is not None:
        raise ReplayError(
            f"the live minute job already evaluated this window from {timezone.localtime(live):%Y-%m-%d %H:%M}: "
            "replay the history before it (its night summaries belong to the live job)"
        )


def _minutes(start: datetime, end: datetime) -> Iterator[datetime]:
    minute = start
    while minute < end:
        yield minute
        minute += timedelta(minutes=1)


def _night_marks(start: datetime, end: datetime) -> Iterator[datetime]:
    """The 10-minute marks of the wall clock in [start, end) from 22:00 to 05:50 local, when the night-flow
    job stores night blocks or summarises a night (at the day's other marks it has nothing to do)."""
    mark = start.replace(minute=start.minute - start.minute % 10, second=0, microsecond=0)
    mark = mark if mark >= start else mark + BLOCK
    while mark < end:
        hour = timezone.localtime(mark).hour
        if hour >= NIGHT_START_HOUR or hour <= NIGHT_END_HOUR:
            yield mark
        mark += BLOCK


def replay(
    start: datetime,
    end: datetime,
    codes: list[str] | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayResult:
    """Replay detection over [start, end) for the given sensors (see the module docstring).

    `progress(minutes done, minutes in all)` is called every PROGRESS_MINUTES replayed minutes.
    """
    # UTC minutes, as the live job's (the events' evidence shows the minute as given)
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    end = end.astimezone(UTC).replace(second=0, microsecond=0)
    check_window(start, end, timezone.now())
    chosen = select_sensors(codes, start, end)
    if not chosen:
        raise ReplayError(
            f"no sensor reported between {timezone.localtime(start):%Y-%m-%d %H:%M} and "
            f"{timezone.localtime(end):%Y-%m-%d %H:%M} or in the {settings.ANOMALY_CRITERIA_DB_DAYS} days before"
        )
    codes, sensor_ids = sorted(chosen), [chosen[code] for code in sorted(chosen)]
    delay = timedelta(minutes=settings.ANOMALY_DETECT_DELAY_MINUTES)
    with transaction.atomic():
        _lock(chosen)
        begin = episode_start(sensor_ids, start)
        result = ReplayResult(start=begin, end=end, sensors=codes)
        spans = list(periods(begin, end))
        versions = {first: period_criteria(first, sensor_ids, codes) for first, _last in spans}
        result.periods = [Period(first, last, versions[first]) for first, last in spans]
        if versions[spans[0][0]] is None:
            raise ReplayError(_no_history(spans[0][0], sensor_ids))
        AnomalyEvent.objects.filter(
            replayed=True, sensor_id__in=sensor_ids, started_at__gte=begin, started_at__lt=end
        ).delete()
        _warm_up_nights(begin, delay, sensor_ids, versions[spans[0][0]])
        total = int((end - begin).total_seconds() // 60)
        for index, minute in enumerate(_minutes(begin, end), start=1):
            version = versions[period_start(minute)]
            scope = detect.Scope(tuple(sensor_ids), version.pk if version else None, replayed=True)
            wall = minute + delay
            if wall.minute % 10 == 0:
                store_night_flow(wall, sensor_ids, scope.criteria_version)
            detect.evaluate_minute(minute, scope)
            if progress is not None and (index % PROGRESS_MINUTES == 0 or index == total):
                progress(index, total)
        result.minutes = total
        # still firing when the history ends: closed at its end, so no replayed event is ever left open
        AnomalyEvent.objects.filter(replayed=True, sensor_id__in=sensor_ids).exclude(
            status=EventStatus.RESOLVED
        ).update(status=EventStatus.RESOLVED, ended_at=end)
        window = AnomalyEvent.objects.filter(
            replayed=True, sensor_id__in=sensor_ids, started_at__gte=begin, started_at__lt=end
        )
        for metric, method in window.values_list("metric", "method"):
            key = f"{metric}.{method}"
            result.events[key] = result.events.get(key, 0) + 1
    logger.info("replayed %d minute(s) of %d sensor(s): %s", result.minutes, len(codes), result.events)
    return result


def _lock(chosen: dict[str, int]) -> None:
    """Replays of different sensors may run side by side (each touches only its sensors' rows); two of the same
    sensor may not. The locks go with the transaction."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        busy = []
        for code, sensor_id in chosen.items():
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LOCK_CLASS, sensor_id])
            if not cursor.fetchone()[0]:
                busy.append(code)
    if busy:
        raise ReplayError(f"another replay_detection is replaying sensor(s) {', '.join(busy)}; wait for it to finish")


def _warm_up_nights(begin: datetime, delay: timedelta, sensor_ids: list[int], version: CriteriaVersion | None) -> None:
    """The night-flow job over the nights before `begin`, so the first replayed day knows its streaks (the
    marks up to the wall clock at which the live job evaluates `begin`)."""
    overrides = SensorMethodSettings.objects.filter(sensor_id__in=sensor_ids).aggregate(most=Max("night_nights"))
    nights = max(settings.ANOMALY_NIGHT_NIGHTS, overrides["most"] or 0)
    for mark in _night_marks(begin - timedelta(days=nights), begin + delay):
        store_night_flow(mark, sensor_ids, version.pk if version else None)


def _no_history(begin: datetime, sensor_ids: list[int]) -> str:
    """Why the first period has no criteria, and the first period start that would have them."""
    first = Reading.objects.filter(sensor_id__in=sensor_ids).aggregate(first=Min("ts"))["first"]
    hint = ""
    if first is not None:
        ready = first + timedelta(days=MIN_HISTORY_DAYS)
        earliest = period_start(ready)
        earliest = earliest if earliest >= ready else next_period(earliest)
        hint = f"; their readings begin {timezone.localtime(first):%Y-%m-%d}: replay from {earliest:%Y-%m-%d} on"
    return (
        f"no sensor has {MIN_HISTORY_DAYS} days of readings before {timezone.localtime(begin):%Y-%m-%d}, where the "
        f"criteria of the first period come from (the {settings.ANOMALY_CRITERIA_DB_DAYS} days before it){hint}"
    )
