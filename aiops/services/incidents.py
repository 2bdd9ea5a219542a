"""Incidents instead of alert storms: concurrent anomaly events of every source become one incident,
notified as one message listing its members.

Grouping (`assign_events`), oldest unassigned event first:
1. the event's attributes are what it can share with others: host, site, group, org (from the sensor,
   the host name, a custom series' or an alert's labels, an account's organisation);
2. it joins the unresolved incident with the newest member that shares one of them, if that member
   started at most `share` seconds before it ("host=web-1");
3. otherwise it joins the unresolved incident whose newest member started within `proximity` seconds
   of it ("time": an outage that shows up on unrelated sensors at once);
4. otherwise it opens a new incident.
An incident resolves when all its members have (`resolve_finished`).

Notifications (`notify_due`) follow Alertmanager's route timers: the first message `group_wait` after
the incident opened (so the storm has gathered), a new message when members joined but at most every
`group_interval`, a reminder every `repeat_interval` while unresolved, and one "resolved" message.
Each message is claimed in the database first (a conditional UPDATE on the notification count), so
concurrent or repeated runs never send it twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from anomaly.models import AnomalyEvent, EventStatus, Severity, Source
from core.notify import Alert, notify

from ..insight import hooks as insight_hooks
from ..metrics import INCIDENTS
from ..models import Incident, IncidentMember, IncidentStatus

logger = logging.getLogger(__name__)

# The attributes events are grouped by, in order of preference for an incident's group key.
SHARED_ATTRIBUTES = ("host", "site", "group", "org")
SEVERITY_RANK: dict[str, int] = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
# Members listed in one message; the rest are counted ("… and 37 more").
MESSAGE_MEMBERS = 50


@dataclass(frozen=True)
class GroupingSettings:
    """The route timers and grouping windows, in seconds (defaults from settings; tests shorten them)."""

    group_wait: float
    group_interval: float
    repeat_interval: float
    proximity: float
    share: float
    send_resolved: bool = True

    @classmethod
    def from_settings(cls) -> GroupingSettings:
        return cls(
            group_wait=settings.AIOPS_GROUP_WAIT_SECONDS,
            group_interval=settings.AIOPS_GROUP_INTERVAL_SECONDS,
            repeat_interval=settings.AIOPS_REPEAT_INTERVAL_SECONDS,
            proximity=settings.AIOPS_GROUP_PROXIMITY_SECONDS,
            share=settings.AIOPS_GROUP_SHARE_SECONDS,
            send_resolved=settings.AIOPS_SEND_RESOLVED,
        )


def _host_of(instance: str) -> str:
    """Prometheus' instance label is host:port; the host is what other sources call it."""
    host, _, port = instance.rpartition(":")
    return host if host and port.isdigit() else instance


def event_attributes(event: AnomalyEvent) -> dict[str, str]:
    """What one event can share with others. Producers may add their own under evidence["attributes"]."""
    evidence = event.evidence if isinstance(event.evidence, dict) else {}
    attributes: dict[str, str] = {}
    raw_labels = evidence.get("labels")
    labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
    if event.source == Source.SENSOR:
        attributes["sensor"] = event.subject
        if event.sensor is not None and event.sensor.location:
            attributes["site"] = event.sensor.location
    elif event.source == Source.HOST:
        attributes["host"] = event.subject
    elif event.source == Source.ACCOUNT:
        attributes["account"] = event.subject
    for key in ("host", "site", "group", "org", "alertname", "job"):
        if labels.get(key):
            attributes[key] = str(labels[key])
    if labels.get("instance") and "host" not in attributes:
        attributes["host"] = _host_of(str(labels["instance"]))
    extra = evidence.get("attributes")
    if isinstance(extra, dict):
        attributes.update({str(k): str(v) for k, v in extra.items() if v not in (None, "")})
    return attributes


def _shared(attributes: dict[str, str]) -> list[str]:
    return [f"{key}={attributes[key]}" for key in SHARED_ATTRIBUTES if attributes.get(key)]


def _incident_pairs(incident: Incident) -> set[str]:
    return {f"{key}={value}" for key, values in incident.attributes.items() for value in values}


def _merge_attributes(incident: Incident, attributes: dict[str, str]) -> None:
    merged = {key: set(values) for key, values in incident.attributes.items()}
    for key, value in attributes.items():
        merged.setdefault(key, set()).add(value)
    incident.attributes = {key: sorted(values) for key, values in sorted(merged.items())}


def _title(incident: Incident, members: int) -> str:
    what = incident.group_key if incident.group_key != "time" else "events starting together"
    sources = ", ".join(sorted(incident.attributes.get("source", [])))
    return f"{members} anomal{'y' if members == 1 else 'ies'} ({sources}): {what}"[:300]


def _choose(
    event: AnomalyEvent, shared: list[str], open_incidents: list[Incident], config: GroupingSettings
) -> tuple[Incident | None, str]:
    """Steps 2 and 3 of the module docstring: the incident the event joins and why (None: a new one)."""
    start = event.started_at
    by_recency = sorted(open_incidents, key=lambda incident: incident.last_event_at, reverse=True)
    for incident in by_recency:
        common = [pair for pair in shared if pair in _incident_pairs(incident)]
        if common and start - incident.last_event_at <= timedelta(seconds=config.share):
            return incident, common[0]
    for incident in by_recency:
        if abs((start - incident.last_event_at).total_seconds()) <= config.proximity:
            return incident, "time"
    return None, ""


def assign_events(config: GroupingSettings | None = None, limit: int = 5000) -> int:
    """Put every live event that is in no incident yet into one; return how many were assigned.

    One run at a time (the open incidents are locked), oldest event first, so a storm's first event opens
    the incident and the rest join it.
    """
    config = config or GroupingSettings.from_settings()
    assigned = 0
    with transaction.atomic():
        open_incidents = list(Incident.objects.select_for_update().exclude(status=IncidentStatus.RESOLVED))
        pending = (
            AnomalyEvent.objects.filter(incident_membership__isnull=True, replayed=False)  # history is not an outage
            .exclude(status=EventStatus.RESOLVED, ended_at__lt=timezone.now() - timedelta(seconds=config.share))
            .select_related("sensor")
            .order_by("started_at", "id")[:limit]
        )
        for event in pending:
            attributes = event_attributes(event) | {"source": event.source}
            shared = _shared(attributes)
            incident, matched_on = _choose(event, shared, open_incidents, config)
            if incident is None:
                incident = Incident(
                    group_key=shared[0] if shared else "time",
                    severity=event.severity,
                    started_at=event.started_at,
                    last_event_at=event.started_at,
                    attributes={},
                )
                matched_on = "first member"
                open_incidents.append(incident)
                INCIDENTS.labels(transition="opened").inc()
            _merge_attributes(incident, attributes)
            incident.started_at = min(incident.started_at, event.started_at)
            incident.last_event_at = max(incident.last_event_at, event.started_at)
            if SEVERITY_RANK.get(event.severity, 1) > SEVERITY_RANK.get(incident.severity, 1):
                incident.severity = event.severity
            count = (incident.memberships.count() if incident.pk else 0) + 1
            incident.title = _title(incident, count)
            incident.save()
            IncidentMember.objects.create(incident=incident, event=event, matched_on=matched_on)
            assigned += 1
    if assigned:
        logger.info("assigned %d event(s) to incidents", assigned)
    return assigned


def resolve_finished(now: datetime | None = None) -> int:
    """Resolve every unresolved incident whose members have all resolved; return how many."""
    now = now or timezone.now()
    unresolved_member = Q(memberships__event__status__in=[EventStatus.OPEN, EventStatus.ACKNOWLEDGED])
    finished = Incident.objects.exclude(status=IncidentStatus.RESOLVED).exclude(unresolved_member)
    resolved = 0
    for incident in finished:
        ended = [m.event.ended_at for m in incident.memberships.select_related("event") if m.event.ended_at]
        changed = (
            Incident.objects.filter(pk=incident.pk)
            .exclude(status=IncidentStatus.RESOLVED)
            .update(status=IncidentStatus.RESOLVED, resolved_at=max(ended, default=now), updated_at=now)
        )
        if changed:
            resolved += 1
            INCIDENTS.labels(transition="resolved").inc()
            logger.info("incident %s resolved: every member resolved", incident.pk)
    return resolved


def acknowledge(incident_id: int, user_id: int | None) -> Incident:
    """An operator has taken the incident: reminders stop; members keep resolving on their own."""
    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.status == IncidentStatus.RESOLVED:
            raise ValueError("the incident is already resolved")
        if incident.status == IncidentStatus.OPEN:
            incident.status = IncidentStatus.ACKNOWLEDGED
            incident.acknowledged_at = timezone.now()
            incident.acknowledged_by_id = user_id
            incident.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
        return incident


def resolve(incident_id: int, user_id: int | None) -> Incident:
    """An operator closes the incident now, with its unresolved members (a member firing again opens a
    new event, and so a new incident)."""
    from anomaly import events

    with transaction.atomic():
        incident = Incident.objects.select_for_update().get(pk=incident_id)
        if incident.status == IncidentStatus.RESOLVED:
            raise ValueError("the incident is already resolved")
        for event_id in incident.memberships.exclude(event__status=EventStatus.RESOLVED).values_list(
            "event_id", flat=True
        ):
            events.resolve(event_id, user_id)
        incident.status = IncidentStatus.RESOLVED
        incident.resolved_at = timezone.now()
        incident.resolved_by_id = user_id
        incident.save(update_fields=["status", "resolved_at", "resolved_by", "updated_at"])
        INCIDENTS.labels(transition="resolved").inc()
        return incident


def _member_line(event: AnomalyEvent) -> str:
    state = "resolved" if event.status == EventStatus.RESOLVED else "firing"
    return (
        f"- {event.source} {event.subject} {event.metric} {event.method} ({event.severity}, {state}) "
        f"since {timezone.localtime(event.started_at):%Y-%m-%d %H:%M}"
    )


def message(incident: Incident, status: str) -> Alert:
    """One message about the whole incident, listing its members."""
    members = [m.event for m in incident.memberships.select_related("event").order_by("event__started_at", "id")]
    lines = [_member_line(event) for event in members[:MESSAGE_MEMBERS]]
    if len(members) > MESSAGE_MEMBERS:
        lines.append(f"… and {len(members) - MESSAGE_MEMBERS} more")
    sources = sorted({event.source for event in members})
    labels = {"incident": str(incident.pk), "group": incident.group_key, "sources": ",".join(sources)}
    return Alert(
        key=f"incident:{incident.pk}:{incident.notification_count}",
        status="resolved" if status == "resolved" else "firing",
        title=f"Incident {incident.pk}: {incident.title}",
        text=f"{len(members)} member(s), grouped by {incident.group_key}:\n"
        + "\n".join(lines)
        + insight_hooks.notification_text(incident),  # insight: the explanation, once one is ready
        severity=incident.severity,
        source="aiops",
        labels=labels,
        starts_at=incident.started_at,
        ends_at=incident.resolved_at,
    )


def _due(incident: Incident, members: int, now: datetime, config: GroupingSettings) -> str | None:
    """Which message the incident is due for now, if any: first, update, repeat or resolved."""
    if incident.status == IncidentStatus.RESOLVED:
        if incident.first_notified_at and not incident.resolved_notified and config.send_resolved:
            return "resolved"
        return None
    last = incident.last_notified_at
    if last is None:
        return "first" if now - incident.created_at >= timedelta(seconds=config.group_wait) else None
    if members > incident.notified_members and now - last >= timedelta(seconds=config.group_interval):
        return "update"
    if incident.status == IncidentStatus.OPEN and now - last >= timedelta(seconds=config.repeat_interval):
        return "repeat"
    return None


def notify_due(now: datetime | None = None, config: GroupingSettings | None = None) -> list[tuple[int, str]]:
    """Send every message that is due now; return (incident id, kind) for each one sent."""
    now = now or timezone.now()
    config = config or GroupingSettings.from_settings()
    sent: list[tuple[int, str]] = []
    candidates = Incident.objects.filter(
        Q(status__in=[IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED])
        | Q(status=IncidentStatus.RESOLVED, first_notified_at__isnull=False, resolved_notified=False)
    )
    for incident in candidates:
        members = incident.memberships.count()
        kind = _due(incident, members, now, config)
        if kind is None:
            continue
        if kind == "first" and not insight_hooks.ready_to_notify(incident, now, config.group_wait):
            continue  # insight: the first message waits (at most INSIGHT_NOTIFY_WAIT_SECONDS) for the explanation
        claim: dict[str, Any] = {
            "notification_count": F("notification_count") + 1,
            "last_notified_at": now,
            "notified_members": members,
        }
        if kind == "first":
            claim["first_notified_at"] = now
        if kind == "resolved":
            claim["resolved_notified"] = True
        with transaction.atomic():
            claimed = Incident.objects.filter(pk=incident.pk, notification_count=incident.notification_count).update(
                **claim
            )
            if not claimed:
                continue  # another run sent it
            alert = message(incident, "resolved" if kind == "resolved" else "firing")
            transaction.on_commit(partial(notify, alert))
        INCIDENTS.labels(transition="notified").inc()
        logger.info("incident %s: %s message (%d members)", incident.pk, kind, members)
        sent.append((incident.pk, kind))
    return sent


def next_due_in(now: datetime | None = None, config: GroupingSettings | None = None) -> float | None:
    """Seconds until the earliest first message of an incident still waiting for it (None: none waits)."""
    now = now or timezone.now()
    config = config or GroupingSettings.from_settings()
    waiting = Incident.objects.filter(last_notified_at__isnull=True).exclude(status=IncidentStatus.RESOLVED)
    earliest = waiting.order_by("created_at").values_list("created_at", flat=True).first()
    if earliest is None:
        return None
    return max(0.0, (earliest + timedelta(seconds=config.group_wait) - now).total_seconds())


def process(now: datetime | None = None, config: GroupingSettings | None = None) -> dict[str, Any]:
    """One pass: assign new events, resolve finished incidents, send due messages."""
    config = config or GroupingSettings.from_settings()
    assigned = assign_events(config)
    resolved = resolve_finished(now)
    sent = notify_due(now, config)
    return {"assigned": assigned, "resolved": resolved, "sent": sent, "next_due_in": next_due_in(now, config)}
