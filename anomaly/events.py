"""Anomaly events, not spam: one event per episode of one (subject, metric, method).

`observe()` is called with every evaluation of a method that fired, and with evaluations of methods that
have an unresolved event (the detection cycle passes both):
1. fired, no unresolved event: open one and notify "firing";
2. fired, an unresolved event: extend it (last_fired_at, fired count, peak score and its evidence);
3. clean, an unresolved event that last fired at least `clean_minutes` ago: resolve it and notify "resolved".
Re-observing a minute already counted changes nothing, so a re-run of a minute is harmless.
Notifications are sent after the transaction commits, so a rolled-back cycle never alerts.
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
        notify(alert)

    transaction.on_commit(after_commit)


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
    """Apply one evaluation to the event of (source, subject, metric, method); return the event it touched."""
    clean = timedelta(minutes=settings.ANOMALY_CLEAN_MINUTES if clean_minutes is None else clean_minutes)
    key = {"source": source, "subject": subject, "metric": metric, "method": method}
    with transaction.atomic():
        event = AnomalyEvent.objects.select_for_update().exclude(status=EventStatus.RESOLVED).filter(**key).first()
        if event is None:
            if not fired:
                return None
            return _open(key, at=at, score=score, evidence=evidence, severity=severity, sensor_id=sensor_id)
        if fired:
            _extend(event, at, score, evidence)
        elif at - event.last_fired_at >= clean:
            _close(event, event.last_fired_at + timedelta(minutes=1))
        return event


@dataclass(frozen=True)
class Observation:
    """One evaluation for observe_many (the source and the minute are shared)."""

    subject: str
    metric: str
    method: str
    fired: bool
    score: float = 0.0
    evidence: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    sensor_id: int | None = None


def observe_many(
    *, source: str, at: datetime, observations: Iterable[Observation], clean_minutes: int | None = None
) -> int:
    """observe() for many keys of one source at one minute, in a few queries: one locking read of the
    unresolved events and one UPDATE advancing every event that fired again (last fired = this minute,
    count + 1). A new peak (its evidence) is saved per event; opening and closing, which are rare and
    notify, go one at a time. Returns how many events changed."""
    clean = timedelta(minutes=settings.ANOMALY_CLEAN_MINUTES if clean_minutes is None else clean_minutes)
    changed = 0
    with transaction.atomic():
        unresolved = AnomalyEvent.objects.select_for_update().filter(source=source).exclude(status=EventStatus.RESOLVED)
        by_key = {(event.subject, event.metric, event.method): event for event in unresolved}
        advanced: list[int] = []
        for item in observations:
            event = by_key.get((item.subject, item.metric, item.method))
            if event is None:
                if item.fired:
                    key = {"source": source, "subject": item.subject, "metric": item.metric, "method": item.method}
                    _open(key, at=at, score=item.score, evidence=item.evidence, severity=item.severity,
                          sensor_id=item.sensor_id)  # fmt: skip
                    changed += 1
            elif item.fired and at > event.last_fired_at:
                advanced.append(event.pk)
                if item.score > event.peak_score:
                    event.peak_score, event.evidence = item.score, item.evidence
                    event.save(update_fields=["peak_score", "evidence"])
            elif item.fired:
                changed += _extend(event, at, item.score, item.evidence)  # out of order: rare, exact
            elif at - event.last_fired_at >= clean:
                _close(event, event.last_fired_at + timedelta(minutes=1))
                changed += 1
        AnomalyEvent.objects.filter(pk__in=advanced).update(last_fired_at=at, fired_count=F("fired_count") + 1)
    return changed + len(advanced)


def _open(
    key: dict[str, str], *, at: datetime, score: float, evidence: dict[str, Any], severity: str, sensor_id: int | None
) -> AnomalyEvent | None:
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
        # Another detector opened it between our read and insert: extend theirs instead.
        event = AnomalyEvent.objects.select_for_update().exclude(status=EventStatus.RESOLVED).get(**key)
        _extend(event, at, score, evidence)
        return event
    logger.info("anomaly event %s opened: %s %s %s", event.pk, key["subject"], key["metric"], key["method"])
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
    logger.info("anomaly event %s resolved", event.pk)
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
