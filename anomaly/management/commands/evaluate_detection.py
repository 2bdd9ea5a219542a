"""`manage.py evaluate_detection [--sensors 50] [--days 30] [--seed 11]`: precision, recall, delay per fault kind."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from anomaly.evaluation import Plan, as_json, run


class Command(BaseCommand):
    help = "Run the simulator with injected faults and score every sensor method against its ground truth."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sensors", type=int, default=50)
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--history-days", type=int, default=14, help="clean days the criteria are built from")
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--json", action="store_true", help="only the JSON report, on one line")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        plan = Plan(sensors=options["sensors"], days=options["days"], history_days=options["history_days"],
                    seed=options["seed"])  # fmt: skip
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
