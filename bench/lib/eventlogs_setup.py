"""Shared setup of the eventlogs benchmarks: a dedicated database, archive and Redis db, and generated records."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.lib.database import recreate_database, setup_django
from bench.lib.processes import celery_worker, start

DATABASE = os.environ.get("BENCH_DATABASE", "pw_eventlogs_bench")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
# Below the databases pytest-xdist workers flush (15, 14, ... one per worker, tests/xdist_isolation.py).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")


def prepare(tag: str) -> dict[str, str]:
    """Recreate the database, migrate it, and return the environment every process of the run uses."""
    archive = Path(tempfile.mkdtemp(prefix=f"eventlogs-bench-{tag}-"))
    metrics = Path(tempfile.mkdtemp(prefix="eventlogs-bench-prom-"))
    env = {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "EVENTLOG_ARCHIVE_DIR": str(archive),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        "DJANGO_SETTINGS_MODULE": "core.settings",
        "LOG_LEVEL": "WARNING",
        "EVENTLOG_THROTTLE_RATE": "1000000/min",
    }
    os.environ.update(env)
    recreate_database(DATABASE_URL)
    setup_django(DATABASE_URL)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return {**os.environ, **env}


def cleanup(env: dict[str, str]) -> None:
    shutil.rmtree(env["EVENTLOG_ARCHIVE_DIR"], ignore_errors=True)
    shutil.rmtree(env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def lol_records(count: int, seed: int = 1) -> list[dict[str, Any]]:
    """Game records (the widest kind with the most derived work), as many as asked, from repeated games."""
    from datetime import UTC, datetime

    from eventlogs.generators import GENERATORS, Options

    records: list[dict[str, Any]] = []
    start = datetime(2024, 3, 24, tzinfo=UTC)
    for game in GENERATORS["lol"](Options(start=start, seed=seed, duration=3600 * (1 + count // 25_000))):
        records += [event.record for event in game.events]
        if len(records) >= count:
            break
    return records[:count]


def token() -> str:
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user, _ = User.objects.get_or_create(username="bench")
    return Token.objects.get_or_create(user=user)[0].key


def machine() -> dict[str, Any]:
    import platform

    return {"machine": platform.machine(), "cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)}


def start_web(env: dict[str, str], port: int, workers: int = 2) -> Any:
    """gunicorn as in the Procfile (2 workers x 4 threads), on the benchmark's database and archive."""
    import time

    import requests

    web = start(
        [sys.executable, "-m", "gunicorn", "core.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", "4", "--config", "python:core.gunicorn_conf"],
        env,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/api/v1/events/stats", timeout=2)
        except requests.RequestException:
            time.sleep(0.5)
        else:
            return web
    web.kill()
    raise RuntimeError("gunicorn did not start")


def start_events_workers(env: dict[str, str], count: int, name: str) -> list[Any]:
    """`count` Celery workers of concurrency 1 on the events queue, as separate processes."""
    return [start(celery_worker("events", f"{name}{n}@%h"), env) for n in range(count)]


def backend_cpu_seconds() -> float:
    """CPU time so far of this process's PostgreSQL backend (the server runs on this host): /proc's utime + stime."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gzip_batches(records: list[dict[str, Any]], size: int) -> list[tuple[int, bytes]]:
    import gzip

    import orjson

    return [
        (len(chunk), gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in chunk), compresslevel=1))
        for chunk in (records[n : n + size] for n in range(0, len(records), size))
    ]
