"""The rule-based explainer: each known situation on a crafted incident names its cause."""

from __future__ import annotations

import json
import time

import pytest

from aiops.insight import context, rules
from aiops.models import CapacityForecast, CapacityKind
from ingest.kipris.guards import CircuitBreaker
from ingest.models import HarvestRun, Organization, RunStatus
from monitoring.models import Host

from .insight_helpers import T0, alert, event, incident_of, sensor

pytestmark = pytest.mark.django_db


def explain(*events) -> rules.Answer:
    incident = incident_of(*events)
    members = [m.event for m in incident.memberships.select_related("event__sensor")]
    return rules.explain(context.build(members, title=incident.title, severity=incident.severity))


def test_leak_from_night_flow() -> None:
    answer = explain(
        event("sensor", "003", "flow", "night", evidence={"night_min": 33.6, "baseline": 24.0, "streak": 3})
    )
    assert answer.cause_code == "leak"
    assert "+40%" in answer.summary
    assert "3 consecutive nights" in answer.summary


def test_burst_flow_up_pressure_down() -> None:
    answer = explain(
        event("sensor", "007", "flow", "value", evidence={"value": 310.0, "band": [40.0, 160.0]}),
        event("sensor", "007", "pressure", "value", minutes=1, evidence={"value": 2.1, "band": [3.5, 5.5]}),
    )
    assert answer.cause_code == "burst"
    assert answer.confidence == "high"


def test_flow_up_alone_is_a_less_certain_burst() -> None:
    answer = explain(event("sensor", "007", "flow", "value", evidence={"value": 310.0, "band": [40.0, 160.0]}))
    assert (answer.cause_code, answer.confidence) == ("burst", "medium")


def test_stuck_sensor() -> None:
    answer = explain(event("sensor", "011", "flow", "system", state="stuck", evidence={"flat_minutes": 42}))
    assert answer.cause_code == "sensor_stuck"
    assert "42 minutes" in answer.summary


def test_one_silent_sensor_is_that_sensor() -> None:
    for code in ("001", "002", "003", "004"):
        sensor(code)
    answer = explain(event("sensor", "004", "flow", "system", state="gap"))
    assert answer.cause_code == "sensor_offline"


def test_many_sensors_silent_at_once_is_the_bridge_or_network() -> None:
    gaps = [event("sensor", f"{n:03d}", "flow", "system", state="gap", minutes=n % 3) for n in range(1, 9)]
    answer = explain(*gaps)
    assert answer.cause_code == "bridge_or_network"
    assert "8 sensor(s)" in answer.summary
    assert "North mostly silent" in answer.summary  # no readings at all on the site in the window


def test_host_disk_filling_with_capacity_forecast() -> None:
    Host.objects.create(name="db-1")
    CapacityForecast.objects.create(
        kind=CapacityKind.HOST_DISK, subject="db-1", window="6h", limit=95, current=88, slope_per_second=0.0001,
        seconds_to_limit=5 * 3600, points=100, computed_at=T0,
    )  # fmt: skip
    answer = explain(event("host", "db-1", "disk_percent", "ensemble", evidence={"value": 88.0}))
    assert answer.cause_code == "host_resource"
    assert "disk is filling" in answer.likely_cause
    assert "5.0 h" in answer.summary


def test_worker_down_from_alertmanager() -> None:
    answer = explain(
        alert("PipewatchWorkerDown", instance="10.0.0.5:9100", job="pipewatch-worker"),
        alert("PipewatchDetectStalled", minutes=2),
    )
    assert answer.cause_code == "worker_or_broker_down"
    assert answer.confidence == "high"


def test_kipris_quota() -> None:
    org = Organization.objects.create(name="ACME", business_number="202-81-45602")
    HarvestRun.objects.create(
        organization=org,
        status=RunStatus.PAUSED,
        error="KIPRIS quota: LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR.",
    )
    answer = explain(alert("KiprisHarvestPaused", job="pipewatch-worker"))
    assert answer.cause_code == "kipris_quota"


def test_kipris_circuit_open() -> None:
    breaker = CircuitBreaker(2, 300)
    breaker.record_failure("timeout")
    breaker.record_failure("timeout")
    answer = explain(alert("KiprisCircuitOpen"))
    assert answer.cause_code == "kipris_circuit"
    assert "circuit breaker is open" in answer.summary


def test_suspicious_account() -> None:
    answer = explain(event("account", "kim.operator", "logins", "behaviour"))
    assert answer.cause_code == "suspicious_account"
    assert "kim.operator" in answer.summary


def test_unknown_pattern_says_so() -> None:
    answer = explain(event("metric", "orders_total{shop=a}", "orders_total", "robust_z"))
    assert (answer.cause_code, answer.confidence) == ("other", "low")


def test_same_context_same_answer() -> None:
    incident = incident_of(event("sensor", "011", "flow", "system", state="stuck", evidence={"flat_minutes": 9}))
    members = [m.event for m in incident.memberships.all()]
    first = rules.explain(context.build(members))
    time.sleep(0.01)
    assert rules.explain(context.build(members)) == first


def test_failing_health_checks_are_facts(clean_redis) -> None:
    from core import health

    failing = {"ok": False, "detail": "no worker answered the ping within 1.0 s", "ms": 1000}
    clean_redis.set(health.CACHE_PREFIX + "workers", json.dumps(failing))
    incident = incident_of(event("host", "web-1", "cpu_percent", "ensemble"))
    built = context.build([m.event for m in incident.memberships.all()])
    assert built.queues["health"]["workers"].startswith("failing: no worker answered")
    verdicts = [v.rule for v in rules.verdicts(built)]
    assert verdicts[0] == "worker_or_broker_down"  # workers down outranks the host symptom they cause
    assert "host_resource" in verdicts
