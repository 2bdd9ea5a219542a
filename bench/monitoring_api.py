"""Monitoring API latency: gunicorn with production settings, 100 concurrent connections from wrk on loopback.

Prints one JSON line: for /api/v1/metrics/current, /api/v1/metrics/cpu?limit=1000 and /api/v1/health,
requests/s and latency p50/p90/p99 (wrk's own figures) at 100 and at 10 connections, and non-2xx counts.
Setup: a dedicated PostgreSQL database (pw_monitoring_bench) with one host and 20,000 samples, a real
host agent for that host (snapshots in Redis db 5), a real worker and beat (so /health is all green, as
in production: the run waits for beat's first detect_minute).
The API's throttle is raised for the run (100 clients x thousands of requests/s is the load, not abuse).
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "pw_monitoring_bench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/5"
SAMPLES = 20_000
DURATION = os.environ.get("BENCH_DURATION", "15s")
CONNECTIONS = (100, 10)  # the target's 100, and 10 to show latency below saturation
ENDPOINTS = {
    "current": "/api/v1/metrics/current",
    "cpu_limit_1000": "/api/v1/metrics/cpu?limit=1000",
    "health": "/api/v1/health",
}


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
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.contrib.auth.models import User
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
    user, _ = User.objects.get_or_create(username="bench")
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv, cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


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


def wrk(url: str, token: str, connections: int) -> dict[str, float]:
    """wrk's figures; --timeout 30s so slow responses are measured, not dropped from the percentiles."""
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{DURATION}",
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
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    figures["non_2xx"] = int(non_2xx.group(1)) if non_2xx else 0
    if errors:
        figures["socket_errors"] = errors.group(1)  # type: ignore[assignment]
    return figures


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
        start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "core",
                "worker",
                "-Q",
                "default",
                "-c",
                "1",
                "--hostname",
                f"bench-{port}@%h",
            ],
            env,
        ),
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
                "3",
                "--threads",
                "4",
                "--config",
                "python:core.gunicorn_conf",
            ],
            prod,
        ),
    ]
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/v1/health")
        results = {
            f"{name}_c{connections}": wrk(f"http://127.0.0.1:{port}{path}", token, connections)
            for connections in CONNECTIONS
            for name, path in ENDPOINTS.items()
        }
    finally:
        for proc in processes:
            os.killpg(proc.pid, 15)
            proc.wait(timeout=30)
    print(
        json.dumps(
            {
                "bench": "monitoring_api",
                "date": datetime.now(tz=UTC).date().isoformat(),
                "machine": f"{platform.node()} {os.cpu_count()} cores (shared with other engineers' work)",
                "server": "gunicorn 3 workers x 4 threads, PIPEWATCH_ENV=prod, PostgreSQL, Redis",
                "load": f"wrk -t2 -c{{100,10}} -d{DURATION} --timeout 30s on loopback (same 2 cores)",
                "samples_in_db": SAMPLES,
                **results,
            }
        )
    )


if __name__ == "__main__":
    main()
