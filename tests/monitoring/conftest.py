"""Fixtures for monitoring's tests: host sample rows built like the agent builds them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from monitoring.models import Host, HostSample


def sample_row(host: Host, ts: datetime, **overrides: Any) -> HostSample:
    values: dict[str, Any] = {
        "cpu_percent": 10.0,
        "cpu_per_core": [10.0, 10.0],
        "load_1": 0.5,
        "load_5": 0.4,
        "load_15": 0.3,
        "memory_total_bytes": 8_000_000_000,
        "memory_used_bytes": 2_000_000_000,
        "memory_available_bytes": 6_000_000_000,
        "memory_percent": 25.0,
        "swap_total_bytes": 0,
        "swap_used_bytes": 0,
        "swap_percent": 0.0,
        "disk_percent": 40.0,
        "disk_read_bytes_per_second": 1000.0,
        "disk_write_bytes_per_second": 2000.0,
        "disks": [],
        "net_sent_bytes_per_second": 300.0,
        "net_recv_bytes_per_second": 400.0,
        "interfaces": {},
    }
    values.update(overrides)
    return HostSample(host=host, ts=ts, **values)


@pytest.fixture
def make_samples() -> Callable[..., list[HostSample]]:
    """Factory: `count` samples of host `name` from `start`, `step` apart; `values(i)` overrides columns."""

    def make(
        name: str,
        start: datetime,
        count: int,
        step: timedelta = timedelta(seconds=5),
        values: Callable[[int], dict[str, Any]] = lambda _: {},
    ) -> list[HostSample]:
        host, _ = Host.objects.get_or_create(name=name, defaults={"interval_seconds": step.total_seconds()})
        rows = [sample_row(host, start + index * step, **values(index)) for index in range(count)]
        return HostSample.objects.bulk_create(rows)

    return make
