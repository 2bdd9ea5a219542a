"""Capacity: a filling disk gets a time-to-limit, a warning event when it is under 24 h away, the gauge,
and the event resolves when the trend turns; a custom series with a limit is forecast the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from aiops.models import CapacityForecast, MetricSeries
from aiops.services import capacity, metrics
from anomaly.models import AnomalyEvent
from core.metrics import render_latest
from monitoring.models import Host, HostSample

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
COMMON = {"cpu_percent": 5, "cpu_per_core": [], "load_1": 0, "load_5": 0, "load_15": 0, "memory_total_bytes": 1,
          "memory_used_bytes": 1, "memory_available_bytes": 0, "memory_percent": 40, "swap_total_bytes": 0,
          "swap_used_bytes": 0, "swap_percent": 0, "disk_read_bytes_per_second": 0, "disk_write_bytes_per_second": 0,
          "net_sent_bytes_per_second": 0, "net_recv_bytes_per_second": 0}  # fmt: skip


def disk_samples(host: Host, start: datetime, end: datetime, level: Any) -> None:
    """One sample a minute; `level(hours since start)` gives the disk percent (plus a little noise)."""
    rng = np.random.default_rng(4)
    minutes = int((end - start).total_seconds() // 60)
    HostSample.objects.bulk_create(
        [
            HostSample(
                host=host, ts=start + timedelta(minutes=m), disk_percent=level(m / 60) + rng.normal(0, 0.2), **COMMON
            )
            for m in range(minutes)
        ],
        batch_size=2000,
    )


@pytest.mark.django_db
def test_a_filling_disk_warns_and_resolves_when_the_trend_turns() -> None:
    host = Host.objects.create(name="db-1")
    # 2 days at 50%, then 6 h filling at 2%/h: 62% now, 95% in 16.5 h
    start = NOW - timedelta(days=2, hours=6)
    disk_samples(host, start, NOW, lambda h: 50.0 if h < 48 else 50.0 + 2.0 * (h - 48))
    results = {r["subject"] + "/" + r["kind"]: r for r in capacity.run_capacity(NOW)}
    disk = results["db-1/host_disk"]
    assert disk["fired"] is True
    assert disk["window"] == "6h"
    assert disk["seconds_to_limit"] == pytest.approx(16.5 * 3600, rel=0.05)
    # the 7-day window sees the same data as mostly flat: a later, slower crossing (or none)
    seven = CapacityForecast.objects.get(kind="host_disk", subject="db-1", window="7d")
    assert seven.seconds_to_limit is None or seven.seconds_to_limit > disk["seconds_to_limit"]
    assert results["db-1/host_memory"]["fired"] is False  # flat memory never reaches its limit
    event = AnomalyEvent.objects.get(method="capacity")
    assert (event.source, event.subject, event.metric, event.status) == ("host", "db-1", "disk_percent", "open")
    assert event.evidence["attributes"] == {"host": "db-1"}
    exposition = render_latest().decode()
    assert 'pipewatch_capacity_seconds_to_limit{kind="host_disk",series="disk_percent",subject="db-1",window="6h"}' in (
        exposition
    )

    # a cleanup: the disk drops and stays flat for 6 h; the 6-hour trend turns and the warning resolves
    later = NOW + timedelta(hours=6)
    disk_samples(host, NOW, later, lambda h: 40.0)
    again = {r["subject"] + "/" + r["kind"]: r for r in capacity.run_capacity(later)}
    assert again["db-1/host_disk"]["fired"] is False
    event.refresh_from_db()
    assert event.status == "resolved"


@pytest.mark.django_db
def test_a_custom_series_with_a_limit() -> None:
    points = [{"name": "queue_bytes", "labels": {"host": "mq-1"}, "timestamp": (NOW - timedelta(minutes=m)).isoformat(),
               "value": 1000.0 - m} for m in range(360, 0, -1)]  # fmt: skip  # +1 per minute, 640..999
    metrics.ingest(metrics.parse_batch(points))
    MetricSeries.objects.update(limit=1999.0)  # 1,000 minutes away at +1/min
    result = next(r for r in capacity.run_capacity(NOW) if r["kind"] == "metric")
    assert result["fired"] is True
    assert result["seconds_to_limit"] == pytest.approx(1000 * 60, rel=0.02)
    event = AnomalyEvent.objects.get(method="capacity")
    assert (event.source, event.subject) == ("metric", "queue_bytes{host=mq-1}")
    assert event.evidence["attributes"] == {"host": "mq-1"}  # shared with the host's events for incidents


def test_window_parsing() -> None:
    assert [capacity.window_seconds(w) for w in ("30m", "6h", "7d")] == [1800, 21600, 604800]
    with pytest.raises(ValueError, match="must look like"):
        capacity.window_seconds("a week")
