"""`manage.py build_criteria [--sensor CODE ...] [--from-file F]`: a new criteria version, now."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from anomaly.criteria import CriteriaError, build_criteria


class Command(BaseCommand):
    help = "New criteria version: from --from-file, else the DB once it holds enough days, else the initial file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--sensor", action="append", dest="sensors", help="sensor code (repeatable)")
        parser.add_argument("--from-file", type=Path, help="CSV(.gz) with sensor, ts, flow, pressure columns")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            version = build_criteria(options["sensors"], options["from_file"])
        except CriteriaError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"criteria v{version.pk}: {version.source} ({version.source_detail}), {version.sensors} sensors, "
            f"{version.readings} readings from {version.data_start:%Y-%m-%d %H:%M} to {version.data_end:%Y-%m-%d %H:%M}"
        )
