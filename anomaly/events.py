"""Anomaly events, not spam: one event per episode of one (subject, metric, method).

`observe_many()` (or `observe()` for one key) is called with every evaluation of a method that fired, and
with evaluations of methods that have an unresolved event (the detection cycle passes both):
1. fired, no unresolved event: open one and notify "firing";
2. fired, an unresolved event: extend it (last_fired_at, fired count, peak score and its evidence);
3. clean, an unresolved event that last fired at least `clean_minutes` ago: resolve it and notify "resolved".
Re-observing a minute already counted changes nothing, so a re-run of a minute is harmless.
Notifications are sent after the transaction commits, so a rolled-back cycle never alerts. Replayed events
(`replayed=True`, replay_detection over history) follow the same rules among themselves, apart from live
events, and never notify.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.notify import Alert, notify

from .metrics import EVENTS
from .models import AnomalyEvent, EventStatus

logger = logging.getLogger(__name__)

Transition = Callable[[int, int | None], AnomalyEvent]
CLEAN_READINGS = 2  # an event stays open across at least this many reading intervals without firing


def clean_minutes_at(cadence: float, clean_minutes: int | None = None) -> float:
    """Clean minutes before an event closes for a sensor reporting every `cadence` minutes: ANOMALY_CLEAN_MINUTES
    (10), and at least CLEAN_READINGS intervals, so at 15 minutes an event is not closed and reopened between
    two readings that both fire (10 minutes up to a 5-minute cadence, 30 at 15)."""
    clean = settings.ANOMALY_CLEAN_MINUTES if clean_minutes is None else clean_minutes
    return max(float(clean), CLEAN_READINGS * cadence)


def _alert(event: AnomalyEvent) -> Alert:
    firing = event.status != EventStatus.RESOLVED
    verb = "since" if firing else "from"
    window = f"{verb} {timezone.localtime(event.started_at):%Y-%m-%d %H:%M}"
    if not firing and event.ended_at:
        window += f" to {timezone.localtime(event.ended_at):%H:%M}"
    return Alert(
        key=f"anomaly:{event.pk}",
        status="firing" if firing else "resolved",
        title=f"{event.subject} {event.metric}: {event.method} anomaly",
        text=f"{event.source} {event.subject}, {event.metric}, method {event.method}, {window}; "
        f"peak score {event.peak_score:.2f} over {event.fired_count} minute(s)",
        severity=event.severity,
        source="anomaly",
        labels={"subject": event.subject, "metric": event.metric, "method": event.method, "kind": event.source},
        starts_at=event.started_at,
        ends_at=event.ended_at,
    )


def send_notification(event: AnomalyEvent) -> None:
    """Notify about the event's current state (and count it) once the surrounding transaction commits."""
    alert = _alert(event)
    counter = EVENTS.labels(source=event.source, transition="opened" if alert.status == "firing" else "resolved")

    def after_commit() -> None:
        counter.inc()
        if settings.ANOMALY_EVENT_NOTIFICATIONS:  # off by default: aiops notifies once per incident
            notify(alert)

    transaction.on_commit(after_commit)


@dataclass(frozen=True)
class Observation:
    """One evaluation of one (subject, metric, method); the source and the minute are shared by a batch."""

    subject: str
    metric: str
    method: str
    fired: bool
    score: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    sensor_id: int | None = None
    clean_minutes: float | None = None  # this subject's own (clean_minutes_at); None: the batch's


EventKey = tuple[str, str, str]


def observe_many(
    *,
    source: str,
    at: datetime,
    observations: Iterable[Observation],
    clean_minutes: int | None = None,
    replayed: bool = False,
) -> int:
    """Apply many evaluations of one source at one minute; returns how many events changed."""
    changed, _touched = _apply(
        source=source, at=at, observations=observations, clean_minutes=clean_minutes, replayed=replayed
    )
    return changed


def observe(
    *,
    source: str,
    subject: str,
    metric: str,
    method: str,
    at: datetime,
    fired: bool,
    score: float,
    evidence: dict[str, Any],
    severity: str = "warning",
    sensor_id: int | None = None,
    clean_minutes: int | None = None,
) -> AnomalyEvent | None:
    """One evaluation (the same rules as observe_many); returns the event it touched, None if there is none."""
    item = Observation(subject, metric, method, fired, score, evidence, severity, sensor_id)
    _changed, touched = _apply(source=source, at=at, observations=[item], clean_minutes=clean_minutes, replayed=False)
    return touched.get((subject, metric, method))


def _apply(
    *, source: str, at: datetime, observations: Iterable[Observation], clean_minutes: int | None, replayed: bool
) -> tuple[int, dict[EventKey, AnomalyEvent]]:
    """The one implementation of the rules in the module docstring, in a few queries: one locking read of
    the source's unresolved events and one UPDATE advancing every event that fired again (last fired = this
    minute, count + 1). A new peak (its evidence) is saved per event; opening and closing, which are rare and
    notify, go one at a time. Returns the number of changed events and the events touched, by key."""
    clean = timedelta(minutes=settings.ANOMALY_CLEAN_MINUTES if clean_minutes is None else clean_minutes)
    changed = 0
    touched: dict[EventKey, AnomalyEvent] = {}
    with transaction.atomic():
        unresolved = (
            AnomalyEvent.objects.select_for_update()
            .filter(source=source, replayed=replayed)
            .exclude(status=EventStatus.RESOLVED)
        )
        by_key = {(event.subject, event.metric, event.method): event for event in unresolved}
        advanced: list[int] = []
        for item in observations:
            key = (item.subject, item.metric, item.method)
            event = by_key.get(key)
            if event is None:
                if item.fired:
                    fields = {"source": source, "subject": item.subject, "metric": item.metric, "method": item.method,
                              "replayed": replayed}  # fmt: skip
                    event = _open(fields, at=at, score=item.score, evidence=item.evidence, severity=item.severity,
                                  sensor_id=item.sensor_id)  # fmt: skip
                    by_key[key] = touched[key] = event
                    changed += 1
                continue
            touched[key] = event
            if item.fired and at > event.last_fired_at:
                advanced.append(event.pk)
                event.last_fired_at, event.fired_count = at, event.fired_count + 1
                if item.score > event.peak_score:
                    event.peak_score, event.evidence = item.score, item.evidence
                    event.save(update_fields=["peak_score", "evidence"])
            elif item.fired:
                changed += _extend(event, at, item.score, item.evidence)  # out of order: rare, exact
            elif at - event.last_fired_at >= _quiet(item, clean):
                _close(event, event.last_fired_at + timedelta(minutes=1))
                del by_key[key]
                changed += 1
        AnomalyEvent.objects.filter(pk__in=advanced).update(last_fired_at=at, fired_count=F("fired_count") + 1)
    return changed + len(advanced), touched


def _quiet(item: Observation, batch: timedelta) -> timedelta:
    return batch if item.clean_minutes is None else timedelta(minutes=item.clean_minutes)


def _open(
    key: dict[str, Any], *, at: datetime, score: float, evidence: dict[str, Any], severity: str, sensor_id: int | None
) -> AnomalyEvent:
    try:
        with transaction.atomic():
            event = AnomalyEvent.objects.create(
                **key,
                sensor_id=sensor_id,
                severity=severity,
                started_at=at,
                last_fired_at=at,
                peak_score=score,
                evidence=evidence,
            )
    except IntegrityError:
        # Another detector opened it between our read and insert: extend theirs instead. No such event means
        # the error was something else, which must not pass for a race.
        existing = AnomalyEvent.objects.select_for_update().exclude(status=EventStatus.RESOLVED).filter(**key).first()
        if existing is None:
            raise
        _extend(existing, at, score, evidence)
        return existing
    level = logging.DEBUG if event.replayed else logging.INFO  # a replay over years opens thousands
    logger.log(level, "anomaly event %s opened: %s %s %s", event.pk, key["subject"], key["metric"], key["method"])
    if not event.replayed:
        send_notification(event)
    return event


EXTEND_FIELDS = ["started_at", "last_fired_at", "fired_count", "peak_score", "evidence"]


def _extend(event: AnomalyEvent, at: datetime, score: float, evidence: dict[str, Any], *, save: bool = True) -> bool:
    """Count one more firing minute; False if this minute was already counted."""
    if at <= event.last_fired_at and at >= event.started_at:
        return False
    event.started_at = min(event.started_at, at)
    event.last_fired_at = max(event.last_fired_at, at)
    event.fired_count += 1
    if score > event.peak_score:
        event.peak_score = score
        event.evidence = evidence
    if save:
        event.save(update_fields=EXTEND_FIELDS)
    return True


def _close(event: AnomalyEvent, ended_at: datetime, user_id: int | None = None) -> None:
    event.status = EventStatus.RESOLVED
    event.ended_at = ended_at
    event.resolved_by_id = user_id
    event.save(update_fields=["status", "ended_at", "resolved_by"])
    logger.log(logging.DEBUG if event.replayed else logging.INFO, "anomaly event %s resolved", event.pk)
    if not event.replayed:
        send_notification(event)


def acknowledge(event_id: int, user_id: int | None) -> AnomalyEvent:
    """An operator has seen the event: it keeps extending and closes on its own, but is marked as handled."""
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().get(pk=event_id)
        if event.status == EventStatus.RESOLVED:
            raise ValueError("the event is already resolved")
        if event.status == EventStatus.OPEN:
            event.status = EventStatus.ACKNOWLEDGED
            event.acknowledged_at = timezone.now()
            event.acknowledged_by_id = user_id
            event.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
        return event


def resolve(event_id: int, user_id: int | None) -> AnomalyEvent:
    """An operator closes the event now; if the method keeps firing a new event opens next minute."""
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().get(pk=event_id)
        if event.status == EventStatus.RESOLVED:
            raise ValueError("the event is already resolved")
        _close(event, timezone.now(), user_id)
        return event
