"""`manage.py recover_failed_events --kind K [--reason R]`: re-run failed events after a schema fix."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...models import FailedEvent, Kind
from ...services.recovery import recover


class Command(BaseCommand):
    help = "Validate and convert unrecovered failed events again; those that pass are stored and marked recovered."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", required=True, choices=Kind.values)
        parser.add_argument("--reason", choices=FailedEvent.Reason.values)
        parser.add_argument("--limit", type=int)

    def handle(self, *args: Any, **opts: Any) -> None:
        result = recover(opts["kind"], opts["reason"], opts["limit"])
        self.stdout.write(f"{opts['kind']}: {result.recovered} recovered, {result.still_failing} still failing")
