"""What every generator shares: events with their offset in the run, ground-truth rows, record formatting.

A generator plays its scenario in rounds (a game, a raid round, an hour of ads) until the run's duration is
reached; each round is built whole (a raid record carries the room's final outcome) and yielded as a Game.
Every value in a record is a string, as real producers send them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class Event:
    offset: float  # seconds since the run started
    record: Record


@dataclass(frozen=True)
class TruthRow:
    """One account in one round: does it behave abnormally, and how (for the detection issue's evaluation)."""

    kind: str
    game: str
    account: str
    abnormal: bool
    behaviour: str
    detail: str = ""


@dataclass(frozen=True)
class Game:
    events: list[Event]
    truth: list[TruthRow]


@dataclass(frozen=True)
class Options:
    start: datetime  # aware; the run's first instant
    seed: int = 0
    duration: float | None = None  # seconds; None: the scenario's own length
    players: int | None = None  # players (lol, raid) or users (hotel, ad)
    rooms: int | None = None
    abnormal: int = 0  # extra abnormal accounts (hotel, raid, ad); lol's suspect is whoever plays Viktor
    extra: dict[str, Any] = field(default_factory=dict)


def rng_uuid(rng: random.Random) -> str:
    """A UUID4 drawn from the run's random generator (reproducible with --seed)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso_z(moment: datetime) -> str:
    """UTC with milliseconds and Z: 2024-03-24T11:25:29.845Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def clock(seconds: float) -> str:
    """Elapsed game time as the logs write it: minutes:seconds, no padding ("0:0", "12:7")."""
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60}"


def at(options: Options, offset: float) -> datetime:
    return options.start + timedelta(seconds=offset)


def rounds(options: Options, round_seconds: float, play: Callable[[random.Random, float, int], Game]) -> Iterator[Game]:
    """Play rounds back to back until the run's duration; events past the duration are cut."""
    rng = random.Random(options.seed)
    duration = options.duration if options.duration is not None else round_seconds
    begin, index = 0.0, 0
    while begin < duration:
        game = play(rng, begin, index)
        events = [event for event in game.events if event.offset < duration]
        yield Game(events=sorted(events, key=lambda event: event.offset), truth=game.truth)
        begin += round_seconds
        index += 1
