"""Ad log (`ad`): 1,000 users meet an ad over 60 minutes (~1,000 records) and ignore, view or click it.

An ad's `click_count` counts clicks, except a user's clicks within CLICK_WINDOW seconds of that user's last
counted click on the same ad; `viewing_time` is the ad's total viewing time and User.total_time the user's
(both cumulative, in seconds). A clicking user sometimes clicks again a little later. `--abnormal N` adds
click bots that click one ad every few seconds for the whole run.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

from .base import Event, Game, Options, TruthRow, at, rng_uuid, rounds

KIND = "ad"
USERS = 1000
RUN_SECONDS = 60 * 60
CLICK_WINDOW = 60.0
P_IGNORE, P_VIEW = 0.5, 0.35  # the rest click
VIEW_SECONDS = (1, 30)
P_CLICK_AGAIN = 0.3
CLICK_AGAIN_AFTER = (5.0, 120.0)
MAX_REPEATS = 3
BOT_GAP_SECONDS = (2.0, 10.0)
CAMPAIGN_DAYS = 15
GENDERS = ("male", "female")
ADS = [
    ("바람의 나라: 연", "game", "추억의 바람의 나라를 모바일로 다시 만나보세요."),
    ("메이플스토리", "game", "새로운 직업과 함께하는 겨울 대규모 업데이트!"),
    ("던전앤파이터", "game", "지금 접속하면 한정 아바타를 드립니다."),
    ("리니지W", "game", "전 세계가 함께하는 하나의 월드."),
    ("카트라이더: 드리프트", "game", "친구와 함께 달리는 크로스플랫폼 레이싱."),
]


def games(options: Options) -> Iterator[Game]:
    users = options.players or USERS

    def play(rng: random.Random, begin: float, index: int) -> Game:
        day = at(options, begin).date()
        ads = []
        for name, genre, explain in ADS:
            first = day - timedelta(days=rng.randint(0, CAMPAIGN_DAYS - 1))
            end = (first + timedelta(days=CAMPAIGN_DAYS)).isoformat()
            ads.append({"start_time": first.isoformat(), "ad_id": rng_uuid(rng), "ad_name": name, "genre": genre,
                        "end_time": end, "ad_explain": explain})  # fmt: skip
        # 1. Who does what when: (offset, user index, ad index, action, viewing seconds).
        actions: list[tuple[float, int, int, str, int]] = []
        for user in range(users + options.abnormal):
            ad = rng.randrange(len(ads))
            if user >= users:  # a click bot
                moment = rng.uniform(0, 60)
                while moment < RUN_SECONDS:
                    actions.append((begin + moment, user, ad, "click", 1))
                    moment += rng.uniform(*BOT_GAP_SECONDS)
                continue
            moment = rng.uniform(0, RUN_SECONDS)
            draw = rng.random()
            action = "ignore" if draw < P_IGNORE else "view" if draw < P_IGNORE + P_VIEW else "click"
            actions.append((begin + moment, user, ad, action, 0 if action == "ignore" else rng.randint(*VIEW_SECONDS)))
            repeats = 0
            while action == "click" and repeats < MAX_REPEATS and rng.random() < P_CLICK_AGAIN:
                moment += rng.uniform(*CLICK_AGAIN_AFTER)
                repeats += 1
                actions.append((begin + moment, user, ad, "click", rng.randint(*VIEW_SECONDS)))
        actions.sort()
        # 2. Replay them in time order, keeping the counters (the 1-minute click rule).
        clicks, viewing = [0] * len(ads), [0] * len(ads)
        user_time = [0] * (users + options.abnormal)
        last_counted: dict[tuple[int, int], float] = {}
        profiles = [(rng.choice(GENDERS), str(rng.randint(15, 65))) for _ in user_time]
        events: list[Event] = []
        for moment, user, ad, action, seconds in actions:
            if action == "click":
                previous = last_counted.get((user, ad))
                if previous is None or moment - previous >= CLICK_WINDOW:
                    clicks[ad] += 1
                    last_counted[(user, ad)] = moment
            viewing[ad] += seconds
            user_time[user] += seconds
            gender, age = profiles[user]
            record = {
                "Ad": {**ads[ad], "click_count": str(clicks[ad]), "viewing_time": str(viewing[ad])},
                "User": {"view": "false" if action == "ignore" else "true", "gender": gender,
                         "total_time": str(user_time[user]), "click": "true" if action == "click" else "false",
                         "account": f"testAccount_{user + 1}", "age": age},
            }  # fmt: skip
            events.append(Event(moment, record))
        truth = [
            TruthRow(KIND, f"hour-{index}", f"testAccount_{user + 1}", user >= users,
                     "click_bot" if user >= users else "normal",
                     "clicks one ad every 2-10 s" if user >= users else "")
            for user in range(users + options.abnormal)
        ]  # fmt: skip
        return Game(events, truth)

    return rounds(options, RUN_SECONDS, play)
