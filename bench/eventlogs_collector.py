"""Collector throughput into the raw archive: records/s with 2 gunicorn workers, 1,000-record gzip batches.

Client threads (BENCH_CLIENTS, default 4) post pre-compressed lol batches back to back for BENCH_SECONDS
(default 20); each request is authenticated, throttled, inflated, split, parsed, archived (fdatasync),
registered in PostgreSQL and queued on Redis, as in production. Prints one JSON line (the clients share
the machine's cores with the server). Database pw_eventlogs_bench (recreated), Redis db 7.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.eventlogs_setup import cleanup, gzip_batches, lol_records, machine, prepare, start_web, token

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
BATCH = 1000


def main() -> None:
    env = prepare("collector")
    port = 18600 + os.getpid() % 1000
    key = token()
    bodies = gzip_batches(lol_records(20 * BATCH), BATCH)
    web = start_web(env, port)
    accepted = [0] * CLIENTS
    errors = [0] * CLIENTS
    latencies: list[float] = []
    stop = time.monotonic() + SECONDS

    def client(n: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Token {key}", "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
        i = n
        while time.monotonic() < stop:
            _, body = bodies[i % len(bodies)]
            began = time.perf_counter()
            response = session.post(f"http://127.0.0.1:{port}/api/v1/events/lol/", data=body, headers=headers)
            latencies.append(time.perf_counter() - began)
            if response.status_code == 202:
                accepted[n] += response.json()["accepted"]
            else:
                errors[n] += 1
            i += CLIENTS

    try:
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        from django.db.models import Sum

        from eventlogs.models import ArchiveFile, Batch

        archived = ArchiveFile.objects.aggregate(total=Sum("records"))["total"] or 0
        latencies.sort()
        print(json.dumps({
            "bench": "eventlogs_collector", "date": datetime.now(UTC).isoformat(timespec="seconds"), **machine(),
            "gunicorn_workers": 2, "threads_per_worker": 4, "clients": CLIENTS, "batch": BATCH,
            "seconds": round(elapsed, 1), "records_per_s": round(sum(accepted) / elapsed),
            "batches": Batch.objects.count(), "archived_records": archived, "errors": sum(errors),
            "request_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "request_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        }))  # fmt: skip
    finally:
        web.terminate()
        web.wait(timeout=30)
        cleanup(env)


if __name__ == "__main__":
    main()
