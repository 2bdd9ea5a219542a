"""Health: cached passing checks (shared in Redis, refreshed in the background), and monitoring's checks."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import redis
import time_machine
from django.test import Client, override_settings
from django.utils import timezone

from core import health
from monitoring.models import Host
from monitoring.services.agent import AgentConfig, HostAgent
from monitoring.services.store import HOSTS_KEY
from tests.conftest import wait_for


class Flaky:
    """A check whose answer the test sets, counting how often it really ran."""

    def __init__(self) -> None:
        self.ok = True
        self.calls = 0

    def __call__(self) -> health.CheckResult:
        self.calls += 1
        return health.CheckResult(ok=self.ok, detail=f"call {self.calls}")


@pytest.fixture
def only_checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, health.HealthCheck]:
    """An empty registry for the test (the real checks ping workers that these tests do not start)."""
    checks: dict[str, health.HealthCheck] = {}
    monkeypatch.setattr(health, "_checks", checks)
    monkeypatch.setattr(health, "_cache_seconds", {})
    return checks


@override_settings(HEALTH_CACHE_SECONDS=10)
def test_a_passing_check_is_served_from_the_cache_until_stale_then_refreshed_in_background(
    only_checks: dict, clean_redis: redis.Redis
) -> None:
    check = Flaky()
    health.register("component")(check)

    first = health.run_all()["component"]
    assert first["cached"] is False
    assert check.calls == 1
    second = health.run_all()["component"]
    assert second["cached"] is True
    assert second["detail"] == "call 1"
    assert check.calls == 1

    with time_machine.travel(timezone.now() + timedelta(seconds=15)):
        stale = health.run_all()["component"]  # served at once, refreshed behind it
        assert stale["cached"] is True
        cached = lambda: json.loads(clean_redis.get("pipewatch:health:component") or b"{}")  # noqa: E731
        wait_for(lambda: cached().get("detail") == "call 2", timeout=10, what="the background refresh")
        fresh = health.run_all()["component"]
        assert (fresh["detail"], fresh["cached"]) == ("call 2", True)
        assert check.calls == 2


@override_settings(HEALTH_CACHE_SECONDS=10)
def test_a_failure_replaces_the_cached_pass_and_is_reused_only_briefly(
    only_checks: dict, clean_redis: redis.Redis
) -> None:
    check = Flaky()
    health.register("component")(check)
    health.run_all()
    check.ok = False
    later = timezone.now() + timedelta(seconds=15)
    with time_machine.travel(later, tick=False):
        health.run_all()  # stale pass served; the background refresh finds the failure
        cached = lambda: json.loads(clean_redis.get("pipewatch:health:component") or b"{}")  # noqa: E731
        wait_for(lambda: cached().get("ok") is False, timeout=10, what="the refresh to store the failure")
        failing = health.run_all()["component"]
        assert (failing["ok"], failing["detail"], failing["cached"]) == (False, "call 2", True)
        assert check.calls == 2  # a crowd polling a failing component runs it once per window
    with time_machine.travel(later + timedelta(seconds=health.FAILURE_CACHE_SECONDS + 0.5), tick=False):
        assert health.run_all()["component"]["cached"] is False
        assert check.calls == 3
        check.ok = True
    with time_machine.travel(later + timedelta(seconds=2 * health.FAILURE_CACHE_SECONDS + 1), tick=False):
        recovered = health.run_all()["component"]
        assert (recovered["ok"], recovered["cached"]) == (True, False)


def test_cache_seconds_zero_runs_every_time(only_checks: dict) -> None:
    check = Flaky()
    health.register("live", cache_seconds=0)(check)
    health.run_all()
    health.run_all()
    assert check.calls == 2


# Checks run in pool threads with their own connections: the rows must be committed (transactional db).
@pytest.mark.django_db(transaction=True)
@override_settings(HEALTH_WORKER_PING_TIMEOUT=0.1)  # no worker runs here: don't wait for one
def test_host_agents_check(clean_redis: redis.Redis) -> None:
    first = health.run_all()["host_agents"]
    assert (first["ok"], first["detail"], first["cached"]) == (True, "no host agent registered", False)

    HostAgent(AgentConfig(interval=5, batch_size=1, host="db-1")).tick()
    clean_redis.delete("pipewatch:health:host_agents")
    assert health.run_all()["host_agents"]["detail"] == "1 reporting"

    clean_redis.zadd(HOSTS_KEY, {"db-1": time.time() - 60})  # 5 s interval: 3 intervals + 10 s = 25 s allowed
    clean_redis.delete("pipewatch:health:host_agents")
    result = health.run_all()["host_agents"]
    assert result["ok"] is False
    assert "not reporting: db-1 (60 s ago)" in str(result["detail"])

    Host.objects.filter(name="db-1").update(active=False)  # retired in the admin: no longer expected
    clean_redis.delete("pipewatch:health:host_agents")  # the failure is cached for a moment
    assert health.run_all()["host_agents"]["ok"] is True


@pytest.mark.django_db
def test_health_endpoint_lists_monitoring_checks() -> None:
    body = Client().get("/api/v1/health").json()
    assert "host_agents" in body["checks"]
    assert body["checks"]["host_agents"]["ok"] is True
