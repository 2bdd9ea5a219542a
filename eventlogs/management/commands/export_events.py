"""`manage.py export_events KIND --purpose analysis|training --from T --to T --output DIR`: Parquet datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...models import Kind
from ...services.export import export
from ._times import add_range


class Command(BaseCommand):
    help = "Write a kind's events as a partitioned Parquet dataset (analysis: enriched columns; training: features)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=Kind.values)
        parser.add_argument("--purpose", choices=["analysis", "training"], default="analysis")
        add_range(parser)
        parser.add_argument("--output", required=True, type=Path)
        parser.add_argument("--truth", type=Path, help="training: label rows from a generator's ground truth")

    def handle(self, *args: Any, **opts: Any) -> None:
        result = export(opts["kind"], opts["purpose"], opts["start"], opts["end"], opts["output"], truth=opts["truth"])
        source = "detection features" if result.features else "enriched columns"
        self.stdout.write(
            f"{opts['kind']} {opts['purpose']} ({source}): {result.rows} rows in {len(result.files)} files"
        )
