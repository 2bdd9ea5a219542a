"""The "bridge" health check reads the bridges' heartbeats in Redis."""

from __future__ import annotations

import json
import time

import pytest
import redis
from django.test import Client, override_settings

from sensors.bridge import HEARTBEAT_PREFIX
from sensors.health import bridge_check


def beat(client: redis.Redis, name: str = "ttyUSB0", age: float = 0, **state: object) -> None:
    payload = {
        "at": time.time() - age,
        "url": "/dev/ttyUSB0",
        "connected": True,
        "database_ok": True,
        "spool_depth": 0,
        "last_frame_at": time.time() - 20,
        **state,
    }
    client.set(HEARTBEAT_PREFIX + name, json.dumps(payload))


def test_fresh_heartbeat_with_open_port_is_ok(clean_redis: redis.Redis) -> None:
    beat(clean_redis)
    result = bridge_check()
    assert result.ok
    assert "ttyUSB0: last frame 20 s ago, spool 0" in result.detail


@override_settings(SENSORS_BRIDGE_STALE_SECONDS=30)
def test_stale_heartbeat_fails(clean_redis: redis.Redis) -> None:
    beat(clean_redis, age=45)
    result = bridge_check()
    assert not result.ok
    assert "ttyUSB0: no heartbeat for 45 s" in result.detail


def test_closed_port_or_spooling_bridge_fails(clean_redis: redis.Redis) -> None:
    beat(clean_redis, "a", connected=False)
    beat(clean_redis, "b", database_ok=False, spool_depth=120)
    result = bridge_check()
    assert not result.ok
    assert "a: port /dev/ttyUSB0 is not open" in result.detail
    assert "b: database unreachable, 120 readings spooled" in result.detail


@pytest.mark.parametrize(("required", "ok"), [(False, True), (True, False)])
def test_no_bridge_fails_only_where_one_is_required(clean_redis: redis.Redis, required: bool, ok: bool) -> None:
    with override_settings(SENSORS_BRIDGE_REQUIRED=required):
        result = bridge_check()
    assert result.ok is ok
    assert result.detail == "no serial bridge is running"


@pytest.mark.django_db
def test_health_endpoint_names_the_failing_bridge(clean_redis: redis.Redis) -> None:
    beat(clean_redis, connected=False)
    body = Client().get("/api/v1/health").json()
    assert "bridge" in body["failing"]
    assert body["checks"]["bridge"]["detail"] == "ttyUSB0: port /dev/ttyUSB0 is not open"
