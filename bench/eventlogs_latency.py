"""End-to-end latency, record sent → queryable in its typed table, at BENCH_RATE records/s (default 2,000).

gunicorn (2 workers) and BENCH_WORKERS events workers (default 2, concurrency 1 each) on the benchmark's
database; one sender posts a gzip batch of rate/10 records every 0.1 s for BENCH_SECONDS (default 30); a
poller sees each batch committed as enriched (every 50 ms). Latency of a record = seen - its batch's send
time (a record waits at most 0.1 s more in a real producer's buffer). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.eventlogs_setup import (
    cleanup,
    gzip_batches,
    lol_records,
    machine,
    prepare,
    start_events_workers,
    start_web,
    token,
)

RATE = int(os.environ.get("BENCH_RATE", "2000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
TICK = 0.1
DRAIN_SECONDS = 120


def main() -> None:
    env = prepare("latency")
    port = 19600 + os.getpid() % 1000
    key = token()
    size = max(1, int(RATE * TICK))
    bodies = gzip_batches(lol_records(int(RATE * SECONDS)), size)
    web = start_web(env, port)
    workers = start_events_workers(env, WORKERS, "latency")
    sent: dict[str, tuple[float, int]] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def poll() -> None:
        from django.db import connections

        from eventlogs.models import Batch

        while not done.is_set() or len(seen) < len(sent):
            waiting = [batch for batch in list(sent) if batch not in seen]
            if waiting:
                now = time.time()
                for batch in Batch.objects.filter(pk__in=waiting, status="enriched").values_list("pk", flat=True):
                    seen[str(batch)] = now
            if done.is_set() and time.time() > drain_deadline:
                break
            time.sleep(0.05)
        connections.close_all()

    drain_deadline = float("inf")
    poller = threading.Thread(target=poll)
    try:
        from core.celery import app

        names = [f"latency{n}@{socket.gethostname()}" for n in range(WORKERS)]
        deadline = time.monotonic() + 180
        while len(app.control.ping(destination=names, timeout=1) or []) < WORKERS:  # every worker consuming
            if time.monotonic() > deadline:
                raise RuntimeError("events workers did not start")
        poller.start()
        session = requests.Session()
        headers = {"Authorization": f"Token {key}", "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        began = time.monotonic()
        for n, (count, body) in enumerate(bodies):
            delay = began + n * TICK - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = time.time()
            response = session.post(f"http://127.0.0.1:{port}/api/v1/events/lol/", data=body, headers=headers)
            sent[response.json()["batch"]] = (at, count)
        send_seconds = time.monotonic() - began
        drain_deadline = time.time() + DRAIN_SECONDS
        done.set()
        poller.join()
        latencies = sorted(seen[b] - at for b, (at, count) in sent.items() if b in seen for _ in range(count))
        records = sum(count for _, count in sent.values())
        print(json.dumps({
            "bench": "eventlogs_latency", "date": datetime.now(UTC).isoformat(timespec="seconds"), **machine(),
            "target_records_per_s": RATE, "sent_records_per_s": round(records / send_seconds),
            "events_workers": WORKERS, "records": records, "queryable": len(latencies),
            "p50_s": round(latencies[len(latencies) // 2], 2) if latencies else None,
            "p99_s": round(latencies[int(len(latencies) * 0.99)], 2) if latencies else None,
            "max_s": round(latencies[-1], 2) if latencies else None,
        }))  # fmt: skip
    finally:
        done.set()
        for proc in [web, *workers]:
            proc.terminate()
        for proc in [web, *workers]:
            proc.wait(timeout=60)
        cleanup(env)


if __name__ == "__main__":
    main()
