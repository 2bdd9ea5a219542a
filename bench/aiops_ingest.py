"""Custom-metric ingest: POST /api/v1/aiops/metrics/ batches (target: >= 20,000 points/s).

1,000 series (name x 4 label sets) x 200 points = 200,000 points, posted as 20 batches of 10,000 (each
batch: 50 series' 200 points, all new series the first time), through the whole DRF stack in process
(token auth, orjson parsing, validation, series upsert with row locks, COPY, range update). Reports
points per wall second and per CPU second of this process (PostgreSQL's own work runs in its server
process and is inside the wall figure only), after one warm-up request. Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.aiops_bench import machine, setup, token_client

SERIES = 1000
POINTS_PER_SERIES = 200
BATCH = 10_000


def main() -> None:
    setup("ingest")
    from aiops.models import MetricPoint

    start = datetime(2026, 11, 1, tzinfo=UTC)
    stamps = [(start + timedelta(seconds=15 * i)).isoformat() for i in range(POINTS_PER_SERIES)]
    per_batch = BATCH // POINTS_PER_SERIES
    bodies = []
    for first in range(0, SERIES, per_batch):
        points = [
            {"name": f"app_requests_{s % 250}", "labels": {"instance": f"i-{s // 250}", "env": "prod"},
             "timestamp": ts, "value": float(i)}
            for s in range(first, first + per_batch) for i, ts in enumerate(stamps)
        ]  # fmt: skip
        bodies.append(json.dumps({"points": points}).encode())
    client = token_client()
    # A web process loads the URLconf, DRF and the views on its first request, once (~2 s of CPU here):
    # warm them up so the timing is the ingest path, as in a running server.
    assert client.get("/api/v1/aiops/metrics/").status_code == 200
    began, began_cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        response = client.post("/api/v1/aiops/metrics/", body, content_type="application/json")
        assert response.status_code == 201, response.content[:300]
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    total = MetricPoint.objects.count()
    assert total == SERIES * POINTS_PER_SERIES
    print(json.dumps({
        "bench": "aiops_ingest", "points": total, "batches": len(bodies), "batch_points": BATCH,
        "bytes_per_point": round(sum(map(len, bodies)) / total, 1), "wall_seconds": round(wall, 2),
        "points_per_second": round(total / wall), "points_per_cpu_second": round(total / cpu),
        "target_points_per_second": 20_000, **machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
