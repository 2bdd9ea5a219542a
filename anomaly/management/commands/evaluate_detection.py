"""`manage.py evaluate_detection`: detection quality, two ways.

- `[--sensors 50] [--days 30] [--seed 11]`: the sensor methods on the simulator, precision, recall and
  delay per fault kind.
- `--csv-dir DIR --windows FILE [--method M]`: a generic detector on your own labelled series (NAB layout:
  CSVs with `timestamp,value`, a JSON of labelled windows per file): NAB standard-profile score, episode
  precision and recall, mean detection delay.
"""

from __future__ import annotations

import time
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from anomaly.detectors import DEFAULT_METHOD, METHODS
from anomaly.evaluation import Plan, as_json, run
from anomaly.nab import DatasetError, evaluate_folder


class Command(BaseCommand):
    help = "Run the simulator with injected faults and score every sensor method against its ground truth."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sensors", type=int, default=50)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--history-days", type=int, default=14, help="clean days the criteria are built from")
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--cadence", type=int, default=1, help="minutes between stored readings (SCADA: 5, 15)")
        parser.add_argument("--json", action="store_true", help="only the JSON report, on one line")
        parser.add_argument("--csv-dir", type=Path, help="labelled series: a folder of CSVs (NAB layout)")
        parser.add_argument("--windows", type=Path, help="with --csv-dir: JSON of labelled windows per file")
        parser.add_argument("--method", default=DEFAULT_METHOD, choices=METHODS, help="with --csv-dir")
        parser.add_argument("--timestamp-col", default="timestamp", help="with --csv-dir")
        parser.add_argument("--value-col", default="value", help="with --csv-dir")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        if options["csv_dir"] or options["windows"]:
            self._labelled(options, started)
            return
        plan = Plan(sensors=options["sensors"], days=options["days"], history_days=options["history_days"],
                    seed=options["seed"], cadence_minutes=options["cadence"])  # fmt: skip
        report = run(plan)
        report["seconds"] = round(time.perf_counter() - started, 1)
        if options["json"]:
            self.stdout.write(as_json(report))
            return
        self.stdout.write(f"{plan.sensors} sensors x {plan.days} days, {report['plan']['faults']} faults")
        self.stdout.write(
            "| fault | faults | recall | recall within target | target | median / max delay | precision |"
        )
        self.stdout.write("|---|---|---|---|---|---|---|")
        for kind, row in report["faults"]["kinds"].items():
            self.stdout.write(
                f"| {kind} | {row['faults']} | {row['recall']} | {row['recall_within_target']} | "
                f"{row['target_delay_minutes']:g} min | {row['median_delay_minutes']} / "
                f"{row['max_delay_minutes']} min | {row['precision']} |"
            )
        for method, row in report["faults"]["methods"].items():
            self.stdout.write(
                f"method {method}: {row['events']} events, {row['matched']} matched, precision {row['precision']}"
            )
        self.stdout.write(
            f"unmatched events with faults: {report['faults']['false_events_per_sensor_week']} per sensor-week; "
            f"clean data: {report['clean']['false_events_per_sensor_week']} per sensor-week "
            f"{report['clean']['by_method']}"
        )
        for leak in report["leaks"]:
            self.stdout.write(f"leak {leak}")
        self.stdout.write(as_json(report))

    def _labelled(self, options: dict[str, Any], started: float) -> None:
        if not (options["csv_dir"] and options["windows"]):
            raise CommandError("--csv-dir and --windows go together")
        try:
            report = evaluate_folder(
                options["csv_dir"],
                options["windows"],
                method=options["method"],
                clean_points=settings.ANOMALY_CLEAN_MINUTES,
                timestamp_col=options["timestamp_col"],
                value_col=options["value_col"],
            ).as_dict()
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        report["method"] = options["method"]
        report["seconds"] = round(time.perf_counter() - started, 1)
        if not options["json"]:
            delay = report["mean_detection_delay_seconds"]
            self.stdout.write(
                f"{report['files']} files, {report['windows']} windows, method {options['method']}: "
                f"NAB standard score {report['nab_standard_score']}, {report['alarms']} alarms, "
                f"episode precision {report['episode_precision']}, recall {report['episode_recall']}, "
                f"mean detection delay {'-' if delay is None else f'{delay / 60:.1f} min'} from the window start"
            )
        self.stdout.write(as_json(report))
