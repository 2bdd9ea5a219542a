"""KIPRIS harvesting under the global token bucket: 4 worker processes against the simulator with latency.

Prints one JSON line: the request rate the simulator saw (its own per-request log) divided by the
configured rate, over the steady state and over the whole measured window, and the most requests in any
sliding 1-second window (must stay <= rate + burst).
Setup: the simulator as a process (`kipris_simulator --latency-ms 50-200`), 200 of its organisations
imported into a dedicated PostgreSQL database (pw_ingest_bench), Redis db 2, four `celery worker -c 1`
processes on the `ingest` queue, `harvest_kipris --all`; measured for BENCH_SECONDS (default 45) from the
first request, then everything is stopped.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import redis
import requests

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
from ingest.simulator import max_in_window  # noqa: E402 - pure module, no Django needed

DATABASE = "pw_ingest_bench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
REDIS_URL = "redis://127.0.0.1:6379/2"
RATE, BURST, WORKERS, ORGANIZATIONS = 20, 10, 4, 200
LATENCY = (50, 200)
SECONDS = float(os.environ.get("BENCH_SECONDS", "45"))
WARMUP = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recreate_database() -> None:
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        cursor.execute(f"CREATE DATABASE {DATABASE}")
    connection.close()


def manage(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True
    ).stdout


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "PROMETHEUS_MULTIPROC_DIR": str(workdir),
        "KIPRIS_BASE_URL": f"http://127.0.0.1:{port}",
        "KIPRIS_API_KEY": "bench+key/with=signs",
        "KIPRIS_RATE_PER_SEC": str(RATE),
        "KIPRIS_BURST": str(BURST),
        "KIPRIS_MONTHLY_BUDGET": "0",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    recreate_database()
    redis.Redis.from_url(REDIS_URL).flushdb()
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "kipris_simulator", "--export-orgs", str(workdir / "orgs.csv"), "--count", str(ORGANIZATIONS))
    manage(env, "import_orgs", str(workdir / "orgs.csv"))
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "kipris_simulator",
                "--port",
                str(port),
                "--api-key",
                env["KIPRIS_API_KEY"],
                "--latency-ms",
                f"{LATENCY[0]}-{LATENCY[1]}",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    try:
        for index in range(WORKERS):
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "core",
                        "worker",
                        "-Q",
                        "ingest",
                        "-c",
                        "1",
                        "--hostname",
                        f"bench{index}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "-l",
                        "WARNING",
                    ],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        stats_url = f"http://127.0.0.1:{port}/_sim/stats"
        for _ in range(100):
            try:
                requests.get(stats_url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        time.sleep(8)  # workers import Django and connect before the work is queued
        manage(env, "harvest_kipris", "--all")
        started = time.monotonic()
        while time.monotonic() - started < SECONDS + 30:
            arrivals = requests.get(stats_url, timeout=5).json()["arrivals"]
            if arrivals and arrivals[-1] - min(arrivals) >= SECONDS:
                break
            time.sleep(1)
    finally:
        for proc in processes:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in processes:
            proc.wait(timeout=60)
    first = min(arrivals)
    window = [t for t in arrivals if t < first + SECONDS]
    steady = [t for t in window if t >= first + WARMUP]
    steady_rate = len(steady) / (SECONDS - WARMUP)
    whole_rate = len(window) / SECONDS
    print(
        json.dumps(
            {
                "bench": "ingest_rate",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores, shared with other work",
                "workers": WORKERS,
                "configured_rate": RATE,
                "burst": BURST,
                "latency_ms": list(LATENCY),
                "seconds": SECONDS,
                "requests": len(window),
                "steady_rate": round(steady_rate, 2),
                "steady_ratio": round(steady_rate / RATE, 3),
                "whole_window_ratio": round(whole_rate / RATE, 3),
                "max_in_any_1s_window": max_in_window(window, 1.0),
                "limit_rate_plus_burst": RATE + BURST,
            }
        )
    )


if __name__ == "__main__":
    main()
