"""The monitoring API: every parameter, its errors, and downsampling checked against the raw rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any

import pytest
import redis
from django.conf import LazySettings
from rest_framework.test import APIClient

from monitoring.services.agent import AgentConfig, HostAgent

T0 = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def get(token_client: APIClient, path: str, **params: Any) -> Any:
    return token_client.get(f"/api/v1/metrics/{path}", params)


def varying(index: int) -> dict[str, Any]:
    """Distinct, irregular values per sample, so a wrong bucket or aggregate cannot pass by accident."""
    return {
        "cpu_percent": float((index * 37) % 101),
        "load_1": (index % 13) / 4,
        "memory_used_bytes": 1_000_000 + index * 977,
        "net_recv_bytes_per_second": float((index * 7919) % 5003),
    }


def test_anonymous_reads_follow_api_public_read(settings: LazySettings) -> None:
    settings.API_PUBLIC_READ = False
    assert APIClient().get("/api/v1/metrics/cpu").status_code == 401
    settings.API_PUBLIC_READ = True  # the old host-metrics curl examples, without a token
    assert APIClient().get("/api/v1/metrics/cpu").status_code == 200


def test_raw_series_returns_the_newest_limit_points_oldest_first(
    token_client: APIClient, make_samples: Callable
) -> None:
    make_samples("a", T0, 150, values=varying)
    make_samples("b", T0, 10)

    body = get(token_client, "cpu", host="a").json()
    assert body["series"] == "cpu"
    assert body["step"] is None
    assert body["count"] == 100
    stamps = [point["timestamp"] for point in body["results"]]
    assert stamps == sorted(stamps)
    newest = body["results"][-1]
    assert datetime.fromisoformat(newest["timestamp"]) == T0 + 149 * timedelta(seconds=5)
    assert newest["host"] == "a"
    assert newest["cpu_percent"] == varying(149)["cpu_percent"]
    assert set(newest) == {"host", "timestamp", "cpu_percent", "load_1", "load_5", "load_15", "cpu_per_core"}

    everyone = get(token_client, "cpu", limit=1000).json()
    assert everyone["count"] == 160
    assert {point["host"] for point in everyone["results"]} == {"a", "b"}


@pytest.mark.parametrize(
    ("series", "keys"),
    [
        ("memory", {"memory_percent", "memory_used_bytes", "swap_percent"}),
        ("disk", {"disk_percent", "disk_read_bytes_per_second", "disks"}),
        ("network", {"net_sent_bytes_per_second", "net_recv_bytes_per_second", "interfaces"}),
    ],
)
def test_each_series_has_its_columns(
    token_client: APIClient, make_samples: Callable, series: str, keys: set[str]
) -> None:
    make_samples("a", T0, 3)
    point = get(token_client, series).json()["results"][0]
    assert keys <= set(point)
    assert "cpu_percent" not in point


def test_start_and_end_are_inclusive_and_accept_offsets(token_client: APIClient, make_samples: Callable) -> None:
    make_samples("a", T0, 100)
    start, end = T0 + timedelta(seconds=50), T0 + timedelta(seconds=100)
    body = get(token_client, "cpu", start=start.isoformat(), end=end.isoformat()).json()
    assert body["count"] == 11
    assert datetime.fromisoformat(body["results"][0]["timestamp"]) == start
    # "+09:00" unencoded in a URL arrives as " 09:00": still read as the offset it was meant to be.
    seoul = (start + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%S")
    response = token_client.get(f"/api/v1/metrics/cpu?start={seoul}+09:00&end={end.isoformat().replace('+', '%2B')}")
    assert response.json()["count"] == 11


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("cpu", {"start": "yesterday"}, "start: Datetime has wrong format"),
        ("cpu", {"end": "2026-13-01T00:00:00Z"}, "end: Datetime has wrong format"),
        ("cpu", {"start": "2026-05-02T00:00:00Z", "end": "2026-05-01T00:00:00Z"}, "is before start"),
        ("memory", {"limit": "1001"}, "limit must be an integer between 1 and 1000"),
        ("disk", {"limit": "0"}, "limit must be an integer between 1 and 1000"),
        ("network", {"limit": "many"}, "limit must be an integer between 1 and 1000"),
        ("cpu", {"step": "10s"}, "step must be one of 1m, 5m, 1h"),
        ("cpu", {"step": "1m", "agg": "median"}, "agg must be one of avg, max"),
        ("processes", {"limit": "101"}, "limit must be an integer between 1 and 100"),
        ("processes", {"sort_by": "disk"}, "sort_by must be cpu or memory"),
    ],
)
def test_bad_parameters_are_400_with_a_readable_message(
    token_client: APIClient, path: str, params: dict[str, str], message: str
) -> None:
    response = get(token_client, path, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert message in body["message"]


def test_unknown_host_is_404_naming_it(token_client: APIClient, make_samples: Callable) -> None:
    make_samples("a", T0, 1)
    for path in ("cpu", "current"):
        response = get(token_client, path, host="nope")
        assert response.status_code == 404
        assert "No host named 'nope'" in response.json()["message"]


@pytest.mark.parametrize(("step", "seconds"), [("1m", 60), ("5m", 300), ("1h", 3600)])
@pytest.mark.parametrize("agg", ["avg", "max"])
def test_downsampling_matches_the_raw_rows(
    token_client: APIClient, make_samples: Callable, step: str, seconds: int, agg: str
) -> None:
    start = T0 + timedelta(seconds=17)  # not on a bucket edge
    rows = make_samples("a", start, 1500, step=timedelta(seconds=7), values=varying)  # ~2.9 h
    make_samples("other", start, 50, values=lambda _: {"cpu_percent": 100.0})

    buckets: dict[datetime, list[Any]] = defaultdict(list)
    for row in rows:
        epoch = int(row.ts.timestamp())
        buckets[datetime.fromtimestamp(epoch - epoch % seconds, tz=UTC)].append(row)
    combine = fmean if agg == "avg" else max

    for series, column in (
        ("cpu", "cpu_percent"),
        ("memory", "memory_used_bytes"),
        ("network", "net_recv_bytes_per_second"),
    ):
        body = get(
            token_client,
            series,
            host="a",
            step=step,
            agg=agg,
            start=T0.isoformat(),
            end=(T0 + timedelta(hours=4)).isoformat(),
            limit=1000,
        ).json()
        assert body["step"] == step
        assert body["agg"] == agg
        points = {datetime.fromisoformat(point["timestamp"]): point for point in body["results"]}
        assert set(points) == set(buckets)
        for bucket, members in buckets.items():
            assert points[bucket]["samples"] == len(members)
            assert points[bucket][column] == pytest.approx(combine(getattr(member, column) for member in members))
            assert "cpu_per_core" not in points[bucket]


def test_downsampling_limit_keeps_the_newest_buckets(token_client: APIClient, make_samples: Callable) -> None:
    make_samples("a", T0, 600, step=timedelta(seconds=10))  # 100 minutes
    body = get(
        token_client, "cpu", step="1m", limit=10, end=(T0 + timedelta(hours=2)).isoformat(), start=T0.isoformat()
    ).json()
    assert body["count"] == 10
    assert datetime.fromisoformat(body["results"][-1]["timestamp"]) == T0 + timedelta(minutes=99)
    assert datetime.fromisoformat(body["results"][0]["timestamp"]) == T0 + timedelta(minutes=90)


def test_current_processes_and_hosts_from_a_real_agent(token_client: APIClient, clean_redis: redis.Redis) -> None:
    assert get(token_client, "current").status_code == 404
    assert get(token_client, "processes").status_code == 404

    agent = HostAgent(AgentConfig(interval=1, batch_size=1, host="live"))
    agent.tick()

    current = get(token_client, "current").json()
    assert current["host"] == "live"
    assert current["source"] == "agent"
    for key in ("cpu_percent", "cpu_per_core", "load_1", "memory_percent", "swap_percent", "disk_percent", "disks"):
        assert key in current
    assert {"net_sent_bytes_per_second", "interfaces"} <= set(current)

    by_memory = get(token_client, "processes", sort_by="memory", limit=5).json()
    assert by_memory["host"] == "live"
    assert len(by_memory["processes"]) == 5
    memory = [row["memory_percent"] for row in by_memory["processes"]]
    assert memory == sorted(memory, reverse=True)
    assert len(get(token_client, "processes").json()["processes"]) == 10
    assert len(get(token_client, "processes", limit=100, sort_by="cpu").json()["processes"]) <= 100

    hosts = get(token_client, "hosts").json()
    assert [host["name"] for host in hosts] == ["live"]
    assert hosts[0]["reporting"] is True
    assert hosts[0]["cpu_count"] > 0

    clean_redis.flushdb()  # Redis lost the snapshot: the newest stored sample still answers
    fallback = get(token_client, "current", host="live").json()
    assert fallback["source"] == "database"
    assert fallback["cpu_percent"] == current["cpu_percent"]


def test_openapi_schema_documents_the_endpoints_with_examples(token_client: APIClient) -> None:
    schema = token_client.get("/api/schema/", {"format": "json"}).json()
    for path in ("cpu", "memory", "disk", "network", "current", "processes", "hosts"):
        assert f"/api/v1/metrics/{path}" in schema["paths"]
    cpu = schema["paths"]["/api/v1/metrics/cpu"]["get"]
    assert {"start", "end", "limit", "step", "agg", "host"} <= {param["name"] for param in cpu["parameters"]}
    assert cpu["responses"]["200"]["content"]["application/json"]["examples"]
