"""`manage.py replay_detection --from 2024-01-01 --to 2025-01-01 [--sensor 001 ...]`.

Runs the sensor methods over stored history exactly as the live minute job would (anomaly.services.replay):
criteria from the data before each period, night flow, events opened, extended and closed — marked as
replayed, never notified. Idempotent: a second run over the same window gives the same events. One
transaction: interrupted, it stores nothing. Progress (replayed minutes) on stderr.
"""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from anomaly.services.replay import MIN_HISTORY_DAYS, ReplayError, replay


def moment(text: str) -> datetime:
    """ISO date or date-time; without an offset it is local time (TIME_ZONE)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"{text!r} is not an ISO date or date-time (2024-01-01, 2024-01-01T06:00)") from exc
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)


class Command(BaseCommand):
    help = "Replay the sensor methods over stored readings (e.g. imported SCADA history); events marked replayed."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--from", dest="start", required=True, help=f"first minute (local: {settings.TIME_ZONE})")
        parser.add_argument("--to", dest="end", required=True, help="end, exclusive")
        parser.add_argument("--sensor", nargs="+", help="sensor codes (default: every sensor that reported then)")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = moment(options["start"]), moment(options["end"])
        with tqdm(unit=" min", desc="replay", disable=None) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                result = replay(start, end, options["sensor"], progress=progress)
            except ReplayError as exc:
                raise CommandError(str(exc)) from exc
        local = timezone.localtime
        if result.start < start:
            began = f"{local(result.start):%Y-%m-%d %H:%M}"
            self.stdout.write(f"an episode going on at --from was replayed from its start, {began}")
        for period in result.periods:
            version = period.version
            criteria = (
                f"criteria v{version.pk} ({version.sensors} sensor(s), {local(version.data_start):%Y-%m-%d} to "
                f"{local(version.data_end):%Y-%m-%d})"
                if version
                else f"no criteria (under {MIN_HISTORY_DAYS} days of history before it): value and night silent"
            )
            self.stdout.write(f"period {local(period.start):%Y-%m-%d} to {local(period.end):%Y-%m-%d}: {criteria}")
        events = ", ".join(f"{key} {count}" for key, count in sorted(result.events.items())) or "none"
        self.stdout.write(
            f"{len(result.sensors)} sensor(s), {result.minutes} minutes replayed "
            f"({local(result.start):%Y-%m-%d %H:%M} to {local(result.end):%Y-%m-%d %H:%M}); replayed events: {events}"
        )
