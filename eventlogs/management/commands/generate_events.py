"""`manage.py generate_events KIND`: play one of the four scenarios and send its records somewhere.

    manage.py generate_events lol --seed 7 --speed max --to events.ndjson --truth truth.csv
    manage.py generate_events hotel --speed realtime --to http://127.0.0.1:8000/api/v1/events/hotel/ --token KEY

`--to` is a file, `-` (stdout) or an http(s) URL (the collector; gzip NDJSON batches, retried with
backoff). `--speed realtime` keeps the scenario's pace, `max` sends as fast as possible, a number is a
speed-up factor. `--truth` writes the ground truth (CSV: kind, game, account, abnormal, behaviour, detail).
"""

from __future__ import annotations

import csv
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...generators import GENERATORS, Event, Options, TruthRow
from ...services.sender import DeliveryError, post_batch


def speed_factor(value: str) -> float:
    """realtime = 1, max = 0 (no waiting), else a positive speed-up factor."""
    if value == "realtime":
        return 1.0
    if value == "max":
        return 0.0
    try:
        factor = float(value)
    except ValueError:
        raise CommandError(f"--speed {value!r}: use realtime, max or a number") from None
    if factor <= 0:
        raise CommandError("--speed must be positive")
    return factor


class Command(BaseCommand):
    help = "Generate one scenario's event logs (lol, hotel, raid, ad) to a file, stdout or the collector."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=sorted(GENERATORS))
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--speed", default="max", help="realtime, max, or a speed-up factor (default max)")
        parser.add_argument("--duration", type=float, help="seconds of scenario time (default: the scenario's)")
        parser.add_argument("--start", help="ISO time of the run's first instant (default: now)")
        parser.add_argument("--players", type=int, help="players (lol, raid)")
        parser.add_argument("--users", type=int, help="users (hotel, ad)")
        parser.add_argument("--rooms", type=int, help="rooms (lol, raid)")
        parser.add_argument("--abnormal", type=int, default=0, help="extra abnormal accounts (hotel, raid, ad)")
        parser.add_argument("--to", default="-", help="FILE, - (stdout) or the collector's URL")
        parser.add_argument("--token", default="", help="API token for --to URL")
        parser.add_argument("--token-file", type=Path, help="read the API token from this file")
        parser.add_argument("--retries", type=int, default=8, help="attempts per batch before failing loudly")
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--flush-seconds", type=float, default=1.0, help="longest a record waits (paced runs)")
        parser.add_argument("--truth", help="write the ground truth CSV here")

    def handle(self, *args: Any, **opts: Any) -> None:
        start = datetime.fromisoformat(opts["start"]) if opts["start"] else datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        options = Options(
            start=start,
            seed=opts["seed"],
            duration=opts["duration"],
            players=opts["players"] or opts["users"],
            rooms=opts["rooms"],
            abnormal=opts["abnormal"],
        )
        self._stopping = False
        signal.signal(signal.SIGTERM, self._stop)
        factor = speed_factor(opts["speed"])
        token = opts["token_file"].read_text().strip() if opts["token_file"] else opts["token"]
        sink = Sink(opts["to"], token, opts["batch_size"], opts["retries"])
        truth_file = Path(opts["truth"]).open("w", newline="") if opts["truth"] else None  # noqa: SIM115 - closed in finally
        truth = csv.writer(truth_file) if truth_file else None
        if truth:
            truth.writerow(["kind", "game", "account", "abnormal", "behaviour", "detail"])
        sent = 0
        began = time.monotonic()
        try:
            for game in GENERATORS[opts["kind"]](options):
                if truth and truth_file:
                    truth.writerows(_truth_row(row) for row in game.truth)
                    truth_file.flush()
                for event in game.events:
                    if self._stopping:
                        break
                    if factor:
                        self._wait_for(event, factor, began, sink, opts["flush_seconds"])
                    sink.add(event.record)
                    sent += 1
                if self._stopping:
                    break
            sink.flush()
        except DeliveryError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            sink.flush()
        finally:
            sink.close()
            if truth_file:
                truth_file.close()
        self.stderr.write(f"{opts['kind']}: {sent} records, {sink.batches} batches")

    def _stop(self, *_: Any) -> None:
        self._stopping = True

    @staticmethod
    def _wait_for(event: Event, factor: float, began: float, sink: Sink, flush_seconds: float) -> None:
        """Sleep until the event is due, flushing what waits at least every flush_seconds."""
        while (delay := event.offset / factor - (time.monotonic() - began)) > 0:
            time.sleep(min(delay, flush_seconds))
            if sink.age() >= flush_seconds:
                sink.flush()


def _truth_row(row: TruthRow) -> list[str]:
    return [row.kind, row.game, row.account, "1" if row.abnormal else "0", row.behaviour, row.detail]


class Sink:
    """NDJSON to a file/stdout, or batches to the collector."""

    def __init__(self, target: str, token: str, batch_size: int, retries: int) -> None:
        self.url = target if target.startswith(("http://", "https://")) else ""
        self.token = token
        self.retries = retries
        self.batch_size = batch_size
        self.batches = 0
        self._pending: list[dict[str, Any]] = []
        self._since = time.monotonic()
        self._session = requests.Session() if self.url else None
        self._out: IO[bytes] | None = None
        if not self.url:
            self._out = sys.stdout.buffer if target == "-" else Path(target).open("wb")  # noqa: SIM115 - close()

    def add(self, record: dict[str, Any]) -> None:
        if not self._pending:
            self._since = time.monotonic()
        self._pending.append(record)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def age(self) -> float:
        return time.monotonic() - self._since if self._pending else 0.0

    def flush(self) -> None:
        if not self._pending:
            return
        if self._session is not None:
            post_batch(self._session, self.url, self.token, self._pending, attempts=self.retries)
        elif self._out is not None:
            self._out.write(b"".join(orjson.dumps(record) + b"\n" for record in self._pending))
            self._out.flush()
        self.batches += 1
        self._pending = []

    def close(self) -> None:
        if self._out is not None and self._out is not sys.stdout.buffer:
            self._out.close()
