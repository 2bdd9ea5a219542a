"""`manage.py import_orgs FILE.csv`: add or update tracked organisations; report rejected rows and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest.importing import BadHeaderError, import_rows


class Command(BaseCommand):
    help = "Import organisations from a CSV with header name,org_type,business_number,corporate_number."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        try:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                report = import_rows(handle)
        except BadHeaderError as exc:
            raise CommandError(f"{path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path}: not UTF-8 text ({exc.reason})") from exc
        for line, reason in report.rejected:
            self.stderr.write(f"line {line}: rejected: {reason}")
        self.stdout.write(f"{report.created} created, {report.updated} updated, {len(report.rejected)} rejected")
