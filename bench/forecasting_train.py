"""Training from the database: N sensors x D days of minute readings -> one model version per metric.

Loads simulated minute readings (sensors.simulation) into the database given by DATABASE_URL (use a
dedicated one: it trains on every sensor there; --fresh empties it, otherwise only sensors not loaded
yet are added, so 10 -> 100 sensors reuses the first 10), then times train_metric: read + hourly resample
in SQL + train + validate + save. Prints one JSON line.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_forecasting_bench \
        .venv/bin/python bench/forecasting_train.py --sensors 1 --days 365 [--metrics flow,pressure] \
        [--parallel] [--fresh]
"""

# Django is set up before the app modules are imported (they need settings):
# ruff: noqa: E402
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import django

django.setup()

from django.core.management import call_command
from django.db import connection

from forecasting.services.training import summary, train_metric
from sensors.models import Sensor
from sensors.simulation import simulate

START = datetime(2025, 1, 1, tzinfo=UTC)


def load(sensors: int, days: int, *, fresh: bool) -> tuple[int, float]:
    """COPY simulated minute readings in, one sensor at a time, for the sensors not loaded yet
    (--fresh empties the tables first; a kept table must hold the same --days)."""
    call_command("migrate", verbosity=0)
    if fresh:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE sensors_sensor, sensors_reading RESTART IDENTITY CASCADE")
    started = time.perf_counter()
    rows = 0
    for number in range(1, sensors + 1):
        code = f"{number:03d}"
        if Sensor.objects.filter(code=code).exists():
            continue
        sensor = Sensor.objects.create(code=code)
        readings = simulate([code], START, days * 1440, seed=11).readings
        buffer = io.StringIO()
        readings.assign(sensor_id=sensor.pk, received_at=START)[
            ["sensor_id", "ts", "flow", "pressure", "status", "received_at"]
        ].to_csv(buffer, index=False, header=False)
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.copy_expert(
                "COPY sensors_reading (sensor_id, ts, flow, pressure, status, received_at) FROM STDIN WITH CSV",
                buffer,
            )
        rows += len(readings)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sensors_reading")
    return rows, time.perf_counter() - started


def train(metric: str) -> dict:
    connection.close()  # a fresh connection per (possibly forked) process
    started = time.perf_counter()
    version = train_metric(metric)
    figures = summary(version)
    figures["wall_seconds"] = round(time.perf_counter() - started, 2)
    figures["read_seconds"] = version.params["read_seconds"]
    figures["fit_seconds"] = version.params["fit_seconds"]
    figures["pool_windows"] = version.params["pool_windows"]
    figures["mae_24h_ratio"] = (
        round(version.mae_24h / version.baseline_mae_24h, 4) if version.mae_24h and version.baseline_mae_24h else None
    )
    figures.pop("reason")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensors", type=int, default=1)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--metrics", default="flow")
    parser.add_argument("--parallel", action="store_true", help="train the metrics in parallel processes")
    parser.add_argument("--fresh", action="store_true", help="empty the readings first (else add missing sensors)")
    args = parser.parse_args()
    rows, load_seconds = load(args.sensors, args.days, fresh=args.fresh)
    metrics = args.metrics.split(",")
    started = time.perf_counter()
    if args.parallel:
        connection.close()
        with ProcessPoolExecutor(max_workers=len(metrics)) as pool:
            results = list(pool.map(train, metrics))
    else:
        results = [train(metric) for metric in metrics]
    print(
        json.dumps(
            {
                "bench": "forecasting_train",
                "sensors": args.sensors,
                "days": args.days,
                "rows_loaded_now": rows,
                "load_seconds": round(load_seconds, 1),
                "mode": "parallel" if args.parallel else "sequence",
                "total_train_seconds": round(time.perf_counter() - started, 1),
                "metrics": results,
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
    )


if __name__ == "__main__":
    main()
