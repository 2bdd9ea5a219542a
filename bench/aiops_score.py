"""The minute scoring of 10,000 custom series (target: <= 10 s).

10,000 series with 120 points of history each (1.2 M points, loaded with COPY) are scored until the
history is worked off (every detector starts from nothing and learns it: the first runs, at most
MAX_POINTS_PER_RUN points each), then three times each series gets one new point and a minute run scores
only those (the steady state: 10,000 states restored from the database, one point each, states written
back, events applied). 1 % of the new points are spikes, so events open. Reports wall and CPU seconds of
the process for each minute run and the median one (PostgreSQL's work is in the wall figure only).
Prints one JSON line.
"""

from __future__ import annotations

import io
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.lib.aiops_bench import machine, setup

SERIES = 10_000
HISTORY = 120
MINUTE_RUNS = 3  # one run on a shared machine is noise; the median of three
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def main() -> None:
    setup("score")
    from django.db import connection

    from aiops.models import MetricSeries
    from aiops.services.scoring import ScoreResult, score_metrics
    from anomaly.models import AnomalyEvent

    last = T0 + timedelta(minutes=HISTORY - 1)
    MetricSeries.objects.bulk_create(
        [MetricSeries(name="jobs_waiting", labels={"worker": str(i)}, labels_key=f"worker={i}", first_ts=T0,
                      last_ts=last) for i in range(SERIES)], batch_size=5000,
    )  # fmt: skip
    ids = list(MetricSeries.objects.order_by("id").values_list("id", flat=True))
    rng = np.random.default_rng(0)
    buffer = io.StringIO()
    for sid in ids:
        values = 100 + rng.normal(0, 5, HISTORY)
        buffer.writelines(
            f"{sid}\t{(T0 + timedelta(minutes=m)).isoformat()}\t{values[m]:.3f}\n" for m in range(HISTORY)
        )
    buffer.seek(0)
    with connection.cursor() as cursor:
        cursor.copy_expert("COPY aiops_metricpoint (series_id, ts, value) FROM STDIN", buffer)
        cursor.execute("ANALYZE aiops_metricpoint")

    def timed(now: datetime) -> tuple[float, float, ScoreResult]:
        began, began_cpu = time.perf_counter(), time.process_time()
        result = score_metrics(now=now)
        return time.perf_counter() - began, time.process_time() - began_cpu, result

    first_wall = first_cpu = 0.0
    first_points = runs = 0
    while True:
        wall, cpu, result = timed(last + timedelta(minutes=1 + runs))
        if not result.points:
            break
        first_wall, first_cpu = first_wall + wall, first_cpu + cpu
        first_points, runs = first_points + result.points, runs + 1
    minutes = []
    for run in range(MINUTE_RUNS):
        new = T0 + timedelta(minutes=HISTORY + run)
        spikes = set(rng.choice(len(ids), SERIES // 100, replace=False).tolist())
        buffer = io.StringIO("".join(f"{sid}\t{new.isoformat()}\t{400.0 if i in spikes else 100.0}\n"
                                     for i, sid in enumerate(ids)))  # fmt: skip
        with connection.cursor() as cursor:
            cursor.copy_expert("COPY aiops_metricpoint (series_id, ts, value) FROM STDIN", buffer)
        MetricSeries.objects.update(last_ts=new)
        minutes.append(timed(new + timedelta(minutes=1)))
    wall, cpu, steady = sorted(minutes, key=lambda minute: minute[0])[MINUTE_RUNS // 2]  # the median run
    print(json.dumps({
        "bench": "aiops_score", "series": SERIES, "history_points": SERIES * HISTORY,
        "first_runs": {"runs": runs, "points": first_points, "wall_seconds": round(first_wall, 2),
                       "cpu_seconds": round(first_cpu, 2)},
        "minute_run": {"points": steady.points, "fired": steady.fired, "wall_seconds": round(wall, 2),
                       "cpu_seconds": round(cpu, 2)},
        "minute_runs_wall_cpu": [[round(w, 2), round(c, 2)] for w, c, _ in minutes],
        "events_open": AnomalyEvent.objects.filter(source="metric").count(), "target_seconds": 10.0, **machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
