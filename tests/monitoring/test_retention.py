"""Retention of host samples by age and by rows per host, through the daily task."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings

from monitoring.models import HostSample
from monitoring.tasks import purge_host_samples

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.mark.django_db
@override_settings(MONITORING_RETENTION_DAYS=7, MONITORING_RETENTION_MAX_ROWS=1000, MONITORING_PURGE_BATCH=7)
def test_purge_deletes_by_age_then_keeps_the_newest_rows_per_host(make_samples: Callable[..., list]) -> None:
    # "old": 10 days of hourly samples (3 days of them within the 7-day window); "busy": 1,200 recent rows.
    make_samples("old", NOW - timedelta(days=10), 240, step=timedelta(hours=1))
    make_samples("busy", NOW - timedelta(hours=2), 1200, step=timedelta(seconds=5))

    with time_machine.travel(NOW, tick=False):
        deleted = purge_host_samples()

    old = HostSample.objects.filter(host__name="old")
    assert old.count() == 7 * 24
    assert old.earliest("ts").ts == NOW - timedelta(days=7)
    busy = HostSample.objects.filter(host__name="busy")
    assert busy.count() == 1000
    assert busy.latest("ts").ts == NOW - timedelta(hours=2) + 1199 * timedelta(seconds=5)
    assert deleted == (240 - 7 * 24) + 200

    with time_machine.travel(NOW, tick=False):
        assert purge_host_samples() == 0  # idempotent
