"""Each generator reproduces its scenario: sizes, counts, probabilities (within tolerance) and its rules."""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from eventlogs.generators import GENERATORS, Options, ad, lol, raid
from eventlogs.services.prepare import prepare_batch
from tests.conftest import BASE_DIR

from .conftest import START, generate


def all_strings(value: object) -> bool:
    if isinstance(value, dict):
        return all(all_strings(item) for item in value.values())
    return isinstance(value, str)


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_records_have_string_values_and_pass_their_schema(kind: str) -> None:
    events = generate(kind)
    assert all(all_strings(event.record) for event in events)
    prepared = prepare_batch(kind, [orjson.dumps(event.record) for event in events[:2000]], START, 64 * 1024)
    assert not prepared.failures  # the enrichment's own validation and conversion


def test_reference_field_names() -> None:
    assert set(generate("lol")[0].record) == {"datetime", "method", "ingametime", "ip", "x", "y", "deathCount", "id",
                                             "inputkey", "account", "champion", "status"}  # fmt: skip
    assert set(generate("hotel")[0].record) == {"id", "ip", "datetime", "account", "method", "status", "gender", "age"}
    record = generate("raid")[0].record
    assert set(record) == {"sessionID", "startTime", "gametime", "success", "Boss", "User", "method", "x", "y",
                           "inputkey", "status"}  # fmt: skip
    assert set(record["Boss"]) == {"difficulty", "name", "endTime"}
    assert set(record["User"]) == {"ip", "class", "account"}
    record = generate("ad")[0].record
    assert set(record["Ad"]) == {"start_time", "ad_id", "ad_name", "genre", "end_time", "click_count", "viewing_time",
                                 "ad_explain"}  # fmt: skip
    assert set(record["User"]) == {"view", "gender", "total_time", "click", "account", "age"}


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_seed_reproduces_the_run(kind: str) -> None:
    assert [e.record for e in generate(kind, seed=5)] == [e.record for e in generate(kind, seed=5)]
    assert [e.record for e in generate(kind, seed=5)] != [e.record for e in generate(kind, seed=6)]


def test_lol_scenario() -> None:
    games = list(lol.games(Options(start=START, seed=3)))
    events = [event.record for event in games[0].events]
    assert 22_000 <= len(events) <= 28_000  # "about 25,000 records" for 100 players over 60 minutes
    per_player = defaultdict(list)
    for record in events:
        per_player[record["account"]].append(record)
    assert len(per_player) == 100
    assert all(len({r["champion"] for r in rows}) == 1 for rows in per_player.values())
    assert all(sum(r["method"] == "/getItem" for r in rows) <= lol.MAX_ITEMS for rows in per_player.values())
    methods = Counter(r["method"] for r in events)
    assert 0.75 < methods["/move"] / len(events) < 0.85
    keys = Counter(r["inputkey"] for r in events)
    assert 0.01 < (keys["alt"] + keys["tab"]) / len(events) < 0.05
    assert set(keys) <= set(lol.NORMAL_KEYS) | set(lol.RARE_KEYS)
    suspects = {row.account for row in games[0].truth if row.abnormal}
    assert suspects == {a for a, rows in per_player.items() if rows[0]["champion"] == "viktor"}
    assert suspects

    def jump_rate(accounts: set[str]) -> float:
        jumps = moves = 0
        for account in accounts:
            moves_only = [r for r in per_player[account] if r["method"] == "/move"]
            for before, after in itertools.pairwise(moves_only):
                moves += 1
                jumps += abs(int(after["x"]) - int(before["x"])) + abs(int(after["y"]) - int(before["y"])) > 400
        return jumps / moves

    assert jump_rate(suspects) > 5 * jump_rate(set(per_player) - suspects)
    for rows in per_player.values():  # deaths only ever count up; the dead stand still until they respawn
        counts = [int(r["deathCount"]) for r in rows]
        assert counts == sorted(counts)
        for before, after in itertools.pairwise(rows):
            if before["status"] == after["status"] == "1" and before["deathCount"] == after["deathCount"]:
                assert after["method"] == "/wait"
    assert sum(r["status"] == "1" for r in events) > 0


def test_lol_game_clock_matches_the_wall_clock() -> None:
    for event in generate("lol")[:1000]:
        wall = (datetime.fromisoformat(event.record["datetime"]) - START).total_seconds()
        minutes, seconds = map(int, event.record["ingametime"].split(":"))
        assert 0 <= wall - (minutes * 60 + seconds) < 1


def test_hotel_scenario_refund_only_after_booking() -> None:
    events = [event.record for event in generate("hotel")]
    assert 11_500 <= len(events) <= 14_500  # "about 13,000 records" for 100 users in 20 minutes
    assert len({r["account"] for r in events}) == 100
    bookings = refunds = 0
    active: Counter[str] = Counter()
    for record in events:
        method = record["method"]
        if method == "/refund":
            assert record["status"] == "1"
            assert active[record["account"]] > 0
            active[record["account"]] -= 1
            refunds += 1
        elif method.startswith("/buy/places/"):
            active[record["account"]] += 1
            bookings += 1
            assert record["status"] == "1"
        else:
            assert record["status"] == ("1" if active[record["account"]] else "0")
    assert bookings > 100
    assert 0.03 < refunds / bookings < 0.2
    menus = {r["method"] for r in events if r["method"].startswith("/sub-home/")}
    assert "/sub-home/redidence" in menus


def test_raid_scenario_and_success_rule() -> None:
    games = list(raid.games(Options(start=START, seed=2)))
    events = [event.record for event in games[0].events]
    assert 2_800 <= len(events) <= 4_500  # "about 3,500 records"
    rooms = defaultdict(list)
    for record in events:
        rooms[record["sessionID"]].append(record)
    assert len(rooms) == 5
    outcomes = []
    for rows in rooms.values():
        players = {r["User"]["account"] for r in rows}
        assert len(players) == 8
        boss = rows[0]["Boss"]
        assert (int(boss["difficulty"]), int(boss["endTime"])) == raid.BOSSES[boss["name"]]
        assert len({r["success"] for r in rows}) == 1
        alive_at_end = {r["User"]["account"] for r in rows} - {r["User"]["account"] for r in rows if r["status"] == "1"}
        assert (rows[0]["success"] == "1") == bool(alive_at_end)
        limit = int(boss["endTime"])
        assert all(int(r["gametime"].split(":")[0]) * 60 + int(r["gametime"].split(":")[1]) <= limit for r in rows)
        outcomes.append(rows[0]["success"])
    # Across many rounds both outcomes occur, and harder bosses fail more often.
    results: dict[str, list[bool]] = defaultdict(list)
    for game in raid.games(Options(start=START, seed=9, duration=20 * raid.ROUND_SECONDS)):
        for session in {e.record["sessionID"]: e.record for e in game.events}.values():
            results[session["Boss"]["name"]].append(session["success"] == "1")
    rate = {boss: sum(ok) / len(ok) for boss, ok in results.items()}
    assert rate["Kamen"] < rate["Valtan"]


def test_ad_scenario_and_one_minute_click_rule() -> None:
    events = generate("ad")
    assert 950 <= len(events) <= 1_250  # "about 1,000 records" for 1,000 users over 60 minutes
    assert len({e.record["User"]["account"] for e in events}) == 1000
    last_counted: dict[tuple[str, str], float] = {}
    counts: Counter[str] = Counter()
    uncounted = 0
    for event in events:  # in time order; the offset is the moment of the click
        ad_id, user = event.record["Ad"]["ad_id"], event.record["User"]["account"]
        if event.record["User"]["click"] == "true":
            assert event.record["User"]["view"] == "true"
            previous = last_counted.get((ad_id, user))
            if previous is None or event.offset - previous >= ad.CLICK_WINDOW:
                counts[ad_id] += 1
                last_counted[(ad_id, user)] = event.offset
            else:
                uncounted += 1
        assert int(event.record["Ad"]["click_count"]) == counts[ad_id]
    assert uncounted > 0  # the rule was exercised


def test_abnormal_accounts_are_in_the_truth() -> None:
    for kind, behaviour in (("hotel", "crawler"), ("raid", "teleport"), ("ad", "click_bot")):
        game = next(GENERATORS[kind](Options(start=START, seed=1, abnormal=2)))
        assert sorted(row.behaviour for row in game.truth if row.abnormal) == [behaviour, behaviour]


def test_command_writes_ndjson_and_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "lol.ndjson", tmp_path / "truth.csv"
    subprocess.run(
        [sys.executable, "manage.py", "generate_events", "lol", "--seed", "4", "--duration", "120", "--players", "20",
         "--rooms", "2", "--to", str(out), "--truth", str(truth)],
        cwd=BASE_DIR, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert records
    assert {r["account"] for r in records} <= {f"testAccount_{n}" for n in range(1, 21)}
    rows = list(csv.DictReader(truth.open()))
    assert len(rows) == 20
    assert {row["abnormal"] for row in rows} == {"0", "1"}
    assert next(r for r in rows if r["abnormal"] == "1")["behaviour"] == "coordinate_jumps"


def test_speed_factor_paces_the_run(tmp_path: Path) -> None:
    """--speed 20 plays 60 s of scenario time in about 3 s of wall time; max does not wait."""
    from django.core.management import call_command

    timings = {}
    for speed in ("20", "max"):
        began = time.monotonic()
        call_command("generate_events", "lol", "--seed", "4", "--duration", "60", "--players", "10", "--rooms", "1",
                     "--start", "2026-12-01T00:00:00+00:00", "--speed", speed,
                     "--to", str(tmp_path / f"{speed}.ndjson"))  # fmt: skip
        timings[speed] = time.monotonic() - began
    assert (tmp_path / "20.ndjson").read_bytes() == (tmp_path / "max.ndjson").read_bytes()
    assert timings["20"] >= 2.0, timings
    assert timings["max"] < timings["20"] / 2, timings
