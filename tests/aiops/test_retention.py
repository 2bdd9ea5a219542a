"""aiops retention: old Alertmanager payloads and resolved incidents (with members and insights) go; recent
payloads, open or recently resolved incidents and their events stay; an unfinished run requeues itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.utils import timezone

from aiops import tasks
from aiops.models import AlertPayload, Incident, IncidentMember, IncidentStatus, Insight, MetricPoint
from aiops.services import metrics, retention
from anomaly.models import AnomalyEvent, EventStatus

NOW = datetime(2026, 12, 7, 5, 35, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def payload(received_at: datetime) -> AlertPayload:
    row = AlertPayload.objects.create(payload={"alerts": []}, status="firing")
    AlertPayload.objects.filter(pk=row.pk).update(received_at=received_at)  # auto_now_add: set afterwards
    return row


def incident(status: str, resolved_at: datetime | None, *, event_status: str = EventStatus.RESOLVED) -> Incident:
    """An incident with two member events and one insight."""
    started = (resolved_at or NOW) - timedelta(hours=1)
    row = Incident.objects.create(title="t", group_key="time", status=status, started_at=started,
                                  last_event_at=started, resolved_at=resolved_at)  # fmt: skip
    for subject in ("web-1", "web-2"):
        event = AnomalyEvent.objects.create(
            source="host", subject=f"{subject}-{row.pk}", metric="cpu_percent", method="x", status=event_status,
            started_at=started, last_fired_at=started, ended_at=resolved_at,
        )  # fmt: skip
        IncidentMember.objects.create(incident=row, event=event, matched_on="time")
    Insight.objects.create(incident=row, source="rules")
    return row


def queued(client: redis.Redis, task: str) -> list[dict[str, Any]]:
    """kwargs of `task`'s messages waiting in the broker's default queue."""
    found = []
    for raw in client.lrange("default", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == task:
            _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            found.append(kwargs)
    return found


def test_old_payloads_and_resolved_incidents_go_with_their_members_and_insights() -> None:
    old_payload, recent_payload = payload(NOW - timedelta(days=31)), payload(NOW - timedelta(days=29))
    purged = incident(IncidentStatus.RESOLVED, NOW - timedelta(days=181))
    recent = incident(IncidentStatus.RESOLVED, NOW - timedelta(days=179))
    still_open = incident(IncidentStatus.OPEN, None, event_status=EventStatus.OPEN)
    Incident.objects.filter(pk=still_open.pk).update(started_at=NOW - timedelta(days=400))
    # resolved long ago with an event still open (a guard): deleting it would regroup that event
    by_hand = incident(IncidentStatus.RESOLVED, NOW - timedelta(days=200), event_status=EventStatus.OPEN)
    old_event_insight = Insight.objects.create(event=AnomalyEvent.objects.first(), source="rules")
    Insight.objects.filter(pk=old_event_insight.pk).update(created_at=NOW - timedelta(days=181))
    recent_event_insight = Insight.objects.create(event=AnomalyEvent.objects.first(), source="rules")
    purged_events = list(purged.memberships.values_list("event_id", flat=True))

    deleted, finished = retention.purge_old_records(now=NOW)

    assert finished
    # the incident, its 2 members and its insight
    assert deleted == {"alert_payloads": 1, "incidents": 4, "event_insights": 1}
    assert list(AlertPayload.objects.values_list("pk", flat=True)) == [recent_payload.pk]
    assert not AlertPayload.objects.filter(pk=old_payload.pk).exists()
    assert set(Incident.objects.values_list("pk", flat=True)) == {recent.pk, still_open.pk, by_hand.pk}
    assert not IncidentMember.objects.filter(incident_id=purged.pk).exists()
    assert not Insight.objects.filter(incident_id=purged.pk).exists()
    assert IncidentMember.objects.count() == 6
    assert set(Insight.objects.values_list("pk", flat=True)) == set(
        Insight.objects.filter(incident__isnull=False).values_list("pk", flat=True)
    ) | {recent_event_insight.pk}
    assert AnomalyEvent.objects.filter(pk__in=purged_events).count() == 2  # anomaly's events stay

    assert retention.purge_old_records(now=NOW) == (
        {"alert_payloads": 0, "incidents": 0, "event_insights": 0}, True,
    )  # fmt: skip


def test_settings_move_the_cutoffs(settings: Any) -> None:
    settings.AIOPS_ALERT_PAYLOAD_RETENTION_DAYS = 7
    settings.AIOPS_INCIDENT_RETENTION_DAYS = 30
    payload(NOW - timedelta(days=8))
    incident(IncidentStatus.RESOLVED, NOW - timedelta(days=31))
    assert retention.purge_old_records(now=NOW)[0] == {"alert_payloads": 1, "incidents": 4, "event_insights": 0}


def test_an_unfinished_run_requeues_itself(clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "PAYLOAD_BATCH", 2)
    monkeypatch.setattr(tasks, "PURGE_RUN_SECONDS", 0)  # every batch overruns the budget
    long_ago = timezone.now() - timedelta(days=60)
    for _ in range(5):
        payload(long_ago)
    incident(IncidentStatus.RESOLVED, long_ago - timedelta(days=180))

    assert tasks.purge_old_records() == {"alert_payloads": 2}  # one batch, then out of time
    assert queued(clean_redis, "aiops.purge_old_records") == [{"requeued": 1}]
    assert AlertPayload.objects.count() == 3
    assert Incident.objects.count() == 1

    assert tasks.purge_old_records(requeued=tasks.PURGE_MAX_REQUEUES) == {"alert_payloads": 2}
    assert len(queued(clean_redis, "aiops.purge_old_records")) == 1  # the cap: no further requeue

    monkeypatch.setattr(tasks, "PURGE_RUN_SECONDS", 60)
    clean_redis.flushdb()
    assert tasks.purge_old_records(requeued=1) == {"alert_payloads": 1, "incidents": 4, "event_insights": 0}
    assert queued(clean_redis, "aiops.purge_old_records") == []
    assert not AlertPayload.objects.exists()
    assert not Incident.objects.exists()


def test_metric_points_purge_keeps_a_time_budget_and_requeues(
    clean_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = timezone.now() - timedelta(days=40)
    for queue in ("a", "b", "c"):
        metrics.ingest(metrics.parse_batch(
            [{"name": "depth", "labels": {"queue": queue}, "timestamp": (old + timedelta(minutes=i)).isoformat(),
              "value": 1.0} for i in range(3)]
        ))  # fmt: skip
    monkeypatch.setattr(metrics, "PURGE_SERIES", 1)
    assert metrics.purge_points(max_seconds=0) == (3, False)  # one series, then out of time
    monkeypatch.setattr(tasks, "PURGE_RUN_SECONDS", 0)
    assert tasks.purge_metric_points() == 3  # the next series, and the rest queued
    assert queued(clean_redis, "aiops.purge_metric_points") == [{"requeued": 1}]
    assert metrics.purge_points(max_seconds=0) == (3, True)  # the last series: nothing left to queue
    assert not MetricPoint.objects.exists()
