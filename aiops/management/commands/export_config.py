"""`manage.py export_config [--output F]`: everything an operator configures, as one YAML file (no secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from aiops import configio


class Command(BaseCommand):
    help = "Write the site's configuration (sensors, method settings, schedules, organisations, ...) as YAML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        text = configio.dump(configio.export())
        if options["output"]:
            options["output"].write_text(text, encoding="utf-8")
            self.stderr.write(f"configuration written to {options['output']}")
        else:
            self.stdout.write(text, ending="")
