"""Fixtures for the console's tests: a small plant built through the apps' own services, and users by group.

`plant` writes eight days of minute readings for sensor 001 (sensors.services.backfill.write_history), rolls them up
(forecasting's rollup.refresh), builds criteria from them (anomaly.criteria.build_from_frame), stores a
forecast issue, nights, events (anomaly.events.observe), two hours of host samples, organisations with a
finished and a failed harvest run, a model version and a running training run.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from anomaly import criteria
from anomaly import events as anomaly_events
from anomaly.models import AnomalyEvent, NightMinimum
from forecasting.models import Forecast, ModelVersion, TrainingRun
from forecasting.services import rollup
from ingest.models import Applicant, HarvestCheckpoint, HarvestRun, Organization, RunStatus
from monitoring.models import Host, HostSample
from sensors.models import Sensor
from sensors.services.backfill import write_history
from tests.monitoring.conftest import sample_row

PASSWORD = "console-test-password"


@dataclass
class Plant:
    now: datetime
    sensor: Sensor
    reading_times: pd.DatetimeIndex
    host: Host
    sample_times: list[datetime]
    open_event: AnomalyEvent
    host_event: AnomalyEvent
    resolved_event: AnomalyEvent
    organization: Organization
    failed_run: HarvestRun


def minute_readings(code: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Minute readings in [start, end]: a daily flow cycle and a steady pressure, healthy status."""
    times = pd.date_range(start, end, freq="1min", tz=UTC)
    hours = times.hour.to_numpy() + times.minute.to_numpy() / 60
    flow = 20 + 8 * np.sin((hours - 6) / 24 * 2 * np.pi)
    pressure = 3.0 + 0.1 * np.cos(hours / 24 * 2 * np.pi)
    return pd.DataFrame({"sensor": code, "ts": times, "flow": flow, "pressure": pressure, "status": 0})


def build_plant(now: datetime) -> Plant:
    now = now.replace(second=0, microsecond=0)
    sensor = Sensor.objects.create(code="001", name="north main", location="pump house 1")
    Sensor.objects.create(code="002", name="east branch")  # never reported: silent
    Sensor.objects.create(code="003", name="old line", active=False)
    frame = minute_readings("001", now - timedelta(days=8), now)
    write_history(frame)
    this_hour = now.replace(minute=0)
    rollup.refresh(this_hour, 14 * 24)
    criteria.build_from_frame(frame, source="database", detail="console test")
    Forecast.objects.bulk_create(
        Forecast(sensor=sensor, metric=metric, issued_at=this_hour, target=this_hour + timedelta(hours=step), value=v)
        for metric, v in (("flow", 21.0), ("pressure", 3.05))
        for step in range(168)
    )
    for offset in range(5):
        night = (timezone.localtime(now) - timedelta(days=offset + 1)).date()
        NightMinimum.objects.create(
            sensor=sensor, night=night, min_flow=12.0 + offset * 0.1, baseline=12.5, exceeded=False, streak=0, blocks=42
        )
    started = now - timedelta(hours=3)
    evidence = {"minute": started.isoformat(), "state": "high", "value": 40.0, "band": [10.0, 30.0], "median": 20.0}
    open_event = anomaly_events.observe(
        source="sensor",
        subject="001",
        metric="flow",
        method="value",
        at=started,
        fired=True,
        score=2.5,
        evidence=evidence,
        severity="critical",
        sensor_id=sensor.pk,
    )
    resolved = anomaly_events.observe(
        source="sensor",
        subject="001",
        metric="pressure",
        method="system",
        at=now - timedelta(hours=20),
        fired=True,
        score=1.0,
        evidence={"state": "stuck"},
        sensor_id=sensor.pk,
    )
    assert open_event is not None
    assert resolved is not None
    resolved = anomaly_events.resolve(resolved.pk, None)
    host = Host.objects.create(name="web-1", cpu_count=2, platform="Linux", interval_seconds=60, last_seen_at=now)
    sample_times = [now - timedelta(minutes=minute) for minute in range(120, -1, -1)]
    HostSample.objects.bulk_create(
        sample_row(host, ts, cpu_percent=20 + index % 10, memory_percent=40.0) for index, ts in enumerate(sample_times)
    )
    host_event = anomaly_events.observe(
        source="host",
        subject="web-1",
        metric="cpu_percent",
        method="ensemble",
        at=now - timedelta(minutes=30),
        fired=True,
        score=3.0,
        evidence={"value": 95.0},
    )
    assert host_event is not None
    organization = Organization.objects.create(
        name="Acme Water", org_type="company", business_number="101-86-00011", corporate_number="120111-0000018"
    )
    applicant = Applicant.objects.create(number="120230000001", name="Acme Water", organization=organization)
    done = HarvestRun.objects.create(
        organization=organization,
        kinds=["patent", "design"],
        status=RunStatus.DONE,
        started_at=now - timedelta(hours=2),
        finished_at=now - timedelta(hours=1),
        requests=1,
    )
    HarvestCheckpoint.objects.create(
        run=done,
        organization=organization,
        applicant=applicant,
        kind="patent",
        fetched=40,
        total=40,
        status=RunStatus.DONE,
        requests=4,
        stats={"patent": {"new": 30, "updated": 2}, "utility": {"new": 8}},
    )
    failed = HarvestRun.objects.create(
        organization=organization,
        kinds=["trademark"],
        status=RunStatus.FAILED,
        started_at=now - timedelta(minutes=50),
        finished_at=now - timedelta(minutes=49),
        error="KiprisAuthError: KIPRIS rejected the service key (code 30)",
    )
    ModelVersion.objects.create(
        metric="flow",
        status=ModelVersion.Status.ACTIVE,
        activated_at=now - timedelta(days=3),
        data_start=now - timedelta(days=60),
        data_end=now - timedelta(days=3),
        validation_start=now - timedelta(days=10),
        sensors=1,
        mae=1.2,
        baseline_mae=2.0,
        mae_24h=1.0,
        baseline_mae_24h=1.8,
        reason="beat seasonal naive",
    )
    TrainingRun.objects.create(
        metrics=["flow", "pressure"],
        status=TrainingRun.Status.RUNNING,
        requested_by="admin",
        started_at=now,
        heartbeat_at=now,
        summary={"progress": {"metric": "flow", "position": 1, "metrics": 2, "epoch": 5, "epochs": 20}},
    )
    return Plant(
        now=now,
        sensor=sensor,
        reading_times=pd.DatetimeIndex(frame["ts"]),
        host=host,
        sample_times=sample_times,
        open_event=open_event,
        host_event=host_event,
        resolved_event=resolved,
        organization=organization,
        failed_run=failed,
    )


@pytest.fixture
def plant(db: None) -> Plant:
    return build_plant(timezone.now())


def user_in(group: str | None, name: str) -> User:
    """A user in `group`; the groups come from console's data migration, re-applied after a transactional
    test flushed them (a flush re-creates permissions, not groups)."""
    if group and not Group.objects.filter(name=group).exists():
        importlib.import_module("console.migrations.0002_viewer_operator_groups").create_groups(django_apps, None)
    user = User.objects.create_user(name, password=PASSWORD)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def operator_client(db: None) -> Client:
    client = Client()
    client.force_login(user_in("operator", "olga"))
    return client


@pytest.fixture
def viewer_client(db: None) -> Client:
    client = Client()
    client.force_login(user_in("viewer", "victor"))
    return client
