"""Enrichment throughput into PostgreSQL: records/s of one worker's work, and 1 vs 2 real events workers.

1. in-process: `enrich_batch` on archived 1,000-record lol batches (parse, JSON Schema, convert, upsert,
   buy_item) — what one worker process does per batch, without Celery around it; records/s by wall time and
   by CPU time (the process's, and the process's plus its PostgreSQL backend's: what a worker needs from
   free cores, whatever the machine's load).
2. Celery: the same number of batches queued, then one worker (concurrency 1), then two (two processes of
   concurrency 1), each on a fresh table; records/s from the first task start to the last batch enriched.
Prints one JSON line. Database pw_eventlogs_bench (recreated), Redis db 7 (BENCH_REDIS_URL).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.lib.eventlogs_setup import (
    backend_cpu_seconds,
    cleanup,
    lol_records,
    machine,
    prepare,
    start_events_workers,
)

BATCH = 1000
BATCHES = int(os.environ.get("BENCH_BATCHES", "40"))
# A stuck worker (a lost task, a crash) fails the run instead of hanging it; 40 batches take seconds.
WORKERS_TIMEOUT_SECONDS = 600


def archive_batches(records: list[dict[str, object]]) -> list[str]:
    import uuid

    import orjson
    from django.utils import timezone

    from eventlogs.services import archive
    from eventlogs.services.collector import register

    ids = []
    for begin in range(0, len(records), BATCH):
        lines = [orjson.dumps(record) for record in records[begin : begin + BATCH]]
        batch_id, now = str(uuid.uuid4()), timezone.now()
        member = archive.append("lol", batch_id, lines, now)
        register("lol", batch_id, member, records=len(lines), client="bench", received_at=now)
        ids.append(batch_id)
    return ids


def reset() -> None:
    """A fresh table: TRUNCATE, not DELETE, whose dead rows and index entries (and the autovacuum they call)
    would slow the next run down."""
    from django.db import connection

    from eventlogs.models import Batch, LolEvent

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {LolEvent._meta.db_table}")
    Batch.objects.update(status="archived", enriched_at=None)


def run_workers(env: dict[str, str], ids: list[str], workers: int) -> float:
    from core.celery import app
    from eventlogs.models import Batch

    reset()
    for batch_id in ids:
        app.send_task("eventlogs.enrich_batch", args=[batch_id], queue="events")
    procs = start_events_workers(env, workers, "bench")
    try:
        deadline = time.monotonic() + WORKERS_TIMEOUT_SECONDS
        while (enriched := Batch.objects.filter(status="enriched").count()) < len(ids):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{workers} worker(s) enriched {enriched} of {len(ids)} batches in {WORKERS_TIMEOUT_SECONDS} s"
                )
            time.sleep(0.2)
        done = Batch.objects.filter(pk__in=ids)
        times = sorted(at for at in done.values_list("enriched_at", flat=True) if at is not None)
        # From the first batch's end minus one batch time (the first start) to the last end.
        first, last = times[0], times[-1]
        span = (last - first).total_seconds() * len(ids) / (len(ids) - 1)
        return len(ids) * BATCH / span
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def in_process(ids: list[str]) -> dict[str, float]:
    """Records/s of `enrich_batch` in this process: by wall time, and by CPU time — of this process alone,
    and of this process plus its PostgreSQL backend (what one worker needs from free cores, the load aside)."""
    from eventlogs.services.enrichment import enrich_batch

    enrich_batch(ids[0])  # warm: imports, the compiled schema, the session's staging table
    records = (len(ids) - 1) * BATCH
    wall, cpu, backend = time.perf_counter(), time.process_time(), backend_cpu_seconds()
    for batch_id in ids[1:]:
        enrich_batch(batch_id)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    backend = backend_cpu_seconds() - backend
    return {"in_process_records_per_s": round(records / wall),
            "in_process_worker_cpu_records_per_s": round(records / cpu),
            "in_process_worker_and_postgres_cpu_records_per_s": round(records / (cpu + backend)),
            "worker_cpu_ms_per_batch": round(cpu / (len(ids) - 1) * 1000, 1),
            "postgres_cpu_ms_per_batch": round(backend / (len(ids) - 1) * 1000, 1)}  # fmt: skip


def main() -> None:
    env = prepare("enrich")
    try:
        from eventlogs.models import Batch

        records = lol_records(BATCH * BATCHES)
        ids = archive_batches(records)
        alone = in_process(ids)
        print(f"in-process: {alone}", file=sys.stderr)
        assert Batch.objects.filter(status="enriched").count() == len(ids)
        one = run_workers(env, ids, 1)
        print(f"1 worker: {one:.0f} records/s", file=sys.stderr)
        two = run_workers(env, ids, 2)
        print(json.dumps({
            "bench": "eventlogs_enrich", "date": datetime.now(UTC).isoformat(timespec="seconds"), **machine(),
            "records": len(records), "batch": BATCH, **alone,
            "celery_1_worker_records_per_s": round(one), "celery_2_workers_records_per_s": round(two),
            "ratio_2_to_1": round(two / one, 2),
        }))  # fmt: skip
    finally:
        cleanup(env)


if __name__ == "__main__":
    main()
