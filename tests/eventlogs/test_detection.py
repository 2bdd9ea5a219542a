"""The minute scoring against the real database: windows from the enriched lol table, idempotent
re-scoring, the anomaly event's lifecycle for one account, the accounts API and the evaluation command."""

from __future__ import annotations

import itertools
import json
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.management import call_command
from django.test import override_settings
from rest_framework.test import APIClient

from anomaly.models import AnomalyEvent, EventStatus
from eventlogs.detection import evaluation, services, training
from eventlogs.detection.models import AccountState, AccountWindow, ScoredWindow, ScoringState
from eventlogs.generators import GENERATORS, Options
from eventlogs.models import LolEvent
from eventlogs.services.enrichment import enrich_batch

START = datetime(2024, 3, 24, 11, 0, tzinfo=UTC)


def play(minutes: int, cheat_minutes: range, players: int = 30, seed: int = 3) -> list[LolEvent]:
    """Players moving in small steps every ~10 s; `cheater` jumps across the map 0.3 s after every other
    move during `cheat_minutes`."""
    rng = random.Random(seed)
    rows = []
    for n in range(players + 1):
        account = "cheater" if n == players else f"player_{n}"
        x = y = 0
        t = rng.uniform(0, 10)
        while t < minutes * 60:
            step_x, step_y = rng.gauss(0, 40), rng.gauss(0, 40)
            if account == "cheater" and int(t // 60) in cheat_minutes and rng.random() < 0.5:
                rows.append(_event(account, t, x, y))
                t += 0.3
                step_x, step_y = rng.choice([-900, 900]), rng.choice([-900, 900])
            x, y = int(max(-1000, min(1000, x + step_x))), int(max(-1000, min(1000, y + step_y)))
            rows.append(_event(account, t, x, y))
            t += rng.expovariate(1 / 10)
    return rows


def _event(account: str, t: float, x: int, y: int) -> LolEvent:
    ts = START + timedelta(seconds=t)
    return LolEvent(
        event_id=uuid.uuid4(), ts=ts, received_at=START - timedelta(hours=1), account=account, method="/move",
        ingametime=f"{int(t) // 60}:{int(t) % 60}", ingame_seconds=int(t), game_start=START, ip="192.168.0.1",
        x=x, y=y, x_plus_y=x + y, death_count=0, inputkey="q", champion="vex", status=0, buy_item=0,
    )  # fmt: skip


def score_all() -> int:
    total = 0
    while done := services.score_new_windows(["lol"]):
        total += done
    return total


@pytest.mark.django_db
@override_settings(ANOMALY_CLEAN_MINUTES=3, EVENTLOG_BEHAVIOUR_THRESHOLD=7.0)
def test_a_cheater_opens_an_event_with_evidence_which_closes_when_the_jumps_stop() -> None:
    LolEvent.objects.bulk_create(play(minutes=40, cheat_minutes=range(5, 10)))
    assert score_all() == 40

    event = AnomalyEvent.objects.get(source="account", subject="cheater")
    assert event.metric == "lol"
    assert event.method == "behaviour"
    assert START + timedelta(minutes=5) <= event.started_at <= START + timedelta(minutes=7)
    assert event.status == EventStatus.RESOLVED  # the jumps stopped at minute 10
    assert event.ended_at is not None
    assert event.ended_at < START + timedelta(minutes=35)
    jump = event.evidence["jumps"][0]
    assert jump["distance"] > 500
    assert jump["speed_wall"] > 1000
    assert jump["at"].startswith("2024-03-24T11:")
    assert {r["feature"] for r in event.evidence["reasons"]} == {"jumps"}
    assert not AnomalyEvent.objects.exclude(subject="cheater").exists()  # no normal player flagged


@pytest.mark.django_db
def test_rescoring_a_window_changes_nothing() -> None:
    LolEvent.objects.bulk_create(play(minutes=12, cheat_minutes=range(2, 12)))
    score_all()

    def snapshot() -> tuple[list[Any], ...]:
        return (list(AccountWindow.objects.order_by("pk").values()), list(AccountState.objects.order_by("pk").values()),
                list(AnomalyEvent.objects.values("pk", "fired_count", "last_fired_at", "peak_score")),
                list(ScoringState.objects.values("kind", "window_start", "data")))  # fmt: skip

    before = snapshot()
    assert services.score_window("lol", START + timedelta(minutes=5)) is None
    assert services.score_new_windows(["lol"]) == 0
    assert snapshot() == before
    assert ScoredWindow.objects.filter(kind="lol").count() == 12
    # a window older than the state was never scored: scoring it now would use later evidence (not causal)
    ScoredWindow.objects.filter(kind="lol", window_start=START + timedelta(minutes=5)).delete()
    with pytest.raises(ValueError, match="not after the scored"):
        services.score_window("lol", START + timedelta(minutes=5))


@pytest.mark.django_db
def test_accounts_api_lists_flagged_accounts_and_one_timeline() -> None:
    LolEvent.objects.bulk_create(play(minutes=8, cheat_minutes=range(8)))
    score_all()
    client = APIClient()
    flagged = client.get("/api/v1/events/accounts/", {"kind": "lol", "flagged": "true"}).json()
    rows = flagged["results"] if isinstance(flagged, dict) else flagged
    assert [row["account"] for row in rows] == ["cheater"]
    assert rows[0]["reasons"][0]["feature"] == "jumps"
    assert datetime.fromisoformat(rows[0]["window"]) == START + timedelta(minutes=7)
    detail = client.get("/api/v1/events/accounts/lol/cheater/").json()
    assert len(detail["timeline"]) == 8
    # the cheater jumps (a 900-unit diagonal 0.3 s after a move) in every minute: each minute is a stored
    # window whose jump count lies between the clear jumps (> 500 units, the map's edge can shorten one)
    # and every quick move beyond a normal step (> 150 units)
    events = sorted(play(minutes=8, cheat_minutes=range(8)), key=lambda e: (e.account, e.ts))
    cheater = [e for e in events if e.account == "cheater"]
    quick = [(b.ts, math.hypot((b.x or 0) - (a.x or 0), (b.y or 0) - (a.y or 0)))
             for a, b in itertools.pairwise(cheater)
             if (b.ts - a.ts).total_seconds() < 0.5]  # fmt: skip
    for minute in detail["timeline"]:
        moment = datetime.fromisoformat(minute["window"]) if isinstance(minute["window"], str) else minute["window"]
        inside = [d for t, d in quick if moment <= t < moment + timedelta(minutes=1)]
        assert not minute["quiet"]
        assert sum(d > 500 for d in inside) <= minute["features"]["jumps"] <= sum(d > 150 for d in inside)
    assert sum(minute["features"]["jumps"] for minute in detail["timeline"]) >= 8
    # a normal player's minutes are quiet: no row was stored, the timeline rebuilds their counts
    normal = client.get("/api/v1/events/accounts/lol/player_0/").json()
    assert normal["score"] is None  # it never scored 2, so it has no AccountState row
    assert len(normal["timeline"]) == 8
    assert all(minute["quiet"] and minute["score"] is None for minute in normal["timeline"])
    assert all(minute["features"]["jumps"] == 0 and minute["features"]["moves"] >= 1 for minute in normal["timeline"])
    assert not AccountWindow.objects.filter(account="player_0").exists()
    assert client.get("/api/v1/events/accounts/", {"kind": "nope"}).status_code == 400
    assert client.get("/api/v1/events/accounts/lol/nobody/").status_code == 404


@pytest.mark.django_db
def test_quiet_minutes_are_counted_from_the_enriched_table() -> None:
    rows = [_event("p", t, 0, 0) for t in (1.0, 70.0, 80.0)]
    rows[1].inputkey, rows[2].status = "TAB", 1  # minute 1: an odd key (any case) and a move while dead
    LolEvent.objects.bulk_create(rows)
    for minute in range(3):
        ScoredWindow.objects.create(kind="lol", window_start=START + timedelta(minutes=minute))
    AccountWindow.objects.create(kind="lol", account="p", window_start=START, score=3.0)  # stored: not quiet
    quiet = services.quiet_windows("lol", START, START + timedelta(hours=1))
    assert quiet[["account", "events", "moves", "odd_keys", "dead_events", "dead_actions", "jumps"]].to_dict(
        "records"
    ) == [{"account": "p", "events": 2, "moves": 2, "odd_keys": 1, "dead_events": 1, "dead_actions": 1, "jumps": 0}]
    assert list(quiet["window"]) == [pd.Timestamp(START + timedelta(minutes=1))]


@pytest.mark.django_db
def test_the_minute_task_scores_exactly_what_the_in_memory_replay_scores() -> None:
    rows = play(minutes=10, cheat_minutes=range(3, 6), players=15)
    LolEvent.objects.bulk_create(rows)
    score_all()
    frame = pd.DataFrame([{"account": r.account, "ts": r.ts.timestamp(), "game_s": float(r.ingame_seconds),
                           "method": r.method, "x": float(r.x or 0), "y": float(r.y or 0), "key": r.inputkey,
                           "status": r.status, "buy_item": r.buy_item} for r in rows])  # fmt: skip
    replayed = evaluation.replay("lol", frame, 7.0)
    kept = services.informative("lol", replayed)
    informative = replayed[kept]
    expected = {(row.account, int(row.window_ts)): round(row.score, 3) for row in informative.itertuples()}
    stored = {(a, int(w.timestamp())): round(s, 3)
              for a, w, s in AccountWindow.objects.values_list("account", "window_start", "score")}  # fmt: skip
    assert stored == pytest.approx(expected, abs=1e-3)
    assert max(expected.values()) >= 7.0
    # the minutes without a row are the quiet ones: no jump and a score below 2
    quiet = replayed[~kept]
    assert len(quiet) > len(informative)
    assert (quiet["score"] < 2.0).all()
    assert (quiet["jumps"] == 0).all()


def test_evaluate_behaviour_on_a_generated_run(tmp_path: Path) -> None:
    events, truth = tmp_path / "lol.ndjson", tmp_path / "truth.csv"
    call_command("generate_events", "lol", "--seed", "4242", "--duration", "600", "--start", "2024-03-24T11:00:00Z",
                 "--to", str(events), "--truth", str(truth), stdout=StringIO(), stderr=StringIO())  # fmt: skip
    out = StringIO()
    call_command("evaluate_behaviour", "--kind", "lol", "--truth", str(truth), "--events", str(events), "--json",
                 stdout=out)  # fmt: skip
    result = json.loads(out.getvalue())
    abnormal = list(result["accounts_detail"])
    assert result["abnormal"] == len(abnormal) >= 1
    assert result["false_positives"] == 0
    assert result["recall"] == 1.0
    assert result["precision"] == 1.0
    assert all(row["time_to_detection_s"] > 0 for row in abnormal)


@pytest.mark.django_db
def test_training_rows_hold_the_features_with_the_truth_label(tmp_path: Path) -> None:
    LolEvent.objects.bulk_create(play(minutes=4, cheat_minutes=range(4), players=5))
    score_all()
    truth = tmp_path / "truth.csv"
    truth.write_text("kind,game,account,abnormal,behaviour,detail\nlol,game-0,cheater,1,coordinate_jumps,\n"
                     "lol,game-0,player_0,0,normal,\n")  # fmt: skip
    rows = training.training_frame("lol", START, START + timedelta(hours=1), truth)
    assert len(rows) == 6 * 4
    assert {"jumps", "moves", "odd_keys", "score_jumps", "score", "label"} <= set(rows.columns)
    assert set(rows.loc[rows["account"] == "cheater", "label"]) == {1}
    assert set(rows.loc[rows["account"] == "player_0", "label"]) == {0}
    assert rows.loc[rows["account"] == "player_1", "label"].isna().all()


@pytest.mark.django_db
def test_evaluate_behaviour_reads_the_enriched_table_when_no_events_file_is_given(tmp_path: Path) -> None:
    LolEvent.objects.bulk_create(play(minutes=6, cheat_minutes=range(1, 6), players=12))
    truth = tmp_path / "truth.csv"
    lines = ["kind,game,account,abnormal,behaviour,detail", "lol,game-0,cheater,1,coordinate_jumps,"]
    lines += [f"lol,game-0,player_{n},0,normal," for n in range(12)]
    truth.write_text("\n".join(lines) + "\n")
    out = StringIO()
    call_command("evaluate_behaviour", "--kind", "lol", "--truth", str(truth), stdout=out)
    text = out.getvalue()
    assert "13 accounts, 1 abnormal" in text
    assert "precision 1.000  recall 1.000" in text
    assert "cheater" in text
    assert "flagged" in text


@pytest.mark.django_db
def test_training_export_writes_the_detection_features_with_labels_to_parquet(tmp_path: Path) -> None:
    import pyarrow.dataset as ds

    from eventlogs.services import export

    LolEvent.objects.bulk_create(play(minutes=3, cheat_minutes=range(3), players=4))
    score_all()
    truth = tmp_path / "truth.csv"
    truth.write_text("kind,game,account,abnormal,behaviour,detail\nlol,game-0,cheater,1,coordinate_jumps,\n")
    result = export.export("lol", "training", START, START + timedelta(hours=1), tmp_path / "train", truth=truth)
    assert result.features
    assert result.rows == 5 * 3
    table = ds.dataset(tmp_path / "train", format="parquet", partitioning="hive").to_table().to_pandas()
    assert set(table.loc[table["account"] == "cheater", "label"]) == {1}
    assert {"jumps", "moves", "score_jumps"} <= set(table.columns)


@pytest.mark.django_db
def test_raid_teleporters_posted_to_the_collector_open_events_with_their_jumps(post_events: Any) -> None:
    """The beat path for raid: seed 4243's records through the collector and enrichment, every minute
    scored; the two teleporters that teleport (the third dies before its first jump) open events whose
    evidence holds the jumps, and no room mate is flagged."""
    frame, truth = evaluation.generate("raid", 4243, abnormal=3)
    games = GENERATORS["raid"](Options(start=START, seed=4243, abnormal=3))  # START: evaluation.generate's
    records = [event.record for game in games for event in game.events]
    for begin in range(0, len(records), 1000):
        response = post_events("raid", records[begin : begin + 1000])
        assert response.status_code == 202
        enrich_batch(response.json()["batch"])
    while services.score_new_windows(["raid"]):
        pass
    teleported = evaluation.first_abnormal_action(frame, truth.loc[truth["abnormal"], "account"], within_s=math.inf)
    events = AnomalyEvent.objects.filter(source="account", metric="raid")
    assert sorted(events.values_list("subject", flat=True)) == sorted(teleported.index)
    for event in events:
        jumps = [row for row in event.evidence["rows"] if row.get("jump")]
        assert jumps, event.evidence
        assert all(row["dist"] > 100 and row["speed_game"] > 0 for row in jumps)
        assert {r["feature"] for r in event.evidence["reasons"]} == {"jumps"}


@pytest.mark.django_db
def test_an_ad_window_is_scored_from_the_enriched_table() -> None:
    """Ad rows carry booleans (user_click) that the window query reads as 0/1; a bot's duplicate clicks
    reach its window row. (Before, every ad and raid window raised: COPY writes booleans as t/f.)"""
    from eventlogs.models import AdEvent

    ts = START + timedelta(seconds=5)
    rows = [("bot", t, True) for t in range(0, 50, 5)] + [(f"user_{n}", n, n % 3 == 0) for n in range(30)]
    AdEvent.objects.bulk_create([
        AdEvent(event_id=uuid.uuid4(), ts=ts + timedelta(seconds=t), received_at=ts + timedelta(seconds=t),
                account=account, ad_id=uuid.uuid4(), ad_name="ad", ad_genre="game", ad_start_time=START.date(),
                ad_end_time=START.date(), ad_click_count=0, ad_viewing_time=0, ad_explain="", user_view=True,
                user_click=click, user_gender="male", user_age=30, user_total_time=0)
        for account, t, click in rows
    ])  # fmt: skip
    assert services.score_new_windows(["ad"], now=START + timedelta(hours=1)) == 1
    window = AccountWindow.objects.get(kind="ad", account="bot")
    assert window.features["clicks"] == 10
    assert window.features["duplicate_clicks"] == 9  # every click after the first is inside 60 s
    assert ScoredWindow.objects.get(kind="ad").events == len(rows)
