"""POST /api/v1/aiops/analyze on 10,000 points (target: <= 1 s).

A 5-minute series of ~35 days: a daily cycle, noise, a slow trend and 10 spikes; the default detector
(zscore) and, separately, the ensemble; STL with the default period (288), Theil-Sen + Mann-Kendall, a
12-point forecast. Timed through the whole DRF stack in process (token auth, orjson parsing, JSON
rendering), 3 runs each: wall seconds (median) and the process's CPU seconds (what an idle machine's
wall time would be: this is single-threaded code on a shared 2-core machine). Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.aiops_bench import machine, setup, token_client

POINTS = 10_000
RUNS = 3


def main() -> None:
    setup("analyze")
    from aiops.services import analyze

    rng = np.random.default_rng(0)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    timestamps = [start + timedelta(minutes=5 * i) for i in range(POINTS)]
    values = 50 + 20 * np.sin(2 * np.pi * np.arange(POINTS) / 288) + 0.001 * np.arange(POINTS)
    values += rng.normal(0, 1, POINTS)
    values[rng.choice(POINTS, 10, replace=False)] += 30
    body = {"timestamps": [ts.isoformat() for ts in timestamps], "values": values.tolist()}
    client = token_client()

    figures: dict[str, float] = {}
    for method in ("zscore", "ensemble"):
        wall, cpu = [], []
        for _ in range(RUNS):
            began, began_cpu = time.perf_counter(), time.process_time()
            response = client.post("/api/v1/aiops/analyze", {**body, "methods": [method]}, format="json")
            wall.append(time.perf_counter() - began)
            cpu.append(time.process_time() - began_cpu)
            assert response.status_code == 200, response.content[:300]
        figures[f"{method}_wall_seconds"] = round(statistics.median(wall), 3)
        figures[f"{method}_cpu_seconds"] = round(statistics.median(cpu), 3)
    began_cpu = time.process_time()
    result = analyze.analyze(timestamps, values.tolist(), analyze.Options())
    figures["service_cpu_seconds"] = round(time.process_time() - began_cpu, 3)
    print(json.dumps({
        "bench": "aiops_analyze", "points": POINTS, "period": result["seasonal"]["period"], **figures,
        "flagged": result["detection"]["zscore"]["flagged"], "body_bytes": len(json.dumps(body)),
        "target_seconds": 1.0, **machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
