"""The automatic explanation is queued once per incident of warning and above, after commit, on `insight`."""

from __future__ import annotations

import json

import pytest
import redis

from aiops.models import Incident

from .insight_helpers import alert, event, incident_of

pytestmark = pytest.mark.django_db(transaction=True)


def queued(client: redis.Redis, queue: str = "insight") -> list[dict]:
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_queued_once_on_its_own_queue(clean_redis: redis.Redis) -> None:
    incident = incident_of(alert("PipewatchWorkerDown"), alert("PipewatchDetectStalled", minutes=1))
    messages = queued(clean_redis)
    assert [m["headers"]["task"] for m in messages] == ["aiops.explain_incident"]
    assert messages[0]["headers"]["argsrepr"].startswith(f"({incident.pk},")
    assert all(not m["headers"]["task"].startswith("aiops.explain") for m in queued(clean_redis, "detect"))
    Incident.objects.get(pk=incident.pk).save()  # later saves (new members, notifications) queue nothing more
    assert len(queued(clean_redis)) == 1


def test_info_incidents_are_explained_on_demand_only(clean_redis: redis.Redis) -> None:
    incident_of(event("metric", "orders_total{shop=a}", "orders_total", "robust_z", severity="info"))
    assert queued(clean_redis) == []


def test_off_means_on_demand_only(clean_redis: redis.Redis, settings) -> None:
    settings.INSIGHT_AUTO_MIN_SEVERITY = "off"
    incident_of(alert("PipewatchWorkerDown"))
    assert queued(clean_redis) == []
