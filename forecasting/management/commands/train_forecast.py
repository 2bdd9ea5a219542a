"""Train the forecasters now, in this process, with a progress bar (the LSTM's epochs, when it is a candidate)
and a final summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from sensors.models import Metric

from ...models import TrainingRun
from ...services import runs


def parse_since(value: str) -> datetime:
    """A date (midnight UTC) or an ISO datetime (naive means UTC)."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD) or ISO datetime")
        moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Train flow and/or pressure models on the readings (recorded as a training run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--metric", choices=Metric.values, help="one metric (default: both)")
        parser.add_argument("--since", help="train on readings from this date/datetime on")
        parser.add_argument("--epochs", type=int, help="maximum epochs (default FORECAST_EPOCHS)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["epochs"] is not None and options["epochs"] < 1:
            raise CommandError("--epochs must be at least 1")
        since = parse_since(options["since"]) if options["since"] else None
        metrics = [options["metric"]] if options["metric"] else list(Metric.values)
        run = runs.new_run(metrics, since=since, epochs=options["epochs"], requested_by="cli")
        bars: list[tqdm] = []

        def progress(epoch: int, epochs: int, logs: dict[str, float]) -> None:
            if epoch == 1:  # a new metric starts
                for bar in bars:
                    bar.close()
                bars[:] = [tqdm(total=epochs, desc="training", unit="epoch", file=self.stderr)]
            bars[0].set_postfix({key: f"{value:.4f}" for key, value in logs.items()})
            bars[0].update(1)

        finished = runs.execute(run.pk, progress=progress)
        for bar in bars:
            bar.close()
        if finished is None:
            raise CommandError(f"training run {run.pk} could not be claimed")
        for metric, figures in finished.summary.items():
            self.stdout.write(json.dumps({"metric": metric, **figures}))
        if finished.status == TrainingRun.Status.FAILED:
            raise CommandError(f"training run {run.pk} failed: {finished.error}")
