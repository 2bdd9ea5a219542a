"""HostSampler against the real machine: plausible values, and rates computed from two samples."""

from __future__ import annotations

import os
import socket
import threading
import time

import psutil
import pytest

from monitoring.services.sampling import HostSampler, top_processes


def test_first_sample_is_primed_and_plausible() -> None:
    sampler = HostSampler("test-host")
    time.sleep(0.3)
    sample = sampler.sample()
    values = sample.values

    assert sample.host == "test-host"
    assert sample.ts.tzinfo is not None
    assert 0.25 <= values["interval_seconds"] < 5
    assert 0.0 <= values["cpu_percent"] <= 100.0
    assert len(values["cpu_per_core"]) == psutil.cpu_count()
    assert all(0.0 <= core <= 100.0 for core in values["cpu_per_core"])
    assert values["load_1"] == pytest.approx(os.getloadavg()[0], abs=1.0)
    assert values["memory_total_bytes"] == psutil.virtual_memory().total
    assert values["memory_used_bytes"] + values["memory_available_bytes"] == values["memory_total_bytes"]
    assert 0 < values["memory_percent"] < 100
    assert values["disks"], "at least the root file system"
    assert all(0 <= disk["percent"] <= 100 and disk["total_bytes"] > 0 for disk in values["disks"])
    assert values["disk_percent"] == max(disk["percent"] for disk in values["disks"])
    assert "lo" in values["interfaces"]
    assert len(sample.cpu_times) == psutil.cpu_count()
    assert {"user", "system", "idle"} <= set(sample.cpu_times[0])


def test_cpu_percent_sees_a_busy_core() -> None:
    sampler = HostSampler("test-host")
    deadline = time.perf_counter() + 0.6
    while time.perf_counter() < deadline:  # keep one core busy for the whole interval
        pass
    values = sampler.sample().values
    # One of N cores busy is at least 100/N percent of the total (others' work only adds to it).
    assert values["cpu_percent"] >= 0.8 * 100 / (psutil.cpu_count() or 1)
    assert max(values["cpu_per_core"]) >= 80


def test_network_rates_come_from_two_samples() -> None:
    payload = b"x" * 1_000_000
    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def drain() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    sampler = HostSampler("test-host")
    with socket.create_connection(server.getsockname()) as client:
        for _ in range(8):
            client.sendall(payload)
    reader.join(timeout=10)
    server.close()
    time.sleep(0.5)  # an interval long enough that its rounding to milliseconds is negligible
    sample = sampler.sample()

    assert len(received) == 8 * len(payload)
    loopback = sample.values["interfaces"]["lo"]
    sent_over_interval = loopback["sent_bytes_per_second"] * sample.values["interval_seconds"]
    # TCP headers and other local traffic only add; 1% covers rounding the interval to milliseconds.
    assert sent_over_interval >= 0.99 * 8 * len(payload)
    assert loopback["bytes_sent"] >= sent_over_interval
    # Loopback is the host talking to itself: it is not in the host's network totals.
    others = [stats["sent_bytes_per_second"] for name, stats in sample.values["interfaces"].items() if name != "lo"]
    assert sample.values["net_sent_bytes_per_second"] == round(sum(others), 3)


def test_top_processes_lists_this_process_with_its_memory() -> None:
    top_processes()  # primes per-process CPU
    deadline = time.perf_counter() + 0.3
    while time.perf_counter() < deadline:
        pass
    rows = {row["pid"]: row for row in top_processes()}
    me = psutil.Process()
    assert me.pid in rows
    assert rows[me.pid]["memory_rss_bytes"] > 10_000_000
    assert rows[me.pid]["cpu_percent"] > 5  # primed: not 0 (our share of a loaded core may be small)
