"""The API's cheap paths answer exactly what the straightforward ones did.

orjson renders what DRF's JSONRenderer rendered, byte for byte but for the notation of tiny floats;
per-device JSON parsed from text equals the stored JSON; /metrics/current's one-round-trip read picks the
host that reported last.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from monitoring.models import HostSample
from monitoring.renderers import FastJSONRenderer
from monitoring.services import store
from monitoring.services.agent import AgentConfig, HostAgent

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


PAYLOAD: dict[str, Any] = {
    "series": "cpu",
    "step": None,
    "count": 3,
    "results": [
        {"host": "web-1", "timestamp": T0, "cpu_percent": 12.5, "load_1": 0.1, "cpu_per_core": [10.0, 15.25]},
        {"host": "wéb-2 ☃", "timestamp": T0 + timedelta(microseconds=120), "cpu_percent": 3.0, "bytes": 2**62},
        {"host": "seoul", "timestamp": datetime(2026, 5, 1, 9, tzinfo=ZoneInfo("Asia/Seoul")), "cpu_percent": 0.0},
    ],
    "interfaces": {"eth0": {"bytes_sent": 123, "sent_bytes_per_second": 1500.5}, "lo": {}},
    "note": 'line\u2028separator\u2029and "quotes" \\ and\nnewline',
    "lazy": gettext_lazy("No host has reported yet"),
    "decimal": Decimal("1.5"),
    "empty": [],
    "flag": True,
}


def test_renders_what_drf_renders_byte_for_byte() -> None:
    assert FastJSONRenderer().render(PAYLOAD) == JSONRenderer().render(PAYLOAD)


def test_tiny_floats_are_the_same_numbers_in_another_notation() -> None:
    values = [1e-05, 1e-07, 2.5e-4, 1e-300, 5e-324]
    fast, drf = FastJSONRenderer().render(values), JSONRenderer().render(values)
    assert fast != drf  # orjson writes 0.00001 and 1e-7 where Python writes 1e-05 and 1e-07
    assert json.loads(fast) == json.loads(drf) == values


def test_an_indent_asked_for_is_drfs_rendering() -> None:
    media_type = "application/json; indent=2"
    indented = FastJSONRenderer().render(PAYLOAD, media_type, {})
    assert indented == JSONRenderer().render(PAYLOAD, media_type, {})
    assert b'\n  "series"' in indented


def test_integers_beyond_64_bits_fall_back_to_drf() -> None:
    data = {"huge": 2**70}
    assert FastJSONRenderer().render(data) == JSONRenderer().render(data) == b'{"huge":1180591620717411303424}'


@pytest.mark.django_db
def test_raw_series_detail_equals_the_stored_json(token_client: APIClient, make_samples: Callable) -> None:
    disks = [{"mountpoint": "/", "device": "/dev/sda1", "fstype": "ext4", "percent": 63.5, "free_bytes": 2**40}]
    interfaces = {"eth0": {"bytes_sent": 10, "sent_bytes_per_second": 1.25}, "wlan0 ☃": {}}
    make_samples("a", T0, 5, values=lambda i: {"cpu_per_core": [i, 2.5 * i], "disks": disks, "interfaces": interfaces})

    cpu = token_client.get("/api/v1/metrics/cpu", {"limit": 1000}).json()["results"]
    stored = list(HostSample.objects.order_by("ts"))
    assert [point["cpu_per_core"] for point in cpu] == [sample.cpu_per_core for sample in stored]
    assert [datetime.fromisoformat(point["timestamp"]) for point in cpu] == [sample.ts for sample in stored]
    assert token_client.get("/api/v1/metrics/disk").json()["results"][-1]["disks"] == disks
    assert token_client.get("/api/v1/metrics/network").json()["results"][-1]["interfaces"] == interfaces


@pytest.mark.django_db
def test_current_defaults_to_the_host_that_reported_last(token_client: APIClient, clean_redis: redis.Redis) -> None:
    for name in ("older", "newer"):
        HostAgent(AgentConfig(interval=1, batch_size=1, host=name)).tick()

    assert token_client.get("/api/v1/metrics/current").json()["host"] == "newer"
    older = token_client.get("/api/v1/metrics/current", {"host": "older"}).json()
    assert (older["host"], older["source"]) == ("older", "agent")

    clean_redis.delete(store.current_key("newer"))  # the newest host's snapshot expired: its stored sample answers
    fallback = token_client.get("/api/v1/metrics/current").json()
    assert (fallback["host"], fallback["source"]) == ("newer", "database")
