"""POST /api/v1/aiops/alerts: Alertmanager's webhook v4 with bearer or basic auth, archived first, firing
alerts open `alert` events (grouped into an incident at once), resolved ones close them; bad bodies 400."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from aiops.models import AlertPayload, IncidentMember
from anomaly.models import AnomalyEvent

URL = "/api/v1/aiops/alerts"
LABELS = {"alertname": "PipewatchWorkerDown", "instance": "worker:9100", "job": "pipewatch-worker",
          "pool": "default", "severity": "critical"}  # fmt: skip


def payload(status: str) -> dict[str, Any]:
    return {
        "version": "4", "groupKey": '{}:{alertname="PipewatchWorkerDown"}', "status": status, "receiver": "pipewatch",
        "groupLabels": {"alertname": "PipewatchWorkerDown"}, "commonLabels": LABELS, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
        "alerts": [{"status": status, "labels": LABELS, "annotations": {"summary": "Celery worker worker:9100 is down"},
                    "startsAt": "2026-11-30T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3d4e5f60708"}],
    }  # fmt: skip


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.django_db
@override_settings(AIOPS_ALERTS_TOKEN="s3cret-token", AIOPS_ALERTS_BASIC_USER="am", AIOPS_ALERTS_BASIC_PASSWORD="pw")
def test_firing_then_resolved() -> None:
    client = APIClient()
    assert client.post(URL, payload("firing"), format="json").status_code == 401
    assert client.post(URL, payload("firing"), format="json", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.post(URL, payload("firing"), format="json", HTTP_AUTHORIZATION=basic("am", "nope")).status_code == 401

    firing = client.post(URL, payload("firing"), format="json", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert firing.status_code == 200, firing.content
    event = AnomalyEvent.objects.get(source="alert")
    assert event.metric == "PipewatchWorkerDown"
    assert event.subject == "instance=worker:9100,job=pipewatch-worker,pool=default"
    assert event.severity == "critical"
    assert event.evidence["annotations"]["summary"] == "Celery worker worker:9100 is down"
    assert IncidentMember.objects.get(event=event).incident.attributes["host"] == ["worker"]  # grouped at once

    # a resend (Alertmanager's repeat_interval): the same event
    again = client.post(URL, payload("firing"), format="json", HTTP_AUTHORIZATION=basic("am", "pw"))
    assert again.status_code == 200
    assert AnomalyEvent.objects.filter(source="alert").count() == 1

    resolved = client.post(URL, payload("resolved"), format="json", HTTP_AUTHORIZATION=basic("am", "pw"))
    assert resolved.status_code == 200
    event.refresh_from_db()
    assert event.status == "resolved"
    assert AlertPayload.objects.filter(processed_at__isnull=False).count() == 3


@pytest.mark.django_db
@override_settings(AIOPS_ALERTS_TOKEN="s3cret-token")
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version": "4"}, "an object with an alerts array is expected"),
        ({**payload("firing"), "version": "3"}, "webhook version '3' is not supported"),
        ({"alerts": [{"status": "firing", "labels": {"job": "x"}}]}, "alerts[0] has no alertname label"),
        ({"alerts": [{"status": "burning", "labels": LABELS}]}, "alerts[0].status must be firing or resolved"),
    ],
)
def test_bad_bodies_are_400_and_kept(body: dict[str, Any], message: str) -> None:
    response = APIClient().post(URL, body, format="json", HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert response.status_code == 400
    assert message in response.json()["message"]
    kept = AlertPayload.objects.get()
    assert kept.processed_at is None
    assert message in kept.error
    assert not AnomalyEvent.objects.exists()


@pytest.mark.django_db
def test_no_credentials_configured_refuses_everyone() -> None:
    response = APIClient().post(URL, payload("firing"), format="json", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401
