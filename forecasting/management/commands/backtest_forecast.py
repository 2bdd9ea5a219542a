"""Backtest the forecaster on a CSV export: prints one JSON line (model vs seasonal naive)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...services import ForecastError
from ...services.backtest import backtest, read_exog, to_utc

HORIZONS = {"24h": 24, "7d": 168}


STEP_PATTERN = re.compile(r"^\s*(\d+)\s*([dh])\s*$", re.IGNORECASE)


def parse_step(value: str) -> pd.Timedelta:
    """`7d`, `24h`, `1d`...: whole days or hours."""
    match = STEP_PATTERN.match(value)
    if match is None:
        raise CommandError(f"--step {value!r} is not a duration like 7d or 24h")
    count, unit = int(match.group(1)), match.group(2).lower()
    return pd.Timedelta(days=count) if unit == "d" else pd.Timedelta(hours=count)


class Command(BaseCommand):
    help = (
        "Train on the rows before --train-until only, forecast at it (and at later origins without "
        "retraining), and print the model's and seasonal naive's errors as one JSON line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--timestamp-col", required=True)
        parser.add_argument("--value-col", required=True)
        parser.add_argument("--train-until", required=True, help="ISO timestamp (naive = --tz local time)")
        parser.add_argument("--horizon", choices=sorted(HORIZONS), default="7d")
        parser.add_argument("--origins", type=int, default=1)
        parser.add_argument("--step", default="7d", help="time between origins (e.g. 7d, 24h)")
        parser.add_argument("--epochs", type=int, help="maximum epochs (default FORECAST_EPOCHS)")
        parser.add_argument("--tz", help="time zone of naive timestamps (default TIME_ZONE)")
        parser.add_argument(
            "--predictions", type=Path, help="write timestamp,origin,actual,model,baseline,lower,upper here"
        )
        parser.add_argument(
            "--exog", type=Path, help="CSV of exogenous inputs (e.g. the site's weather forecast), hourly or finer"
        )
        parser.add_argument("--exog-cols", help="comma-separated columns of --exog to use (e.g. rain_mm,air_temp_C)")
        parser.add_argument("--exog-timestamp-col", help="timestamp column of --exog (default: --timestamp-col)")

    def handle(self, *args: Any, **options: Any) -> None:
        from django.conf import settings

        time_zone = options["tz"] or settings.TIME_ZONE
        train_until = to_utc(pd.Series([options["train_until"]]), time_zone).iloc[0]
        if pd.isna(train_until):
            raise CommandError(f"--train-until {options['train_until']!r} is not a timestamp")
        if bool(options["exog"]) != bool(options["exog_cols"]):
            raise CommandError("--exog and --exog-cols go together")
        try:
            exog = None
            if options["exog"]:
                columns = [name.strip() for name in options["exog_cols"].split(",") if name.strip()]
                exog = read_exog(
                    options["exog"], options["exog_timestamp_col"] or options["timestamp_col"], columns, time_zone
                )
            report = backtest(
                options["file"],
                timestamp_col=options["timestamp_col"],
                value_col=options["value_col"],
                train_until=train_until,
                horizon_hours=HORIZONS[options["horizon"]],
                origins=options["origins"],
                step=parse_step(options["step"]),
                epochs=options["epochs"],
                time_zone=time_zone,
                predictions_path=options["predictions"],
                exog=exog,
            )
        except ForecastError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(report))
