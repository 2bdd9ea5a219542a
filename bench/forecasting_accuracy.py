"""Accuracy against seasonal naive on generated hourly data (no database): model MAE / naive MAE at 24 h
and 168 h on the time-based validation windows. Two honest sources:

- "simulator": sensors.simulation minute data (daily/weekly demand shape, 3 % minute noise), hourly means;
- "harder": hourly demand with a daily shape whose amplitude differs by weekday, a slowly wandering level
  (AR(1), not repeating weekly), 6 % hourly noise, random public holidays that behave like Sundays and
  2 % missing hours.

    .venv/bin/python bench/forecasting_accuracy.py [--sensors 10 --days 365]
"""

# Django is set up before the app modules are imported (they need settings):
# ruff: noqa: E402
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import django

django.setup()

import numpy as np
import pandas as pd
from django.conf import settings

from forecasting.services.series import HourlySeries, hourly_series
from forecasting.services.training import fit_with_settings
from sensors.simulation import simulate

START = datetime(2025, 1, 1, tzinfo=UTC)


def simulator(sensors: int, days: int) -> dict[str, HourlySeries]:
    readings = simulate([f"{n:03d}" for n in range(1, sensors + 1)], START, days * 1440, seed=2).readings
    readings["hour"] = readings["ts"].dt.floor("h")
    grouped = readings.groupby(["sensor", "hour"])["flow"].agg(["mean", "size"]).reset_index()
    return hourly_series(grouped.rename(columns={"sensor": "key", "mean": "value", "size": "rows"}))


def harder(sensors: int, days: int) -> dict[str, HourlySeries]:
    rng = np.random.default_rng(7)
    index = pd.date_range(START, periods=days * 24, freq="h").tz_convert(settings.TIME_ZONE)
    hour, weekday = index.hour.to_numpy(), index.day_of_week.to_numpy()
    holidays = rng.choice(days, size=days // 30, replace=False)
    day_number = np.arange(len(index)) // 24
    sunday_like = (weekday == 6) | np.isin(day_number, holidays)
    result = {}
    for number in range(sensors):
        base = rng.uniform(30, 300)
        amplitude = np.where(sunday_like, 0.25, np.where(weekday == 5, 0.4, 0.6 + 0.03 * weekday))
        shape = 1 + amplitude * np.sin(2 * np.pi * (hour - 7) / 24) + 0.2 * np.cos(4 * np.pi * hour / 24)
        level = np.zeros(len(index))
        for step in range(1, len(index)):
            level[step] = 0.999 * level[step - 1] + rng.normal(0, 0.004)
        values = base * shape * (1 + level) * (1 + rng.normal(0, 0.06, len(index)))
        values[rng.random(len(index)) < 0.02] = np.nan
        key = f"h{number:03d}"
        result[key] = HourlySeries(key, pd.Timestamp(START), values, len(index))
    return result


def score(series: dict[str, HourlySeries]) -> dict:
    started = time.perf_counter()
    result = fit_with_settings(series)
    model, naive = result.model_errors, result.baseline_errors
    return {
        "ratio_24h": round(model["mae_24h"] / naive["mae_24h"], 4),
        "ratio_168h": round(model["mae"] / naive["mae"], 4),
        "ratio_25_168h": round(model["mae_25_168h"] / naive["mae_25_168h"], 4),
        "model_mape": round(model["mape"], 3),
        "naive_mape": round(naive["mape"], 3),
        "validation_windows": result.validation_windows,
        "epochs": result.epochs,
        "candidate": result.params["kind"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sensors", type=int, default=10)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    figures = {
        "bench": "forecasting_accuracy",
        "sensors": args.sensors,
        "days": args.days,
        "simulator_flow": score(simulator(args.sensors, args.days)),
        "harder_synthetic": score(harder(args.sensors, args.days)),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
