"""Game log (`lol`): 100 players in rooms of 10 play a 60-minute game; whoever plays Viktor is the suspect.

Rates from the reference: ~25,000 records per 100 players per hour, so one action per player every
~14.4 s on average. The suspect's moves jump across the map far more often, and the jumps come a few
tenths of a second after the previous action (too large a change in too short a time).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .base import Event, Game, Options, TruthRow, at, clock, iso_z, rng_uuid, rounds

KIND = "lol"
CHAMPIONS = [
    "azir", "viktor", "orianna", "vex", "ryze", "zilean", "ahri", "anivia", "aurelionsol",
    "lux", "malzahar", "neeko", "sylas", "syndra", "taliyah", "xerath", "vladimir",
]  # fmt: skip
SUSPECT_CHAMPION = "viktor"
PLAYERS, ROOMS = 100, 10
GAME_SECONDS = 3600
MEAN_GAP_SECONDS = 3600 * 100 / 25_000  # ~25,000 records per 100 players per hour
# Method draw; /getItem becomes /move once a player has bought MAX_ITEMS.
METHODS = (("/move", 0.80), ("/wait", 0.17), ("/getItem", 0.03))
MAX_ITEMS = 6
NORMAL_KEYS = ("q", "w", "e", "r", "d", "f")
RARE_KEYS = ("alt", "tab")
P_RARE_KEY = 0.03
# Moves land near the previous position (normal steps, sigma in map units) or, rarely, anywhere.
MAP_HALF = 1000
STEP_SIGMA = 40.0
P_JUMP = 0.03
P_JUMP_SUSPECT = 0.35
SUSPECT_JUMP_GAP = (0.15, 0.6)  # seconds after the previous action
P_DEATH = 0.008  # per action
RESPAWN_SECONDS = 30.0


def _clamp(value: float) -> int:
    return int(max(-MAP_HALF, min(MAP_HALF, value)))


def _player_events(
    rng: random.Random, options: Options, begin: float, account: str, *, ip: str, champion: str
) -> list[Event]:
    suspect = champion == SUSPECT_CHAMPION
    # detection variants (issue 11, options.extra): the suspect's jump probability, the share of the way
    # to the random target a jump covers, and cheating only in the first `on` s of every `period` s
    p_jump_suspect = options.extra.get("suspect_jump_p", P_JUMP_SUSPECT)
    jump_scale = options.extra.get("suspect_jump_scale", 1.0)
    on, period = options.extra.get("suspect_burst", (GAME_SECONDS, GAME_SECONDS))
    x, y = rng.randint(-MAP_HALF, MAP_HALF), rng.randint(-MAP_HALF, MAP_HALF)
    deaths, items, dead_until = 0, 0, -1.0
    events: list[Event] = []
    elapsed = rng.expovariate(1 / MEAN_GAP_SECONDS)
    while elapsed < GAME_SECONDS:
        method = rng.choices([m for m, _ in METHODS], weights=[w for _, w in METHODS])[0]
        if method == "/getItem" and items >= MAX_ITEMS:
            method = "/move"
        died_now = False
        if elapsed < dead_until:
            method = "/wait"
        elif rng.random() < P_DEATH:
            deaths += 1
            dead_until = elapsed + RESPAWN_SECONDS
            died_now = True
        if method == "/move":
            cheating = suspect and elapsed % period < on
            if rng.random() < (p_jump_suspect if cheating else P_JUMP):
                tx, ty = rng.randint(-MAP_HALF, MAP_HALF), rng.randint(-MAP_HALF, MAP_HALF)
                scale = jump_scale if cheating else 1.0
                x, y = round(x + scale * (tx - x)), round(y + scale * (ty - y))
                if cheating and events and not died_now:  # right after the previous action, not inside a death
                    elapsed = max(events[-1].offset - begin + rng.uniform(*SUSPECT_JUMP_GAP), dead_until)
            else:
                x, y = _clamp(rng.gauss(x, STEP_SIGMA)), _clamp(rng.gauss(y, STEP_SIGMA))
        elif method == "/getItem":
            items += 1
        key = rng.choice(RARE_KEYS) if rng.random() < P_RARE_KEY else rng.choice(NORMAL_KEYS)
        record = {
            "datetime": iso_z(at(options, begin + elapsed)),
            "method": method,
            "ingametime": clock(elapsed),
            "ip": ip,
            "x": str(x),
            "y": str(y),
            "deathCount": str(deaths),
            "id": rng_uuid(rng),
            "inputkey": key,
            "account": account,
            "champion": champion,
            "status": "1" if elapsed < dead_until else "0",
        }
        events.append(Event(begin + elapsed, record))
        elapsed += rng.expovariate(1 / MEAN_GAP_SECONDS)
    return events


def games(options: Options) -> Iterator[Game]:
    players = options.players or PLAYERS
    rooms = options.rooms or ROOMS

    def play(rng: random.Random, begin: float, index: int) -> Game:
        accounts = [f"testAccount_{n}" for n in range(1, players + 1)]
        rng.shuffle(accounts)
        no_suspect = options.extra.get("no_suspect", False)  # detection variant: nobody plays Viktor
        pool = [c for c in CHAMPIONS if c != SUSPECT_CHAMPION] if no_suspect else CHAMPIONS
        champions = [rng.choice(pool) for _ in accounts]
        if SUSPECT_CHAMPION not in champions and not no_suspect:  # the scenario always has a suspect
            champions[rng.randrange(len(champions))] = SUSPECT_CHAMPION
        events: list[Event] = []
        truth: list[TruthRow] = []
        for position, (account, champion) in enumerate(zip(accounts, champions, strict=True)):
            ip = f"192.168.{position // 254}.{position % 254 + 1}"
            events += _player_events(rng, options, begin, account, ip=ip, champion=champion)
            suspect = champion == SUSPECT_CHAMPION
            truth.append(
                TruthRow(
                    kind=KIND,
                    game=f"game-{index}",
                    account=account,
                    abnormal=suspect,
                    behaviour="coordinate_jumps" if suspect else "normal",
                    detail=f"room {position % rooms}, champion {champion}",
                )
            )
        return Game(events, truth)

    return rounds(options, GAME_SECONDS, play)
