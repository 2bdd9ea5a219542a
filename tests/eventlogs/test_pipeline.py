"""Enrichment, replay, recovery and datasets on the real database and archive."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.db.models import Model
from django.forms.models import model_to_dict

from eventlogs.models import TABLES, ArchiveFile, Batch, FailedEvent, HotelEvent, LolEvent, RaidEvent
from eventlogs.services import export, records
from eventlogs.services.enrichment import enrich_batch
from eventlogs.services.maintenance import purge_archive, seal_archive

from .conftest import generate

pytestmark = pytest.mark.django_db


def post_all(post_events: Callable[..., Any], kind: str, rows: list[dict[str, Any]], size: int = 1000) -> list[str]:
    ids = []
    for begin in range(0, len(rows), size):
        response = post_events(kind, rows[begin : begin + size])
        assert response.status_code == 202, response.content
        ids.append(response.json()["batch"])
    return ids


def table(kind: str) -> list[dict[str, Any]]:
    return [model_to_dict(row) for row in TABLES[kind].objects.order_by("event_id")]


def test_types_and_derived_columns(post_events: Callable[..., Any]) -> None:
    lol = [e.record for e in generate("lol")[:3000]]
    hotel = [e.record for e in generate("hotel")[:2000]]
    raid = [e.record for e in generate("raid")[:500]]
    ad = [e.record for e in generate("ad")[:300]]
    for kind, rows in (("lol", lol), ("hotel", hotel), ("raid", raid), ("ad", ad)):
        for batch in post_all(post_events, kind, rows):
            enrich_batch(batch)
        # raid and ad records have no id: identical records (a dead player's two /wait in one second) are one event
        distinct = {r["id"] for r in rows} if "id" in rows[0] else {records.canonical_id(r) for r in rows}
        assert TABLES[kind].objects.count() == len(distinct)
    sample = LolEvent.objects.get(event_id=lol[0]["id"])
    assert (sample.x, sample.y, sample.x_plus_y) == (
        int(lol[0]["x"]),
        int(lol[0]["y"]),
        int(lol[0]["x"]) + int(lol[0]["y"]),
    )
    assert sample.ts == datetime.fromisoformat(lol[0]["datetime"])
    # buyItem: the items the player bought in the game so far, counting in time order.
    bought: dict[str, int] = {}
    for record in sorted(lol, key=lambda r: r["datetime"]):
        bought[record["account"]] = bought.get(record["account"], 0) + (record["method"] == "/getItem")
        assert LolEvent.objects.get(event_id=record["id"]).buy_item == bought[record["account"]]
    for record in hotel:
        row = HotelEvent.objects.get(event_id=record["id"])
        method = record["method"]
        assert row.buy_num == (int(method.rsplit("/", 1)[1]) if method.startswith("/buy/") else 0)
        assert row.click_num == (int(method.rsplit("/", 1)[1]) if method.startswith("/places/") else 0)
        expected = method.rsplit("/", 1)[1] if method.startswith(("/sub-home/", "/flights", "/leisure")) else None
        assert row.category_subhome == expected
    room = RaidEvent.objects.filter(session_id=raid[0]["sessionID"]).first()
    assert room is not None
    assert room.boss_name == raid[0]["Boss"]["name"]
    assert room.boss_end_time == int(raid[0]["Boss"]["endTime"])
    assert room.success == (raid[0]["success"] == "1")
    assert room.ts == room.start_time + timedelta(seconds=room.gametime_seconds)


def test_buy_items_stay_right_when_purchases_arrive_late(post_events: Callable[..., Any]) -> None:
    rows = sorted((e.record for e in generate("lol")[:4000]), key=lambda r: r["datetime"])
    purchases = [r for r in rows if r["method"] == "/getItem"]
    others = [r for r in rows if r["method"] != "/getItem"]
    for batch in post_all(post_events, "lol", others) + post_all(post_events, "lol", purchases):
        enrich_batch(batch)
    bought: dict[str, int] = {}
    expected = {}
    for record in rows:
        bought[record["account"]] = bought.get(record["account"], 0) + (record["method"] == "/getItem")
        expected[record["id"]] = bought[record["account"]]
    stored = {str(k): v for k, v in LolEvent.objects.values_list("event_id", "buy_item")}
    assert stored == expected


def test_a_value_its_column_cannot_hold_fails_its_record_not_the_batch(post_events: Callable[..., Any]) -> None:
    good = [e.record for e in generate("lol")[:20]]
    bad = [  # each passes the JSON Schema
        {**good[0], "datetime": "2024-02-30T11:25:29.845Z"},  # no such day
        {**good[1], "account": "a\u0000b"},  # PostgreSQL text holds no NUL
        {**good[2], "champion": "\u0130" * 32},  # lower-cases to 64 characters, the column holds 32
        {**good[3], "x": "277\n"},  # jsonschema's pattern is re.search: $ matches before a final newline
        {**good[4], "datetime": "0001-01-01T00:30:00.000+01:00"},  # before year 1 in UTC
    ]
    bad = [{**record, "id": f"00000000-0000-4000-8000-00000000000{n}"} for n, record in enumerate(bad)]
    batch = post_all(post_events, "lol", good + bad)[0]
    enrich_batch(batch)
    assert Batch.objects.get(pk=batch).status == Batch.Status.ENRICHED
    assert LolEvent.objects.count() == len(good)
    failed = FailedEvent.objects.filter(batch_id=batch).order_by("line")
    assert [(f.line, f.reason) for f in failed] == [(len(good) + n, "conversion") for n in range(len(bad))]
    assert [f.message.split(":")[0] for f in failed] == [
        f"cannot convert {name}" for name in ("datetime", "account", "champion", "x", "ts")
    ]


def test_archive_then_replay_gives_identical_tables(post_events: Callable[..., Any], archive_dir: Path) -> None:
    sources = {kind: [e.record for e in generate(kind)[:2500]] for kind in TABLES}
    sources["lol"].append({"id": "not-a-uuid"})  # a failed event is rebuilt too
    for kind, rows in sources.items():
        for batch in post_all(post_events, kind, rows):
            enrich_batch(batch)
    before = {kind: table(kind) for kind in TABLES}
    failed_before = list(FailedEvent.objects.values("kind", "line", "reason", "schema_path", "message", "raw"))
    batches_before = list(Batch.objects.order_by("pk").values("pk", "received_at", "records", "offset", "client"))
    assert failed_before
    assert all(before.values())
    # The database loses everything downstream of the archive, batches and manifest included.
    everything: list[type[Model]] = [*TABLES.values(), FailedEvent, Batch, ArchiveFile]
    for model in everything:
        model._default_manager.all().delete()
    for kind in TABLES:
        call_command("replay_events", "--kind", kind, "--from", "2000-01-01T00:00:00+00:00")
    assert {kind: table(kind) for kind in TABLES} == before
    assert list(FailedEvent.objects.values("kind", "line", "reason", "schema_path", "message", "raw")) == failed_before
    assert (
        list(Batch.objects.order_by("pk").values("pk", "received_at", "records", "offset", "client")) == batches_before
    )
    assert ArchiveFile.objects.count() == len(TABLES)
    # A second replay changes nothing.
    call_command("replay_events", "--kind", "lol", "--from", "2000-01-01T00:00:00+00:00")
    assert table("lol") == before["lol"]
    assert LolEvent.objects.count() == len(before["lol"])


@pytest.fixture
def allow_recall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """A schema fix: calling it makes /recall a known lol method (until the test ends)."""

    def allow() -> None:
        fixed = tmp_path / "schemas"
        shutil.copytree(records.SCHEMA_DIR, fixed)
        schema = json.loads((fixed / "lol.json").read_text())
        schema["properties"]["method"]["enum"].append("/recall")
        (fixed / "lol.json").write_text(json.dumps(schema))
        monkeypatch.setattr(records, "SCHEMA_DIR", fixed)
        records.validator.cache_clear()

    yield allow
    monkeypatch.undo()
    records.validator.cache_clear()


def recalls(good: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**record, "id": f"00000000-0000-4000-8000-00000000000{n}", "method": "/recall"}
        for n, record in enumerate(good)
    ]


def test_failed_events_are_recoverable_after_a_schema_fix(
    post_events: Callable[..., Any], allow_recall: Callable[[], None]
) -> None:
    good = [e.record for e in generate("lol")[:5]]
    response = post_events("lol", good + recalls(good[:3]))
    enrich_batch(response.json()["batch"])
    failed = FailedEvent.objects.filter(recovered_at=None)
    assert failed.count() == 3
    assert {f.schema_path for f in failed} == {"method"}
    assert LolEvent.objects.count() == 5
    call_command("recover_failed_events", "--kind", "lol", "--reason", "schema")
    assert FailedEvent.objects.get(line=5).attempts == 2  # still failing: the schema has not changed
    allow_recall()
    call_command("recover_failed_events", "--kind", "lol", "--reason", "schema")
    assert LolEvent.objects.count() == 8
    assert not FailedEvent.objects.filter(recovered_at=None).exists()


def test_enriching_a_batch_again_marks_its_records_that_pass_now_recovered(
    post_events: Callable[..., Any], allow_recall: Callable[[], None]
) -> None:
    good = [e.record for e in generate("lol")[:2]]
    batch = post_events("lol", good + recalls(good[:1])).json()["batch"]
    enrich_batch(batch)
    assert FailedEvent.objects.get().recovered_at is None
    allow_recall()
    enrich_batch(batch)  # a replay after the schema fix
    assert FailedEvent.objects.get().recovered_at is not None
    assert LolEvent.objects.count() == 3
    assert Batch.objects.get(pk=batch).failed == 0


@pytest.mark.parametrize("kind", ["lol", "raid"])
def test_parquet_export_reads_back_with_its_declared_schema(
    kind: str, post_events: Callable[..., Any], tmp_path: Path
) -> None:
    for batch in post_all(post_events, kind, [e.record for e in generate(kind)[:1500]]):
        enrich_batch(batch)
    rows = TABLES[kind].objects.all()
    out = tmp_path / "dataset"
    call_command("export_events", kind, "--purpose", "analysis", "--output", str(out))
    declared = export.schema(kind, "analysis")
    partitions = [name for name, _ in export.PARTITIONS[kind]]
    dataset = ds.dataset(out, format="parquet", partitioning=ds.partitioning(
        subset(declared, partitions), flavor="hive"))  # fmt: skip
    read = dataset.to_table()
    assert read.num_rows == len(rows)
    assert read.schema.remove_metadata() == subset(declared, read.schema.names).remove_metadata()
    first_file = next(out.rglob("*.parquet"))
    stored = pq.read_schema(first_file)
    for field in stored:
        assert field.type == declared.field(field.name).type
    if kind == "raid":
        assert {p.split("=")[0] for p in first_file.relative_to(out).parts[:-1]} == {
            "start_date",
            "session_id",
            "account",
        }
    else:
        assert first_file.relative_to(out).parts[0].startswith("date=")
    frame = pd.read_parquet(out)
    assert len(frame) == len(rows)
    relation = duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet', hive_partitioning=true)")
    assert relation is not None
    count = relation.fetchall()
    assert count == [(len(rows),)]


def subset(declared: pa.Schema, names: list[str]) -> pa.Schema:
    return pa.schema([declared.field(name) for name in names])


def test_training_export_without_detection_features_holds_the_model_columns(
    post_events: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "FEATURES_FUNCTION", "no_such_function")
    for batch in post_all(post_events, "hotel", [e.record for e in generate("hotel")[:500]]):
        enrich_batch(batch)
    result = export.export("hotel", "training", None, None, tmp_path / "train")
    assert not result.features
    assert result.rows == 500
    assert "batch_id" not in result.schema.names
    assert "buy_num" in result.schema.names


def test_seal_records_sha256_and_retention_removes_old_hours(
    post_events: Callable[..., Any], archive_dir: Path, settings: Any
) -> None:
    post_events("ad", [e.record for e in generate("ad")[:10]])
    file = ArchiveFile.objects.get()
    assert seal_archive() == 0  # the hour is not over yet
    ArchiveFile.objects.update(hour=file.hour - timedelta(hours=3))
    assert seal_archive() == 1
    sealed = ArchiveFile.objects.get()
    assert sealed.sha256 == hashlib.sha256((archive_dir / file.path).read_bytes()).hexdigest()
    settings.EVENTLOG_ARCHIVE_RETENTION_DAYS = 1
    assert purge_archive() == 0
    ArchiveFile.objects.update(hour=datetime.now(UTC) - timedelta(days=2))
    assert purge_archive() == 1
    assert not (archive_dir / file.path).exists()
    assert not ArchiveFile.objects.exists()
    assert Batch.objects.get().archive_file is None


def test_training_export_holds_the_detection_features(
    post_events: Callable[..., Any], tmp_path: Path, settings: Any
) -> None:
    from eventlogs.detection.services import score_new_windows

    events = generate("lol", duration=600)
    for batch in post_all(post_events, "lol", [e.record for e in events]):
        enrich_batch(batch)
    last = max(datetime.fromisoformat(e.record["datetime"]) for e in events)
    assert score_new_windows(["lol"], now=last + timedelta(hours=1)) > 0
    truth = tmp_path / "truth.csv"
    suspect = next(e.record["account"] for e in events if e.record["champion"] == "viktor")
    truth.write_text(f"kind,game,account,abnormal,behaviour,detail\nlol,game-0,{suspect},1,coordinate_jumps,\n")
    call_command(
        "export_events", "lol", "--purpose", "training", "--output", str(tmp_path / "train"), "--truth", str(truth)
    )
    frame = pd.read_parquet(tmp_path / "train")
    assert len(frame) > 0
    assert {"account", "window", "score", "label"} <= set(frame.columns)
    assert set(frame.loc[frame["account"] == suspect, "label"].dropna()) == {1}
    assert next((tmp_path / "train").iterdir()).name.startswith("date=")
