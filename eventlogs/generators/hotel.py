"""Hotel web log (`hotel`): 100 users browse a booking site for 20 minutes, book, and sometimes get refunds.

~13,000 records per 100 users per 20 minutes: one request per user every ~9.2 s. `status` is "1" while
the user holds a booking; /refund only ever follows a booking (each booking is refunded with probability
P_REFUND, a few requests later) and cancels it. `--abnormal N` adds crawler bots: a request every ~1 s,
opening places in sequence.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .base import Event, Game, Options, TruthRow, at, iso_z, rng_uuid, rounds

KIND = "hotel"
USERS = 100
RUN_SECONDS = 20 * 60
MEAN_GAP_SECONDS = RUN_SECONDS * 100 / 13_000
TOP_MENU = [
    "/sub-home/hotel", "/sub-home/pension", "/sub-home/redidence", "/sub-home/motel",
    "/flights", "/sub-home/global", "/sub-home/transportation", "/leisure",
]  # fmt: skip
PLACES = 300
P_HOME, P_MENU, P_PLACE, P_BUY = 0.15, 0.35, 0.47, 0.03
P_REFUND = 0.1  # per booking
REFUND_AFTER_REQUESTS = (2, 20)
GENDERS = ("male", "female")
AGE_BANDS = ("10-19", "20-29", "30-39", "40-49", "50-59", "60-69")
BOT_GAP_SECONDS = (0.5, 1.5)


def _user_events(
    rng: random.Random, options: Options, begin: float, account: str, *, ip: str, bot: bool
) -> list[Event]:
    gender, age = rng.choice(GENDERS), rng.choice(AGE_BANDS)
    bookings: list[int] = []  # booked places not refunded
    refund_in: list[int] = []  # requests left before a planned refund, per planned refund
    last_place = rng.randint(1, PLACES)
    events: list[Event] = []
    elapsed = rng.uniform(0, MEAN_GAP_SECONDS)
    while elapsed < RUN_SECONDS:
        refund_in = [left - 1 for left in refund_in]
        if bot:
            last_place = last_place % PLACES + 1
            method = f"/places/{last_place}"
        elif refund_in and refund_in[0] <= 0 and bookings:
            refund_in.pop(0)
            method = "/refund"
        else:
            draw = rng.random()
            if draw < P_HOME:
                method = "/"
            elif draw < P_HOME + P_MENU:
                method = rng.choice(TOP_MENU)
            elif draw < P_HOME + P_MENU + P_PLACE:
                last_place = rng.randint(1, PLACES)
                method = f"/places/{last_place}"
            else:
                method = f"/buy/places/{last_place}"
        status = "1" if bookings else "0"
        if method.startswith("/buy/"):
            bookings.append(last_place)
            status = "1"
            if rng.random() < P_REFUND:
                refund_in.append(rng.randint(*REFUND_AFTER_REQUESTS))
        elif method == "/refund":
            bookings.pop(0)  # the record shows the status it was requested under ("1")
        events.append(
            Event(
                begin + elapsed,
                {
                    "id": rng_uuid(rng),
                    "ip": ip,
                    "datetime": iso_z(at(options, begin + elapsed)),
                    "account": account,
                    "method": method,
                    "status": status,
                    "gender": gender,
                    "age": age,
                },
            )
        )
        elapsed += rng.uniform(*BOT_GAP_SECONDS) if bot else rng.expovariate(1 / MEAN_GAP_SECONDS)
    return events


def games(options: Options) -> Iterator[Game]:
    users = options.players or USERS

    def play(rng: random.Random, begin: float, index: int) -> Game:
        events: list[Event] = []
        truth: list[TruthRow] = []
        for n in range(1, users + options.abnormal + 1):
            bot = n > users
            account = f"testAccount_{n}"
            events += _user_events(rng, options, begin, account, ip=f"192.168.{n // 254}.{n % 254 + 1}", bot=bot)
            truth.append(
                TruthRow(KIND, f"run-{index}", account, bot, "crawler" if bot else "normal",
                         "a request every 0.5-1.5 s, places in sequence" if bot else "")
            )  # fmt: skip
        return Game(events, truth)

    return rounds(options, RUN_SECONDS, play)
