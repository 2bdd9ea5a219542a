"""The host agent: batching into the database, the Redis snapshot, its exporter, signals and outages."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import requests
from django.core.management import CommandError, call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from monitoring.models import Host, HostSample
from monitoring.services.agent import AgentConfig, HostAgent
from monitoring.services.store import HOSTS_KEY, current_key, processes_key, store_samples
from tests.conftest import ChildProcess, TcpProxy, free_port, get_or_none, wait_for


@pytest.mark.django_db
def test_samples_reach_redis_at_once_and_the_database_in_batches(clean_redis: redis.Redis) -> None:
    agent = HostAgent(AgentConfig(interval=1, batch_size=3, flush_seconds=3600, host="batch-host"))
    agent.tick()
    agent.tick()
    assert HostSample.objects.count() == 0
    snapshot = json.loads(clean_redis.get(current_key("batch-host")) or b"{}")
    assert snapshot["host"] == "batch-host"
    assert {"cpu_percent", "memory_percent", "disks", "interfaces", "load_1"} <= set(snapshot)
    assert 0 < clean_redis.ttl(current_key("batch-host")) <= 30
    processes = json.loads(clean_redis.get(processes_key("batch-host")) or b"{}")
    assert processes["processes"], "top processes are published with the first sample"
    assert clean_redis.zscore(HOSTS_KEY, "batch-host") == pytest.approx(time.time(), abs=5)

    agent.tick()
    host = Host.objects.get(name="batch-host")
    assert HostSample.objects.filter(host=host).count() == 3
    assert host.interval_seconds == 1
    assert host.cpu_count > 0
    assert host.last_seen_at == HostSample.objects.latest("ts").ts
    assert not agent.pending


@pytest.mark.django_db
def test_storing_a_batch_twice_is_a_noop() -> None:
    agent = HostAgent(AgentConfig(interval=1, batch_size=100, host="twice"))
    batch = [agent.tick(), agent.tick()]
    agent.flush()
    store_samples(Host.objects.get(name="twice"), batch)
    assert HostSample.objects.filter(host__name="twice").count() == 2


@pytest.mark.django_db
def test_interval_outside_1_to_60_seconds_is_refused() -> None:
    for interval in ("0.5", "61"):
        with pytest.raises(CommandError, match="between 1 and 60"):
            call_command("host_agent", "--interval", interval)


def _aware(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def families(text: str) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    found: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        found.setdefault(family.name, []).extend((s.name, s.labels, s.value) for s in family.samples)
    return found


def test_command_stores_exports_and_stops_cleanly_on_sigterm(start_process: Callable[..., ChildProcess]) -> None:
    port = free_port()
    agent = start_process(
        "agent", "manage.py", "host_agent", "--interval", "1", "--batch-size", "2", "--host", "cmd-host",
        "--metrics-port", str(port),
    )  # fmt: skip
    wait_for(lambda: HostSample.objects.filter(host__name="cmd-host").count() >= 2, timeout=60, what="2 stored rows")

    exporter = f"http://127.0.0.1:{port}/metrics"
    scraped = wait_for(lambda: get_or_none(exporter, timeout=5), timeout=10, what="the exporter")
    assert isinstance(scraped, requests.Response)
    text = scraped.text
    assert isinstance(text, str)
    found = families(text)
    cpu = found["node_cpu_seconds"]
    assert {sample[0] for sample in cpu} == {"node_cpu_seconds_total"}
    assert {"idle", "user", "system"} <= {labels["mode"] for _, labels, _ in cpu}
    assert sum(value for _, labels, value in cpu if labels["mode"] == "idle") > 0
    assert found["node_memory_MemTotal_bytes"][0][2] > 0
    assert {labels["mountpoint"] for _, labels, _ in found["node_filesystem_size_bytes"]}
    assert {"lo"} <= {labels["device"] for _, labels, _ in found["node_network_receive_bytes"]}
    assert {name for name, _, _ in found["node_network_receive_bytes"]} == {"node_network_receive_bytes_total"}
    for name in ("node_load1", "node_load5", "node_load15", "node_boot_time_seconds", "pipewatch_host_cpu_busy_ratio"):
        assert name in found, name
    samples_taken = found["pipewatch_agent_samples"]
    assert samples_taken[0][1] == {"host": "cmd-host"}
    assert samples_taken[0][2] >= 2
    assert "process_cpu_seconds" in found  # the agent's own overhead

    # The agent's own counters also reach the web's /metrics through the shared multiprocess directory.
    web = families(Client().get("/metrics").content.decode())
    assert any(labels == {"host": "cmd-host"} and value >= 2 for _, labels, value in web["pipewatch_agent_samples"])

    agent.stop(signal.SIGTERM)
    assert agent.proc.returncode == 0, agent.output()
    assert "stopped after" in agent.output()


def test_database_outage_is_survived_and_backfilled(
    start_process: Callable[..., ChildProcess], child_env: dict[str, str], db_proxy: TcpProxy
) -> None:
    url = urlsplit(child_env["DATABASE_URL"])
    proxied = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{db_proxy.port}"))
    agent = start_process(
        "agent", "manage.py", "host_agent", "--interval", "1", "--batch-size", "1", "--host", "outage-host",
        "--metrics-port", "0", env={"DATABASE_URL": proxied, "DB_CONN_MAX_AGE": "600"},
    )  # fmt: skip
    rows = HostSample.objects.filter(host__name="outage-host")
    wait_for(lambda: rows.count() >= 1, timeout=60, what="a first stored row")

    db_proxy.cut()
    cut_at = time.time()
    wait_for(lambda: "database unavailable" in agent.output(), timeout=30, what="the outage to be logged")
    time.sleep(3)
    before = rows.count()
    assert agent.proc.poll() is None, agent.output()

    db_proxy.restore()
    wait_for(lambda: rows.count() >= before + 4, timeout=60, what="the backfill")
    during = rows.filter(ts__gte=_aware(cut_at + 0.5), ts__lte=_aware(cut_at + 3)).count()
    assert during >= 2, "samples taken during the outage are written afterwards"
    assert agent.proc.poll() is None
    assert "database is back" in agent.output()


def test_redis_outage_is_survived(start_process: Callable[..., ChildProcess], clean_redis: redis.Redis) -> None:
    redis_proxy = TcpProxy(("127.0.0.1", int(clean_redis.connection_pool.connection_kwargs["port"])))
    database = clean_redis.connection_pool.connection_kwargs["db"]
    agent = start_process(
        "agent", "manage.py", "host_agent", "--interval", "1", "--batch-size", "1", "--host", "no-redis",
        "--metrics-port", "0", env={"REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}/{database}"},
    )  # fmt: skip
    try:
        wait_for(lambda: clean_redis.exists(current_key("no-redis")), timeout=60, what="a first snapshot")
        redis_proxy.cut()
        wait_for(lambda: "redis unavailable" in agent.output(), timeout=30, what="the outage to be logged")
        rows = HostSample.objects.filter(host__name="no-redis")
        stored = rows.count()
        wait_for(lambda: rows.count() >= stored + 2, timeout=30, what="rows stored while Redis is down")
        clean_redis.delete(current_key("no-redis"))
        redis_proxy.restore()
        wait_for(lambda: clean_redis.exists(current_key("no-redis")), timeout=30, what="snapshots after Redis returns")
        assert agent.proc.poll() is None
        assert "redis is back" in agent.output()
    finally:
        redis_proxy.cut()
