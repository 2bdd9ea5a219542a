"""Wiring through a real worker: detect_minute on the detect queue, no double evaluation when runs overlap,
and an anomaly's open/resolve notifications reaching a local webhook after a failed first attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pandas as pd
import pytest
from django.conf import settings
from django.test import override_settings

from anomaly.models import AnomalyEvent, CriteriaVersion, DetectionRun
from anomaly.services import detect
from core.celery import app
from sensors.simulation import Fault
from tests.conftest import ChildProcess, wait_for
from tests.core.test_notify import Receiver

from .conftest import MINUTE

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def test_overlapping_runs_on_two_worker_processes_evaluate_each_minute_once(
    child_env: dict[str, str],
    criteria: CriteriaVersion,
    readings: Callable[..., pd.DataFrame],
    celery_worker: Callable[..., ChildProcess],
) -> None:
    readings(faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1))])
    celery_worker(queues="detect", concurrency=2)  # only the detect queue: routing by name prefix is tested too
    now = (MINUTE + timedelta(minutes=settings.ANOMALY_DETECT_DELAY_MINUTES, seconds=5)).isoformat()  # target: MINUTE
    first, second = (app.send_task("anomaly.detect_minute", args=[now]) for _ in range(2))
    evaluated = first.get(timeout=120) + second.get(timeout=120)
    assert sorted(run["minute"] for run in evaluated) == sorted(
        (MINUTE - timedelta(minutes=offset)).isoformat() for offset in range(15)
    )
    assert DetectionRun.objects.count() == 15
    assert AnomalyEvent.objects.get(subject="003", method="value").fired_count == 1


def test_event_notifications_reach_the_webhook_after_a_failure(
    child_env: dict[str, str],
    criteria: CriteriaVersion,
    readings: Callable[..., pd.DataFrame],
    celery_worker: Callable[..., ChildProcess],
    receiver: Receiver,
) -> None:
    hooks = {"ALERT_WEBHOOK_URL": f"{receiver.url}/am", "SLACK_WEBHOOK_URL": ""}
    receiver.script = {"/am": [503]}
    readings(end=MINUTE + timedelta(minutes=12), minutes=102,
             faults=[Fault("spike", "003", MINUTE, MINUTE + timedelta(minutes=1))])  # fmt: skip
    celery_worker(queues="default", env=hooks)
    with override_settings(**hooks):
        for offset in range(12):
            detect.detect_minute(MINUTE + timedelta(minutes=offset))
        event = AnomalyEvent.objects.get(subject="003", method="value")
        assert event.status == "resolved"
        wait_for(lambda: len(receiver.received) == 3, timeout=60, what="firing (failed, retried) and resolved")
    bodies = [body for _, body in receiver.received]
    # the retried "firing" may land after "resolved": receivers order by startsAt/endsAt, not by arrival
    assert sorted(body["status"] for body in bodies) == ["firing", "firing", "resolved"]
    assert bodies[0]["status"] == "firing"
    bodies.sort(key=lambda body: body["status"])
    assert (
        bodies[0]["alerts"][0]["labels"] | {"subject": "003", "metric": "flow", "method": "value"}
        == bodies[0]["alerts"][0]["labels"]
    )
    assert bodies[0]["groupKey"] == f"anomaly:{event.pk}"
    assert bodies[2]["alerts"][0]["endsAt"].startswith((MINUTE + timedelta(minutes=1)).date().isoformat())
