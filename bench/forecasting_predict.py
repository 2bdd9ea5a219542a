"""Prediction speed: 7-day forecasts for 1 sensor and for many, model forward pass and the full hourly run.

1. forward: `forecast()` on in-memory hourly series (1 sensor, then --sensors at once), warm and cold.
2. hourly run: `predict_hourly()` against the database in DATABASE_URL (use a dedicated one: readings are
   emptied first) holding --sensors sensors x 28 days (what a forecast reads) of readings every --every
   minutes, with an active model version (the costliest forecaster: the LSTM, the trees fitted on the
   synthetic series and the seasonal profile mixed by lead day): read + resample in SQL + forecast both metrics + upsert
   2 x 168 rows per sensor + hand-over to sensors. Prints one JSON line.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pw_forecasting_bench_predict \
        .venv/bin/python bench/forecasting_predict.py --sensors 1000 --every 10
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
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("FORECAST_MODEL_DIR", tempfile.mkdtemp(prefix="forecast-bench-"))

import django

django.setup()

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from forecasting.models import ModelVersion
from forecasting.services import registry
from forecasting.services.boosting import fit_boosted
from forecasting.services.forecaster import Forecaster, forecast
from forecasting.services.model import build_model
from forecasting.services.panel import build_panel
from forecasting.services.prediction import predict_hourly
from forecasting.services.series import HISTORY_HOURS, HORIZON_HOURS, LAG_HOURS, HourlySeries, Scaler
from sensors.models import Sensor
from sensors.simulation import simulate

ISSUED = datetime(2026, 3, 16, tzinfo=UTC)


def hourly(count: int) -> list[HourlySeries]:
    start = pd.Timestamp(ISSUED) - pd.Timedelta(hours=HISTORY_HOURS)
    hours = np.arange(HISTORY_HOURS)
    rng = np.random.default_rng(0)
    return [
        HourlySeries(f"{n:03d}", start, 100 + 40 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 2, HISTORY_HOURS))
        for n in range(count)
    ]


def blend() -> Forecaster:
    """The costliest forecaster: an LSTM (untrained: the forward pass costs the same), trees fitted on synthetic
    series and the seasonal profile, all three mixed (per-lead-day shares)."""
    series = hourly(4)
    panel = build_panel(series, [Scaler(100.0, 30.0)] * len(series), settings.TIME_ZONE)
    origins = np.concatenate(
        [panel.global_origins(i, np.arange(LAG_HOURS, HISTORY_HOURS - HORIZON_HOURS)) for i in range(len(series))]
    )
    return Forecaster(
        "blend",
        lstm=build_model(settings.FORECAST_LSTM_UNITS),
        boosted=fit_boosted(panel, origins, seed=0, max_rows=settings.FORECAST_TREE_ROWS)[0],
        shares=[{"lstm": 0.5, "boosted": 0.5}] * 6 + [{"boosted": 0.5, "profile": 0.5}],
        band=[[-1.0, 1.0]] * 7,
    )


def timed(function: object, *args: object) -> float:
    started = time.perf_counter()
    function(*args)  # type: ignore[operator]
    return time.perf_counter() - started


def forward(model: object, count: int) -> dict:
    one, many = hourly(1), hourly(count)
    origin = pd.Timestamp(ISSUED)
    cold = timed(forecast, model, {}, one, origin, settings.TIME_ZONE)
    warm = min(timed(forecast, model, {}, one, origin, settings.TIME_ZONE) for _ in range(5))
    many_cold = timed(forecast, model, {}, many, origin, settings.TIME_ZONE)
    many_warm = min(timed(forecast, model, {}, many, origin, settings.TIME_ZONE) for _ in range(2))
    return {
        "one_sensor_first_call_s": round(cold, 3),
        "one_sensor_s": round(warm, 4),
        f"{count}_sensors_first_call_s": round(many_cold, 3),
        f"{count}_sensors_s": round(many_warm, 3),
    }


def load(count: int, every: int) -> tuple[int, float]:
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE sensors_sensor, sensors_reading, forecasting_modelversion RESTART IDENTITY CASCADE")
    started = time.perf_counter()
    codes = [f"{n:03d}" for n in range(count)]
    Sensor.objects.bulk_create([Sensor(code=code) for code in codes])
    ids = dict(Sensor.objects.values_list("code", "id"))
    rows = 0
    for begin in range(0, count, 100):
        chunk = codes[begin : begin + 100]
        readings = simulate(chunk, ISSUED - timedelta(hours=HISTORY_HOURS), HISTORY_HOURS * 60, seed=4).readings
        readings = readings[readings["ts"].dt.minute % every == 0]
        buffer = io.StringIO()
        readings.assign(sensor_id=readings["sensor"].map(ids), received_at=ISSUED)[
            ["sensor_id", "ts", "flow", "pressure", "status", "received_at"]
        ].to_csv(buffer, index=False, header=False)
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.copy_expert(
                "COPY sensors_reading (sensor_id, ts, flow, pressure, status, received_at) FROM STDIN WITH CSV", buffer
            )
        rows += len(readings)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sensors_reading")
    return rows, time.perf_counter() - started


def activate(model: object) -> None:
    """Register the forecaster as the active version of both metrics."""
    for metric in ("flow", "pressure"):
        version = ModelVersion.objects.create(
            metric=metric, data_start=ISSUED, data_end=ISSUED, validation_start=ISSUED, mae=0.0, baseline_mae=1.0
        )
        fitted = type("Fitted", (), {"model": model, "scalers": {}, "params": {"time_zone": settings.TIME_ZONE}})
        registry.save_artifact(version, fitted)  # type: ignore[arg-type]
        registry.activate(version, "benchmark")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--every", type=int, default=10, help="minutes between stored readings")
    args = parser.parse_args()
    model = blend()
    figures = {"bench": "forecasting_predict", "sensors": args.sensors, **forward(model, args.sensors)}
    rows, load_seconds = load(args.sensors, args.every)
    activate(model)
    first = predict_hourly(ISSUED + timedelta(minutes=2))
    again = predict_hourly(ISSUED + timedelta(minutes=3))  # the same issue hour again: replaces the rows
    figures.update(
        {
            "readings": rows,
            "reading_every_min": args.every,
            "load_seconds": round(load_seconds, 1),
            "hourly_run_s": first["seconds"],
            "hourly_rerun_s": again["seconds"],
            "hourly_run_phases_s": first["phase_seconds"],
            "forecast_rows": sum(metric["rows"] for metric in first["metrics"].values()),
            "sources": sorted({metric["source"] for metric in first["metrics"].values()}),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
