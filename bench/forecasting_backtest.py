# Django is set up before the app modules are imported (they need settings):
# ruff: noqa: E402
"""backtest_forecast on an operator-style export: one year of the "harder" synthetic series (see
forecasting_accuracy.py) written as naive Europe/Berlin local times every 15 minutes (so it crosses both
DST changes), shuffled, with junk rows; trained until 1 October, 8 weekly origins. Prints the command's
JSON line (plus the bench name).

    .venv/bin/python bench/forecasting_backtest.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from io import StringIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import django

django.setup()

import numpy as np
import pandas as pd
from django.core.management import call_command

from bench.forecasting_accuracy import harder

TIME_ZONE = "Europe/Berlin"


def export(path: Path) -> None:
    series = harder(1, 365)["h000"]
    hours = pd.date_range(series.start, periods=len(series.values), freq="h")
    quarter = pd.date_range(hours[0], hours[-1], freq="15min")
    hourly = pd.Series(series.values, index=hours).reindex(quarter, method="ffill")
    noise = np.random.default_rng(3).normal(0, 0.02, len(quarter))
    frame = pd.DataFrame(
        {
            "Zeit": quarter.tz_convert(TIME_ZONE).strftime("%Y-%m-%d %H:%M"),
            "Durchfluss": hourly.to_numpy() * (1 + noise),
        }
    )
    frame = frame.dropna()
    junk = pd.DataFrame({"Zeit": ["", "kaputt", frame["Zeit"].iloc[5]], "Durchfluss": [1.0, 2.0, np.nan]})
    pd.concat([frame, junk]).sample(frac=1.0, random_state=1).to_csv(path, index=False)


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "export.csv"
        export(path)
        out = StringIO()
        call_command(
            "backtest_forecast",
            str(path),
            "--timestamp-col", "Zeit", "--value-col", "Durchfluss", "--tz", TIME_ZONE,
            "--train-until", "2025-10-01 00:00", "--origins", "8", "--step", "7d",
            stdout=out,
        )  # fmt: skip
    print(json.dumps({"bench": "forecasting_backtest", **json.loads(out.getvalue())}))


if __name__ == "__main__":
    main()
