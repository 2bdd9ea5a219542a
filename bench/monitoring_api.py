"""Monitoring API latency: gunicorn with production settings, 100 concurrent connections on loopback.

Two readings, one JSON line:
- closed loop (wrk, 100 connections, each sends its next request when the previous answer is in): the
  issue's literal setup. Latency there is ~ connections / throughput (Little's law), so it measures the
  server's capacity: p99 <= 50 ms at 100 connections needs >= 2,000 requests/s.
- open loop (100 keep-alive connections at a fixed offered rate, as wrk2 does): each connection has its own
  schedule (rate / 100 per connection) and latency counts from the scheduled send time, so a slow answer
  delays the next request's clock instead of hiding it (no coordinated omission). Run at 100, 200 and
  400 requests/s, then the highest rate whose p99 stays <= 50 ms is searched.
Endpoints: /api/v1/metrics/current and /api/v1/metrics/cpu?limit=1000 (and /current?host=, /cpu?limit=100 and
/health closed-loop).
Setup: a dedicated PostgreSQL database (BENCH_DATABASE, default pw_monitoring_bench) with one host and
20,000 samples, a real host agent for that host (snapshots in Redis, BENCH_REDIS_URL), a real worker and
beat (so /health is all green, as in production: the run waits for beat's first detect_minute).
The API's throttle is raised for the run (100 clients x thousands of requests/s is the load, not abuse).
The server is warmed up for 5 s first (not recorded), and each closed-loop point reports the server's CPU
per request (gunicorn master and workers), which depends much less on the shared machine's load, and how
many connections each worker held halfway through (an uneven spread is what sets the closed-loop p99).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.processes import BASE_DIR, celery_worker, start

# A run of its own: BENCH_DATABASE / BENCH_REDIS_URL move it off another run's database and Redis db.
DATABASE = os.environ.get("BENCH_DATABASE", "pw_monitoring_bench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
SAMPLES = 20_000
DURATION = os.environ.get("BENCH_DURATION", "10s")  # per closed-loop point: the machine is shared
OPEN_SECONDS = float(os.environ.get("BENCH_OPEN_SECONDS", "10"))  # per open-loop point
WARMUP = "5s"
# The server's shape (production's docker-compose web: 3 x 4); other shapes to compare tails in one session.
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "3"))
GUNICORN_THREADS = int(os.environ.get("BENCH_GUNICORN_THREADS", "4"))
CONNECTIONS = 100
TARGET_P99_MS = 50.0
ENDPOINTS = {
    "current": "/api/v1/metrics/current",
    "current_host": "/api/v1/metrics/current?host=bench-host",
    "cpu_limit_100": "/api/v1/metrics/cpu?limit=100",
    "cpu_limit_1000": "/api/v1/metrics/cpu?limit=1000",
    "health": "/api/v1/health",
}
OPEN_LOOP_ENDPOINTS = ("current", "cpu_limit_1000")
OPEN_LOOP_RATES = (100, 200, 400)
MAX_RATE_PROBES = 3  # bisection steps between the highest passing and the lowest failing rate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="pw-bench-prom-"),
            "DJANGO_SETTINGS_MODULE": "core.settings",
            "API_THROTTLE_USER": "100000000/min",
        }
    )
    return env


def prepare(env: dict[str, str]) -> str:
    """Database with samples, the Redis snapshot, and an API token; returns the token."""
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DATABASE], capture_output=True, check=False)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from monitoring.models import Host, HostSample
    from tests.monitoring.conftest import sample_row

    host, _ = Host.objects.get_or_create(name="bench-host")
    if HostSample.objects.filter(host=host).count() < SAMPLES:
        start = datetime.now(tz=UTC) - timedelta(seconds=5 * SAMPLES)
        rows = [
            sample_row(host, start + timedelta(seconds=5 * index), cpu_per_core=[12.5, 17.0])
            for index in range(SAMPLES)
        ]
        HostSample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)
    with connection.cursor() as cursor:  # planner statistics, as autovacuum keeps them in production
        cursor.execute("ANALYZE monitoring_host, monitoring_hostsample")
    user, _ = User.objects.get_or_create(username="bench")
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def wait_healthy(url: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=30).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or busy starting on loaded cores
            pass
        time.sleep(0.5)
    raise SystemExit(f"{url} did not become healthy: {requests.get(url, timeout=30).text}")


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(url: str, token: str, connections: int, duration: str = DURATION) -> dict[str, float]:
    """wrk's figures; --timeout 30s so slow responses are measured, not dropped from the percentiles."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}",
            "--timeout",
            "30s",
            "--latency",
            "-H",
            f"Authorization: Token {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = {
        f"p{pct}_ms": round(float(value) * UNIT_MS[unit], 2)
        for pct, value, unit in re.findall(r"(\d+)%\s+([\d.]+)(us|ms|s|m)\b", out)
        if pct in {"50", "90", "99"}
    }
    figures["requests_per_s"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    figures["requests"] = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    figures["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    if errors:
        figures["socket_errors"] = errors.group(1)  # type: ignore[assignment]
    return figures


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (gunicorn's master and workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def connections_per_worker(server_pid: int, port: int) -> list[int]:
    """Established client connections each gunicorn worker holds, most first (how evenly they spread)."""
    counts = []
    for worker in psutil.Process(server_pid).children(recursive=True):
        try:
            connections = worker.net_connections(kind="tcp")
        except psutil.Error:
            continue
        counts.append(sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port))
    return sorted(counts, reverse=True)


def wrk_with_server_cpu(url: str, token: str, server_pid: int, port: int) -> dict[str, Any]:
    """wrk's figures, the server's CPU per request (what a request costs, whatever else the cores run: the
    throughput and latency depend on the machine's load, this much less) and, halfway through, the
    connections per worker."""
    before = tree_cpu_seconds(server_pid)
    spread: list[int] = []
    sampler = threading.Timer(
        parse_seconds(DURATION) / 2, lambda: spread.extend(connections_per_worker(server_pid, port))
    )
    sampler.start()
    figures: dict[str, Any] = dict(wrk(url, token, CONNECTIONS))
    sampler.join()
    cpu_ms = (tree_cpu_seconds(server_pid) - before) * 1000
    figures["server_cpu_ms_per_request"] = round(cpu_ms / max(figures["requests"], 1), 3)
    figures["connections_per_worker"] = spread
    return figures


def parse_seconds(duration: str) -> float:
    """wrk's duration ("10s", "1m") in seconds."""
    return float(duration[:-1]) * {"s": 1, "m": 60}[duration[-1]]


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_values[max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)]


class OpenLoop:
    """A fixed offered rate over `connections` keep-alive HTTP/1.1 connections, latency from the schedule."""

    def __init__(self, port: int, path: str, token: str, rate: float, seconds: float, connections: int) -> None:
        self.port, self.rate, self.seconds, self.connections = port, rate, seconds, connections
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n\r\n"
        ).encode()
        self.latencies: list[float] = []
        self.non_2xx = 0
        self.errors = 0
        self.reconnects = 0

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> int:
        writer.write(self.request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        await reader.readexactly(int(length.group(1)) if length else 0)
        return status

    async def _connection(self, index: int, start: float) -> None:
        """This connection's share of the schedule: request j is due at start + (index + j * N) / rate."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        loop = asyncio.get_running_loop()
        due = start + index / self.rate
        period = self.connections / self.rate
        while due < start + self.seconds:
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            for attempt in range(2):  # gunicorn closes a keep-alive connection idle > 2 s: reconnect once
                try:
                    status = await self._exchange(reader, writer)
                    break
                except (ConnectionError, asyncio.IncompleteReadError):
                    writer.close()
                    if attempt:
                        self.errors += 1
                        status = 0
                    else:
                        self.reconnects += 1
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.latencies.append(loop.time() - due)
            if status and not 200 <= status < 300:
                self.non_2xx += 1
            due += period
        writer.close()

    async def run(self) -> dict[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.5  # connections open first
        await asyncio.gather(*(self._connection(index, start) for index in range(self.connections)))
        done = sorted(self.latencies)
        return {
            "offered_per_s": self.rate,
            "achieved_per_s": round(len(done) / (loop.time() - start), 1),  # below offered: a backlog built up
            **{f"p{pct}_ms": round(percentile(done, pct) * 1000, 2) for pct in (50, 90, 99)},
            "max_ms": round(done[-1] * 1000, 2),
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            "reconnects": self.reconnects,
        }


def open_loop(port: int, path: str, token: str, rate: float) -> dict[str, float]:
    return asyncio.run(OpenLoop(port, path, token, rate, OPEN_SECONDS, CONNECTIONS).run())


def meets_target(figures: dict[str, float]) -> bool:
    return figures["p99_ms"] <= TARGET_P99_MS and not figures["non_2xx"] and not figures["errors"]


def open_loop_endpoint(port: int, path: str, token: str) -> dict[str, Any]:
    """The fixed rates, then a bisection for the highest rate that keeps p99 <= the target."""
    points = {rate: open_loop(port, path, token, rate) for rate in OPEN_LOOP_RATES}
    low = max((rate for rate, figures in points.items() if meets_target(figures)), default=0)
    failing = [rate for rate, figures in points.items() if rate > low and not meets_target(figures)]
    high = min(failing) if failing else None
    if high is None:  # every fixed rate passed: look above them once
        points[2 * low] = open_loop(port, path, token, 2 * low)
        low, high = (2 * low, None) if meets_target(points[2 * low]) else (low, 2 * low)
    probes = MAX_RATE_PROBES if high is not None else 0
    while probes and high is not None and (rate := (low + high) // 2) not in points and rate > 0:
        probes -= 1
        points[rate] = open_loop(port, path, token, rate)
        low, high = (rate, high) if meets_target(points[rate]) else (low, rate)
    return {
        "rates": {str(rate): points[rate] for rate in sorted(points)},
        "max_rate_p99_le_50ms": low,
        "max_rate_is_lower_bound": high is None,
    }


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    env = environment()
    token = prepare(env)
    prod = {
        **env,
        "PIPEWATCH_ENV": "prod",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PIPEWATCH_PROCESS": "web",
    }
    port = free_port()
    processes = [
        start(celery_worker("default", f"bench-{port}@%h", standalone=False), env),
        start([sys.executable, "-m", "celery", "-A", "core", "beat"], env),
        start([sys.executable, "manage.py", "host_agent", "--host", "bench-host", "--metrics-port", "0"], env),
        start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "core.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(GUNICORN_WORKERS),
                "--threads",
                str(GUNICORN_THREADS),
                "--config",
                "python:core.gunicorn_conf",
            ],
            prod,
        ),
    ]
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/v1/health")
        load_before = os.getloadavg()
        server_pid = processes[-1].pid
        # Warm-up, not recorded: each freshly forked worker's first seconds cost more CPU per request (its
        # first writes to the pages it shares with the preloaded master copy them; connections open).
        wrk(f"http://127.0.0.1:{port}{ENDPOINTS['current']}", token, CONNECTIONS, duration=WARMUP)
        closed = {
            name: wrk_with_server_cpu(f"http://127.0.0.1:{port}{path}", token, server_pid, port)
            for name, path in ENDPOINTS.items()
        }
        opened = {name: open_loop_endpoint(port, ENDPOINTS[name], token) for name in OPEN_LOOP_ENDPOINTS}
        load_after = os.getloadavg()
    finally:
        for proc in processes:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
    print(
        json.dumps(
            {
                "bench": "monitoring_api",
                "date": datetime.now(tz=UTC).isoformat(timespec="minutes"),
                "machine": f"{platform.node()} {os.cpu_count()} cores (shared with other engineers' work)",
                "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
                "server": f"gunicorn {GUNICORN_WORKERS} workers x {GUNICORN_THREADS} threads, PIPEWATCH_ENV=prod",
                "samples_in_db": SAMPLES,
                "target": f"p99 <= {TARGET_P99_MS:g} ms at {CONNECTIONS} connections",
                "closed_loop": {
                    "load": f"wrk -t2 -c{CONNECTIONS} -d{DURATION} --timeout 30s on loopback (same 2 cores)",
                    **closed,
                },
                "open_loop": {
                    "load": (
                        f"asyncio client, {CONNECTIONS} keep-alive connections, fixed rate, {OPEN_SECONDS:g} s per "
                        "point, latency from the scheduled send time (same 2 cores)"
                    ),
                    **opened,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
