"""Host anomaly detection: an injected CPU spike opens one host event, notifies, and resolves after it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.test import override_settings

from anomaly.models import AnomalyEvent
from monitoring.tasks import detect_host_anomalies

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
SPIKE = T0 + timedelta(hours=6)  # after the default detector's warm-up (288 minutes of history)
pytestmark = pytest.mark.django_db


def host_load(spike_minutes: int) -> Callable[[int], dict[str, float]]:
    """A busy-ish host (CPU 20-30 %, noisy) sampled every 10 s, with CPU at ~95 % for `spike_minutes`."""
    rng = random.Random(7)

    def values(index: int) -> dict[str, float]:
        at = T0 + index * timedelta(seconds=10)
        spiking = SPIKE <= at < SPIKE + timedelta(minutes=spike_minutes)
        return {
            "cpu_percent": 95.0 + rng.uniform(-2, 2) if spiking else 25.0 + rng.uniform(-5, 5),
            "memory_percent": 40.0 + rng.uniform(-0.5, 0.5),
            "disk_percent": 55.0,
            "net_sent_bytes_per_second": 2000.0 + rng.uniform(-300, 300),
            "net_recv_bytes_per_second": 3000.0 + rng.uniform(-300, 300),
        }

    return values


def run(minute: datetime) -> int:
    return detect_host_anomalies(minute.isoformat())


@override_settings(
    ALERT_WEBHOOK_URL="http://127.0.0.1:9/hook",
    ANOMALY_CLEAN_MINUTES=5,
    MONITORING_DETECT_HISTORY_MINUTES=360,
    ANOMALY_EVENT_NOTIFICATIONS=True,  # per-event messages (aiops' incidents replace them by default)
)
def test_cpu_spike_opens_one_event_and_resolves_after_clean_minutes(
    make_samples: Callable, clean_redis: redis.Redis, django_capture_on_commit_callbacks: Callable
) -> None:
    minutes = 6 * 60 + 20
    make_samples("app-1", T0, minutes * 6, step=timedelta(seconds=10), values=host_load(spike_minutes=3))

    for minute in range(-10, 0):  # the quiet minutes before: nothing fires
        assert run(SPIKE + timedelta(minutes=minute)) == 0
    assert not AnomalyEvent.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        fired = run(SPIKE)
    assert fired >= 1
    event = AnomalyEvent.objects.get()
    assert (event.source, event.subject, event.metric, event.method) == ("host", "app-1", "cpu_percent", "likelihood")
    assert event.status == "open"
    assert event.started_at == SPIKE
    assert event.evidence["value"] == pytest.approx(95, abs=2.5)
    # The notification went to the broker for delivery (Alertmanager-shaped webhook).
    queued = [json.loads(message) for message in clean_redis.lrange("default", 0, -1)]
    assert any(f"anomaly:{event.pk}" in json.dumps(message) for message in queued)

    run(SPIKE)  # a re-run of the same minute changes nothing
    assert AnomalyEvent.objects.get().fired_count == 1

    for minute in range(1, 12):
        run(SPIKE + timedelta(minutes=minute))
    event.refresh_from_db()
    assert event.status == "resolved"
    assert event.fired_count >= 2
    assert event.ended_at is not None
    assert AnomalyEvent.objects.count() == 1
    assert not AnomalyEvent.objects.exclude(metric="cpu_percent").exists(), "only CPU was disturbed"


def test_a_tiny_change_on_a_flat_series_does_not_fire(make_samples: Callable) -> None:
    """Disk usage flat at 55.0 % for hours, then 55.5 %: a huge robust score, but nothing an operator needs."""
    make_samples(
        "flat",
        T0,
        6 * 60 * 6,
        step=timedelta(seconds=10),
        values=lambda i: {"disk_percent": 55.0 + 0.5 * (i >= 359 * 6)},
    )
    assert run(T0 + timedelta(minutes=359)) == 0
    assert not AnomalyEvent.objects.exists()


def test_a_minute_without_samples_is_not_evaluated(make_samples: Callable) -> None:
    make_samples("gone", T0, 60, step=timedelta(seconds=10))
    assert run(T0 + timedelta(hours=1)) == 0
    assert not AnomalyEvent.objects.exists()


@pytest.mark.parametrize("method", ["zscore", "ensemble"])
def test_the_configured_method_is_the_one_that_runs(make_samples: Callable, method: str) -> None:
    """MONITORING_DETECT_METHOD switches the detector: the spike is found and the event names the method."""
    make_samples("app-1", T0, (6 * 60 + 5) * 6, step=timedelta(seconds=10), values=host_load(spike_minutes=3))
    with override_settings(MONITORING_DETECT_METHOD=method, MONITORING_DETECT_HISTORY_MINUTES=360):
        for minute in range(-5, 0):
            run(SPIKE + timedelta(minutes=minute))
        assert not AnomalyEvent.objects.exists()
        assert run(SPIKE) >= 1
    event = AnomalyEvent.objects.get(metric="cpu_percent")
    assert (event.source, event.subject, event.method) == ("host", "app-1", method)
