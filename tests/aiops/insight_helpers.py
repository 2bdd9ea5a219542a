"""Crafted incidents for the insight tests: real AnomalyEvent rows grouped by the real incident code."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from aiops.models import Incident
from aiops.services.incidents import GroupingSettings, assign_events
from anomaly.models import AnomalyEvent
from sensors.models import Sensor

T0 = datetime(2026, 11, 30, 18, 0, tzinfo=timezone.get_default_timezone())
WIDE = GroupingSettings(group_wait=0, group_interval=0, repeat_interval=3600, proximity=900, share=3600)


def sensor(code: str, site: str = "North") -> Sensor:
    return Sensor.objects.get_or_create(code=code, defaults={"location": site})[0]


def event(
    source: str,
    subject: str,
    metric: str,
    method: str,
    *,
    state: str = "fired",
    minutes: int = 0,
    evidence: dict[str, Any] | None = None,
    severity: str = "warning",
    site: str = "North",
) -> AnomalyEvent:
    at = T0 + timedelta(minutes=minutes)
    return AnomalyEvent.objects.create(
        source=source,
        sensor=sensor(subject, site) if source == "sensor" else None,
        subject=subject,
        metric=metric,
        method=method,
        severity=severity,
        started_at=at,
        last_fired_at=at + timedelta(minutes=4),
        fired_count=5,
        peak_score=2.0,
        evidence={"state": state, **(evidence or {})},
    )


def alert(name: str, *, minutes: int = 0, **labels: str) -> AnomalyEvent:
    return event(
        "alert",
        name,
        "alert",
        "prometheus",
        minutes=minutes,
        evidence={"labels": {"alertname": name, **labels}, "annotations": {"summary": f"{name} fired"}},
        severity="critical",
    )


def incident_of(*events: AnomalyEvent) -> Incident:
    """Group the events the way production does; they must land in one incident."""
    assign_events(WIDE)
    incidents = {e.incident_membership.incident for e in AnomalyEvent.objects.filter(pk__in=[e.pk for e in events])}
    assert len(incidents) == 1, incidents
    return incidents.pop()
