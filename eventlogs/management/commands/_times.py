"""--from/--to options shared by the eventlogs commands (ISO 8601; naive times are in TIME_ZONE)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone


def _parse(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not an ISO 8601 date or time") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def add_range(parser: CommandParser, *, required: bool = False) -> None:
    parser.add_argument("--from", dest="start", type=_parse, required=required, help="ISO 8601 (inclusive)")
    parser.add_argument("--to", dest="end", type=_parse, required=required, help="ISO 8601 (exclusive)")


def time_range(opts: dict[str, Any]) -> tuple[datetime, datetime]:
    start = opts["start"] or datetime(1970, 1, 1, tzinfo=UTC)
    end = opts["end"] or timezone.now()
    if start >= end:
        raise CommandError("--from must be before --to")
    return start, end
