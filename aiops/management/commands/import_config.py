"""`manage.py import_config F [--dry-run]`: validate the whole file, print the diff, apply all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aiops import configio


class Command(BaseCommand):
    help = "Import a configuration written by export_config: validated first, then applied in one transaction."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="validate and print the diff; change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = options["file"].read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {options['file']}: {exc.strerror}") from exc
        try:
            report = configio.apply(text, dry_run=options["dry_run"])
        except configio.ConfigError as exc:
            raise CommandError(f"{options['file']} rejected, nothing changed: {exc}") from exc
        self.stdout.write(report.text)
