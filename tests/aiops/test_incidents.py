"""Incident grouping on events of every source (sensor, host, metric, account, alert), with the route
timers: group_wait, group_interval, repeat_interval; one message per incident; API and admin."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.contrib.auth.models import User
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from aiops.models import Incident
from aiops.services import incidents
from aiops.services.incidents import GroupingSettings
from anomaly import events
from anomaly.models import AnomalyEvent
from sensors.models import Sensor

T = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
CONFIG = GroupingSettings(group_wait=30, group_interval=300, repeat_interval=3600, proximity=300, share=3600)


def event(source: str, subject: str, at: datetime, **fields: Any) -> AnomalyEvent:
    return AnomalyEvent.objects.create(
        source=source, subject=subject, metric=fields.pop("metric", "m"), method=fields.pop("method", "x"),
        started_at=at, last_fired_at=at, **fields,
    )  # fmt: skip


def delivered(client: redis.Redis) -> list[dict[str, Any]]:
    """Payloads of the core.deliver_notification tasks waiting in the broker (the Alertmanager-shaped body)."""
    payloads = []
    for raw in reversed(client.lrange("default", 0, -1)):  # kombu LPUSHes: oldest last
        message = json.loads(raw)
        if message["headers"]["task"] == "core.deliver_notification":
            args, _, _ = json.loads(base64.b64decode(message["body"]))
            payloads.append(args[1])
    return payloads


@pytest.fixture
def storm(db: None) -> dict[str, AnomalyEvent]:
    """Five sources at once around web-1 and the North site, one sensor later, one account much later."""
    north = [Sensor.objects.create(code=code, location="North") for code in ("001", "002")]
    return {
        "sensor": event("sensor", "001", T, sensor=north[0], metric="flow", method="system"),
        "host": event("host", "web-1", T + timedelta(seconds=20), metric="cpu_percent"),
        "alert": event("alert", "instance=web-1:9100,job=node", T + timedelta(seconds=40), metric="HostDown",
                       evidence={"labels": {"alertname": "HostDown", "instance": "web-1:9100", "job": "node"}}),
        "metric": event("metric", "queue_depth{host=web-1}", T + timedelta(seconds=50), metric="queue_depth",
                        evidence={"labels": {"host": "web-1"}}),
        "late_sensor": event("sensor", "002", T + timedelta(minutes=40), sensor=north[1], metric="pressure"),
        "account": event("account", "alice", T + timedelta(hours=3), evidence={"attributes": {"org": "ACME"}}),
    }  # fmt: skip


def test_grouping_by_shared_attributes_and_time(storm: dict[str, AnomalyEvent]) -> None:
    assert incidents.assign_events(CONFIG) == 6
    first = storm["sensor"].incident_membership.incident
    for name in ("host", "alert", "metric", "late_sensor"):
        assert AnomalyEvent.objects.get(pk=storm[name].pk).incident_membership.incident == first, name
    matched = {m.event.source + ":" + m.event.subject: m.matched_on for m in first.memberships.select_related("event")}
    assert matched == {
        "sensor:001": "first member",
        "host:web-1": "time",  # 20 s later, nothing shared with a sensor: joined by proximity
        "alert:instance=web-1:9100,job=node": "host=web-1",  # the instance label names the host
        "metric:queue_depth{host=web-1}": "host=web-1",
        "sensor:002": "site=North",  # 40 minutes later: only the shared site joins it
    }
    assert first.group_key == "site=North"
    assert first.attributes["source"] == ["alert", "host", "metric", "sensor"]
    assert first.attributes["host"] == ["web-1"]
    account = AnomalyEvent.objects.get(pk=storm["account"].pk).incident_membership.incident
    assert account != first
    assert account.group_key == "org=ACME"
    assert incidents.assign_events(CONFIG) == 0  # every event is placed once


@override_settings(ALERT_WEBHOOK_URL="http://127.0.0.1:9/hook", SLACK_WEBHOOK_URL="")
def test_route_timers_one_message_per_incident(
    storm: dict[str, AnomalyEvent], clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable
) -> None:
    AnomalyEvent.objects.filter(pk__in=[storm["late_sensor"].pk, storm["account"].pk]).delete()
    incidents.assign_events(CONFIG)
    incident = Incident.objects.get()
    now = incident.created_at
    with django_capture_on_commit_callbacks(execute=True):
        assert incidents.notify_due(now + timedelta(seconds=10), CONFIG) == []  # inside group_wait
        assert incidents.notify_due(now + timedelta(seconds=31), CONFIG) == [(incident.pk, "first")]
        assert incidents.notify_due(now + timedelta(seconds=32), CONFIG) == []  # sent once
    [message] = delivered(clean_redis)
    assert message["status"] == "firing"
    assert message["groupKey"] == f"incident:{incident.pk}:0"
    description = message["alerts"][0]["annotations"]["description"]
    assert description.startswith("4 member(s), grouped by site=North")
    for line in ("sensor 001 flow system", "host web-1 cpu_percent", "alert instance=web-1:9100", "metric queue_depth"):
        assert line in description

    # a new member: an update, but not before group_interval since the first message
    late = event("host", "web-1", T + timedelta(minutes=2), metric="disk_percent")
    incidents.assign_events(CONFIG)
    assert late.incident_membership.incident == incident
    with django_capture_on_commit_callbacks(execute=True):
        assert incidents.notify_due(now + timedelta(seconds=120), CONFIG) == []
        assert incidents.notify_due(now + timedelta(seconds=332), CONFIG) == [(incident.pk, "update")]
        # unresolved and unchanged: a reminder after repeat_interval; none once acknowledged
        assert incidents.notify_due(now + timedelta(seconds=332 + 3601), CONFIG) == [(incident.pk, "repeat")]
    incidents.acknowledge(incident.pk, None)
    assert incidents.notify_due(now + timedelta(seconds=332 + 7300), CONFIG) == []
    assert len(delivered(clean_redis)) == 3

    # members resolve on their own: the incident resolves when the last one has, with one message
    for member in AnomalyEvent.objects.all()[1:]:
        events.resolve(member.pk, None)
    assert incidents.resolve_finished() == 0
    events.resolve(AnomalyEvent.objects.exclude(status="resolved").get().pk, None)
    assert incidents.resolve_finished() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert incidents.notify_due(timezone.now(), CONFIG) == [(incident.pk, "resolved")]
        assert incidents.notify_due(timezone.now(), CONFIG) == []
    assert [m["status"] for m in delivered(clean_redis)] == ["firing", "firing", "firing", "resolved"]


def test_resolved_within_group_wait_sends_nothing(db: None) -> None:
    quick = event("host", "web-2", T)
    incidents.assign_events(CONFIG)
    events.resolve(quick.pk, None)
    assert incidents.resolve_finished() == 1
    assert incidents.notify_due(timezone.now() + timedelta(hours=1), CONFIG) == []


def test_api_and_admin(storm: dict[str, AnomalyEvent], token_client: APIClient) -> None:
    incidents.assign_events(CONFIG)
    listed = token_client.get("/api/v1/aiops/incidents/", {"status": "open"}).json()
    assert listed["count"] == 2
    first = next(item for item in listed["results"] if item["member_count"] == 5)
    detail = token_client.get(f"/api/v1/aiops/incidents/{first['id']}/").json()
    assert {m["event"]["source"] for m in detail["memberships"]} == {"sensor", "host", "alert", "metric"}
    acked = token_client.post(f"/api/v1/aiops/incidents/{first['id']}/acknowledge/")
    assert acked.status_code == 200
    assert acked.json()["status"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "operator"
    resolved = token_client.post(f"/api/v1/aiops/incidents/{first['id']}/resolve/").json()
    assert resolved["status"] == "resolved"
    assert {m["event"]["status"] for m in resolved["memberships"]} == {"resolved"}
    again = token_client.post(f"/api/v1/aiops/incidents/{first['id']}/resolve/")
    assert again.status_code == 400
    assert "already resolved" in again.json()["message"]
    assert APIClient().post(f"/api/v1/aiops/incidents/{first['id']}/acknowledge/").status_code == 401

    admin = User.objects.create_superuser("admin", password="pw")
    browser = Client()
    browser.force_login(admin)
    page = browser.get(f"/admin/aiops/incident/{first['id']}/change/")
    assert page.status_code == 200
    assert b"site=North" in page.content
    assert browser.get("/admin/aiops/incident/").status_code == 200


def test_replayed_history_joins_no_incident(db: None) -> None:
    """Events that replay_detection finds in history are not an outage now: no incident, no message."""
    now = timezone.now()
    event("sensor", "003", now - timedelta(minutes=5), metric="flow", method="night", replayed=True)
    live = event("sensor", "003", now - timedelta(minutes=5), metric="flow", method="night")
    assert incidents.assign_events(CONFIG) == 1
    assert Incident.objects.get().memberships.get().event == live
