"""Token bucket, monthly budget and circuit breaker on the real Redis, with the simulator as KIPRIS."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.conf import LazySettings, settings
from prometheus_client.parser import text_string_to_metric_families

from core.metrics import render_latest
from ingest.kipris.client import KiprisClient
from ingest.kipris.errors import BudgetExhaustedError, CircuitOpenError, TransientError
from ingest.kipris.guards import CircuitBreaker, MonthlyBudget, RequestGuard, TokenBucket
from ingest.simulator import max_in_window

from .conftest import API_KEY, Simulator


def queued_alerts(client: redis.Redis) -> list[dict[str, Any]]:
    """Alertmanager-shaped payloads core.notify queued for delivery (Celery messages on `default`)."""
    payloads = []
    for raw in reversed(client.lrange("default", 0, -1)):  # kombu LPUSHes: oldest last
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        payloads.append(args[1])
    return payloads


@pytest.fixture
def alert_channel(settings: LazySettings) -> None:
    settings.ALERT_WEBHOOK_URL = "http://127.0.0.1:9/alerts"
    settings.SLACK_WEBHOOK_URL = ""


def test_token_bucket_holds_rate_and_burst_across_threads(clean_redis: redis.Redis) -> None:
    rate, burst, calls = 20.0, 5, 60
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        bucket = TokenBucket(rate, burst, client=redis.Redis.from_url(settings.REDIS_URL))
        for _ in range(calls // 3):
            bucket.acquire()
            with lock:
                stamps.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.time() - started
    assert len(stamps) == calls
    assert max_in_window(stamps, 1.0) <= rate + burst
    assert elapsed >= (calls - burst) / rate * 0.97  # never faster than the rate on average


def test_token_bucket_rejects_nonsense_settings(clean_redis: redis.Redis) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        TokenBucket(0, 10, client=clean_redis)


@pytest.mark.usefixtures("alert_channel")
def test_monthly_budget_stops_before_it_is_exceeded_and_alerts(clean_redis: redis.Redis) -> None:
    budget = MonthlyBudget(10, alert_ratio=0.8, client=clean_redis)
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        for expected in range(1, 11):
            assert budget.take() == expected
        with pytest.raises(BudgetExhaustedError, match="budget of 10 used up for 2026-11"):
            budget.take()
        assert budget.used() == 10
    alerts = [p for p in queued_alerts(clean_redis) if p["groupKey"] == "kipris:budget:2026-11"]
    assert len(alerts) == 1
    assert "8 of 10" in alerts[0]["commonAnnotations"]["description"]
    # A new month (Korean time) starts a new count.
    with time_machine.travel(datetime(2026, 11, 30, 16, tzinfo=UTC), tick=False):  # 01:00 on Dec 1 in Seoul
        assert budget.take() == 1


@pytest.mark.usefixtures("alert_channel")
def test_circuit_opens_after_consecutive_failures_and_closes_on_success(
    simulator: Simulator, clean_redis: redis.Redis
) -> None:
    guard = RequestGuard(
        TokenBucket(1000, 100, client=clean_redis),
        MonthlyBudget(0, client=clean_redis),
        CircuitBreaker(3, 60, client=clean_redis),
    )
    client = KiprisClient(simulator.url, API_KEY, guard=guard)
    simulator.control(faults=[{"kind": "http500", "count": 3}])
    for _ in range(3):
        with pytest.raises(TransientError):
            client.find_applicants("101-86-00011", "")
    with pytest.raises(CircuitOpenError) as raised:
        client.find_applicants("101-86-00011", "")
    assert 55 < raised.value.retry_after <= 60
    assert simulator.stats()["requests"] == 3  # the open circuit sent nothing
    firing = [p for p in queued_alerts(clean_redis) if p["groupKey"] == "kipris:circuit"]
    assert [p["status"] for p in firing] == ["firing"]
    assert circuit_gauge() == 1

    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61)):
        client.find_applicants("101-86-00011", "")  # half-open: one call goes through and succeeds
        guard.circuit.check()  # closed again
    statuses = [p["status"] for p in queued_alerts(clean_redis) if p["groupKey"] == "kipris:circuit"]
    assert statuses == ["firing", "resolved"]
    assert circuit_gauge() == 0


def circuit_gauge() -> float:
    """kipris_circuit_open as /metrics exposes it (all processes merged)."""
    families = text_string_to_metric_families(render_latest().decode())
    (value,) = [
        sample.value for family in families for sample in family.samples if sample.name == "kipris_circuit_open"
    ]
    return value


def test_half_open_failure_reopens_at_once(simulator: Simulator, clean_redis: redis.Redis) -> None:
    circuit = CircuitBreaker(2, 30, client=clean_redis)
    guard = RequestGuard(TokenBucket(1000, 100, client=clean_redis), MonthlyBudget(0, client=clean_redis), circuit)
    client = KiprisClient(simulator.url, API_KEY, guard=guard)
    simulator.control(faults=[{"kind": "http503", "count": 3}])
    for _ in range(2):
        with pytest.raises(TransientError):
            client.find_applicants("101-86-00011", "")
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=31)):
        with pytest.raises(TransientError):
            client.find_applicants("101-86-00011", "")
        with pytest.raises(CircuitOpenError):
            client.find_applicants("101-86-00011", "")


def test_permanent_errors_do_not_trip_the_circuit(simulator: Simulator, clean_redis: redis.Redis) -> None:
    circuit = CircuitBreaker(2, 30, client=clean_redis)
    guard = RequestGuard(TokenBucket(1000, 100, client=clean_redis), MonthlyBudget(0, client=clean_redis), circuit)
    client = KiprisClient(simulator.url, "wrong-key", guard=guard)
    for _ in range(3):
        with pytest.raises(Exception, match="resultCode 30"):
            client.find_applicants("101-86-00011", "")
    assert not circuit.is_open()


def test_available_tokens_read_without_reserving(clean_redis: redis.Redis) -> None:
    """The console's rate gauge: a full bucket before any call, fewer after a burst, refilled at the rate."""
    bucket = TokenBucket(rate=10.0, burst=5, client=clean_redis)
    assert bucket.available() == 5.0
    for _ in range(5):
        bucket.try_reserve()
    before = time.monotonic()
    drained = bucket.available()
    assert drained < 1.0
    time.sleep(0.3)
    refilled = bucket.available()
    elapsed = time.monotonic() - before
    # reading reserves nothing: the level only grows with time, at the rate (bounds measured, not assumed)
    assert drained + 0.3 * 10.0 - 0.05 <= refilled <= min(5.0, drained + elapsed * 10.0 + 0.05)
