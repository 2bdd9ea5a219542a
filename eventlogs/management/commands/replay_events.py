"""`manage.py replay_events --kind K --from T --to T [--enqueue]`: rebuild downstream tables from the archive."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ...models import Kind
from ...services.replay import replay
from ._times import add_range, time_range


class Command(BaseCommand):
    help = "Re-enrich every archived batch of a kind in a time range (idempotent; restores lost batch rows)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kind", required=True, choices=Kind.values)
        add_range(parser)
        parser.add_argument("--enqueue", action="store_true", help="send the batches to the events workers")

    def handle(self, *args: Any, **opts: Any) -> None:
        start, end = time_range(opts)
        result = replay(opts["kind"], start, end, enqueue_batches=opts["enqueue"])
        self.stdout.write(
            f"{opts['kind']}: {result.files} files, {result.batches} batches ({result.restored} restored), "
            f"{result.records} records {'queued' if opts['enqueue'] else 'enriched'}"
        )
