"""Raid log (`raid`): 5 rooms of 8 players fight a random boss each; 20 minutes, ~3,500 records.

A room succeeds if at least one player is alive when the boss's time limit ends; every record carries the
room's final outcome, so a room is simulated whole before its records are emitted. A player's death
hazard grows with how far the boss's difficulty (the item level needed) is above the player's item level:
hazard = 1/2400 s * exp((difficulty - item level) / 50), which makes the easy bosses mostly succeed and
Kamen fail about half the time. `--abnormal N` adds N teleporting players (large jumps every move).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone

from .base import Event, Game, Options, TruthRow, at, clock, rng_uuid, rounds

KIND = "raid"
ROOMS, PLAYERS_PER_ROOM = 5, 8
ROUND_SECONDS = 20 * 60
# name: (difficulty = item level needed, time limit in seconds)
BOSSES = {
    "Kouku-Saton": (1445, 600),
    "Illiakan": (1600, 900),
    "Kamen": (1630, 1200),
    "Abrelshud": (1560, 780),
    "Vykas": (1460, 600),
    "Valtan": (1445, 600),
}
# The game's classes as of March 2024.
CLASSES = [
    "Berserker", "Destroyer", "Gunlancer", "Paladin", "Slayer", "Arcanist", "Summoner", "Bard", "Sorceress",
    "Wardancer", "Scrapper", "Soulfist", "Glaivier", "Striker", "Breaker", "Deathblade", "Shadowhunter",
    "Reaper", "Souleater", "Sharpshooter", "Deadeye", "Artillerist", "Machinist", "Gunslinger", "Artist",
    "Aeromancer",
]  # fmt: skip
ITEM_LEVELS = (1440, 1660)
BASE_HAZARD = 1 / 2400
HAZARD_SCALE = 50.0
MEAN_GAP_SECONDS = 7.0  # ~3,500 records over 40 players and the bosses' mean time limit
DEAD_GAP_SECONDS = 30.0  # the dead only chat or wait, rarely
METHODS = (("/move", 0.6), ("/chat", 0.1), ("/wait", 0.3))
KEYS = ("q", "w", "e", "r", "a", "s", "d", "f", "space")
MAP_HALF, STEP_SIGMA = 500, 30.0
START_SPREAD_SECONDS = 30.0


def _local_time(moment: datetime) -> str:
    """startTime as the game writes it: local time (TIME_ZONE), milliseconds, no zone."""
    local = timezone.localtime(moment)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"


def _room(rng: random.Random, options: Options, begin: float, players: list[tuple[str, bool]]) -> list[Event]:
    boss = rng.choice(sorted(BOSSES))
    difficulty, limit = BOSSES[boss]
    session = rng_uuid(rng)
    start = begin + rng.uniform(0, START_SPREAD_SECONDS)
    deaths: dict[str, float] = {}
    roster = []
    for n, (account, teleporter) in enumerate(players):
        level = rng.randint(*ITEM_LEVELS)
        hazard = BASE_HAZARD * math.exp((difficulty - level) / HAZARD_SCALE)
        died = rng.expovariate(hazard)
        if died < limit:
            deaths[account] = died
        roster.append((account, teleporter, rng.choice(CLASSES), f"192.168.{10 + n // 254}.{n % 254 + 1}"))
    success = len(deaths) < len(players)
    end = limit if success else max(deaths.values())
    events: list[Event] = []
    for account, teleporter, player_class, ip in roster:
        x, y = rng.randint(-MAP_HALF, MAP_HALF), rng.randint(-MAP_HALF, MAP_HALF)
        died = deaths.get(account, math.inf)
        elapsed = rng.expovariate(1 / MEAN_GAP_SECONDS)
        while elapsed <= end:
            dead = elapsed >= died
            method = (
                rng.choice(("/chat", "/wait"))
                if dead
                else rng.choices([m for m, _ in METHODS], weights=[w for _, w in METHODS])[0]
            )
            if method == "/move":
                if teleporter:
                    x, y = rng.randint(-MAP_HALF, MAP_HALF), rng.randint(-MAP_HALF, MAP_HALF)
                else:
                    x = int(max(-MAP_HALF, min(MAP_HALF, rng.gauss(x, STEP_SIGMA))))
                    y = int(max(-MAP_HALF, min(MAP_HALF, rng.gauss(y, STEP_SIGMA))))
            record = {
                "sessionID": session,
                "startTime": _local_time(at(options, start)),
                "gametime": clock(elapsed),
                "success": "1" if success else "0",
                "Boss": {"difficulty": str(difficulty), "name": boss, "endTime": str(limit)},
                "User": {"ip": ip, "class": player_class, "account": account},
                "method": method,
                "x": str(x),
                "y": str(y),
                "inputkey": "enter" if method == "/chat" else rng.choice(KEYS),
                "status": "1" if dead else "0",
            }
            events.append(Event(start + elapsed, record))
            elapsed += rng.expovariate(1 / (DEAD_GAP_SECONDS if dead else MEAN_GAP_SECONDS))
    return events


def games(options: Options) -> Iterator[Game]:
    rooms = options.rooms or ROOMS
    players = options.players or rooms * PLAYERS_PER_ROOM

    def play(rng: random.Random, begin: float, index: int) -> Game:
        everyone = [(f"testAccount_{n}", n > players) for n in range(1, players + options.abnormal + 1)]
        rng.shuffle(everyone)
        events: list[Event] = []
        truth: list[TruthRow] = []
        for room in range(rooms):
            members = everyone[room::rooms]
            events += _room(rng, options, begin, members)
            for account, teleporter in members:
                truth.append(
                    TruthRow(KIND, f"round-{index}", account, teleporter, "teleport" if teleporter else "normal",
                             f"room {room}")
                )  # fmt: skip
        return Game(events, truth)

    return rounds(options, ROUND_SECONDS, play)
