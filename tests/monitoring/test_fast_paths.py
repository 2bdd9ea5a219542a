"""The API's cheap paths answer exactly what the straightforward ones did.

orjson renders what DRF's JSONRenderer rendered, byte for byte but for the notation of tiny floats;
per-device JSON parsed from text equals the stored JSON; /metrics/current's one-round-trip read picks the
host that reported last, and its hot path (the agent's rendered snapshot, read with the throttle counters)
answers what the full DRF path answers, under the same read policy and throttles.
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
from django.test import override_settings
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


CURRENT = "/api/v1/metrics/current"


@pytest.fixture
def snapshots(clean_redis: redis.Redis) -> None:
    """Two hosts' agents have reported (each stored its sample too); "newer" last."""
    for name in ("older", "newer"):
        HostAgent(AgentConfig(interval=60, batch_size=1, host=name)).tick()


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"host": "older"}])
def test_the_hot_path_answers_what_the_full_path_answers(
    token_client: APIClient, snapshots: None, params: dict[str, str]
) -> None:
    hot = token_client.get(CURRENT, params)
    full = token_client.get(CURRENT, {**params, "format": "json"})  # any other parameter takes DRF's whole path
    assert hot.status_code == full.status_code == 200
    assert hot.content == full.content
    for header in ("Content-Type", "Allow", "Vary"):
        assert hot[header] == full[header], header
    assert (hot.json()["host"], hot.json()["source"]) == (params.get("host", "newer"), "agent")


@pytest.mark.django_db
def test_the_hot_path_returns_the_agents_bytes_as_they_are(token_client: APIClient, clean_redis: redis.Redis) -> None:
    rendered = b'{"host":"h",  "cpu_percent":1.50,"source":"agent"}'  # spacing and 1.50: no renderer wrote this
    clean_redis.set(store.current_key("h"), rendered)
    assert token_client.get(CURRENT, {"host": "h"}).content == rendered
    assert token_client.get(CURRENT, {"host": "h", "format": "json"}).content == (
        b'{"host":"h","cpu_percent":1.5,"source":"agent"}'
    )


@pytest.mark.django_db
def test_a_snapshot_from_an_agent_before_rendering_is_served_whole(
    token_client: APIClient, clean_redis: redis.Redis
) -> None:
    clean_redis.set(store.current_key("h"), json.dumps({"host": "h", "cpu_percent": 2.0}))  # no "source"
    assert token_client.get(CURRENT, {"host": "h"}).json() == {"host": "h", "cpu_percent": 2.0, "source": "agent"}


@pytest.mark.django_db
def test_other_requests_take_the_full_path(token_client: APIClient, snapshots: None) -> None:
    page = token_client.get(CURRENT, HTTP_ACCEPT="text/html")  # the browsable API
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    indented = token_client.get(CURRENT, HTTP_ACCEPT="application/json; indent=2")
    assert indented.content.startswith(b'{\n  "host": "newer"')
    assert token_client.get(CURRENT, {"host": " older "}).json()["host"] == "older"  # trimmed, as before
    assert token_client.get(CURRENT, {"host": ""}).json()["host"] == "newer"  # an empty one is no host
    blank = token_client.get(CURRENT, {"host": " "})
    assert blank.status_code == 400
    assert blank.json()["message"] == "host: This field may not be blank."
    unknown = token_client.get(CURRENT, {"host": "nope"})
    assert unknown.status_code == 404
    assert "No host named 'nope'" in unknown.json()["message"]
    assert token_client.get(CURRENT, HTTP_ACCEPT="application/xml").status_code == 406


@pytest.mark.django_db
def test_the_hot_path_counts_each_request_once_and_throttles(
    token_client: APIClient, snapshots: None, clean_redis: redis.Redis
) -> None:
    with override_settings(API_THROTTLE_USER="3/min"):
        responses = [token_client.get(CURRENT) for _ in range(4)]
    assert [response.status_code for response in responses] == [200, 200, 200, 429]
    assert responses[3].json()["error"] == "throttled"
    assert 0 < int(responses[3]["Retry-After"]) <= 60
    (key,) = clean_redis.keys("pipewatch:throttle:user:*")
    assert int(clean_redis.get(key) or 0) == 4


@pytest.mark.django_db
@pytest.mark.parametrize("public_read", [True, False])
def test_the_hot_path_follows_the_read_policy(snapshots: None, public_read: bool, clean_redis: redis.Redis) -> None:
    with override_settings(API_PUBLIC_READ=public_read):
        response = APIClient().get(CURRENT)
    if public_read:
        assert (response.status_code, response.json()["source"]) == (200, "agent")
        assert len(clean_redis.keys("pipewatch:throttle:anon:*")) == 1
    else:
        assert (response.status_code, response.json()["error"]) == (401, "not_authenticated")


@pytest.mark.django_db
def test_without_redis_the_stored_sample_answers(token_client: APIClient, snapshots: None) -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):  # nothing listens there
        response = token_client.get(CURRENT)
    assert response.status_code == 200
    assert response.json()["source"] == "database"
