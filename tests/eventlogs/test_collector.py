"""The collector: formats, gzip, auth, limits, bad input — each with a clear answer, nothing lost."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from eventlogs.models import ArchiveFile, Batch, FailedEvent, LolEvent
from eventlogs.services import archive
from eventlogs.services.enrichment import enrich_batch

from .conftest import generate, ndjson

pytestmark = pytest.mark.django_db


def archived_lines(batch_id: str) -> list[bytes]:
    batch = Batch.objects.select_related("archive_file").get(pk=batch_id)
    assert batch.archive_file is not None
    return archive.read_member(archive.Member(batch.archive_file.path, batch.offset, batch.length))


def test_gzip_ndjson_batch_is_archived_registered_and_enriched(
    post_events: Callable[..., Any], archive_dir: Path
) -> None:
    records = [event.record for event in generate("lol")[:500]]
    response = post_events("lol", records)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 500
    assert body["failed"] == 0
    batch = Batch.objects.get(pk=body["batch"])
    assert batch.status == Batch.Status.ARCHIVED
    assert batch.records == 500
    assert batch.client == "operator"
    assert [orjson.loads(line) for line in archived_lines(body["batch"])] == records
    assert batch.archive_file is not None
    path = archive_dir / batch.archive_file.path
    assert path.parts[-4].startswith("kind=lol")
    assert path.parts[-3].startswith("date=")
    assert path.parts[-2].startswith("hour=")
    with gzip.open(path) as handle:  # an ordinary gzip reader reads the archive file
        assert len(handle.read().splitlines()) == 500
    manifest = ArchiveFile.objects.get()
    assert (manifest.records, manifest.bytes) == (500, path.stat().st_size)
    enrich_batch(body["batch"])
    assert LolEvent.objects.count() == 500


def test_json_array_and_single_object(post_events: Callable[..., Any]) -> None:
    records = [event.record for event in generate("hotel")[:3]]
    array = post_events("hotel", orjson.dumps(records), gzipped=False, content_type="application/json")
    single = post_events(
        "hotel", orjson.dumps(records[0]), gzipped=False, content_type="application/json; charset=utf-8"
    )
    assert array.status_code == single.status_code == 202
    assert array.json()["accepted"] == 3
    assert single.json()["accepted"] == 1
    assert [orjson.loads(line) for line in archived_lines(array.json()["batch"])] == records


def test_unparseable_lines_are_failed_events_of_the_batch_not_a_rejected_request(
    post_events: Callable[..., Any],
) -> None:
    good = [event.record for event in generate("lol")[:3]]
    body = ndjson(good[:2]) + b'{"broken": \n' + b"\xff\xfe not utf-8\n" + b"[1, 2]\n" + ndjson(good[2:])
    response = post_events("lol", body)
    assert response.status_code == 202
    assert response.json()["accepted"] == 3
    assert response.json()["failed"] == 3
    enrich_batch(response.json()["batch"])
    reasons = dict(FailedEvent.objects.values_list("line", "reason"))
    assert reasons == {2: "invalid_json", 3: "invalid_utf8", 4: "not_an_object"}
    assert LolEvent.objects.count() == 3
    assert "\\xff\\xfe" in FailedEvent.objects.get(line=3).raw  # kept, shown escaped


def test_wrong_content_type_is_415_and_nothing_archived(post_events: Callable[..., Any], archive_dir: Path) -> None:
    response = post_events("lol", b"a=1", gzipped=False, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/x-ndjson" in response.json()["message"]
    unknown_encoding = post_events("lol", b"{}\n", gzipped=False, HTTP_CONTENT_ENCODING="br")
    assert unknown_encoding.status_code == 415
    assert "gzip" in unknown_encoding.json()["message"]
    assert not archive_dir.exists()
    assert not Batch.objects.exists()


def test_bad_gzip_is_400(post_events: Callable[..., Any]) -> None:
    response = post_events("lol", b"this is not gzip", gzipped=False, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "not valid gzip" in response.json()["message"]
    truncated = gzip.compress(ndjson([{"a": "1"}] * 100))[:-20]
    response = post_events("lol", truncated, gzipped=False, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400


def test_empty_body_is_400(post_events: Callable[..., Any]) -> None:
    for body in (b"", b"\n\n  \n"):
        response = post_events("lol", body, gzipped=False)
        assert response.status_code == 400
        assert "empty" in response.json()["message"]
    assert post_events("lol", b"[]", gzipped=False, content_type="application/json").status_code == 400


def test_size_limit_is_413_compressed_or_inflated(post_events: Callable[..., Any], settings: Any) -> None:
    settings.EVENTLOG_MAX_BODY_BYTES = 10_000
    assert post_events("lol", b"x" * 10_001, gzipped=False).status_code == 413
    bomb = post_events("lol", b"{}\n" * 100_000)  # ~300 KB inflated from a few hundred bytes
    assert bomb.status_code == 413
    assert "limit" in bomb.json()["message"]


def test_one_huge_line_is_archived_and_fails_alone(post_events: Callable[..., Any], settings: Any) -> None:
    settings.EVENTLOG_MAX_RECORD_BYTES = 1000
    good = [event.record for event in generate("lol")[:2]]
    huge = {**good[0], "id": "00000000-0000-4000-8000-000000000000", "padding": "p" * 5000}
    response = post_events("lol", [good[0], huge, good[1]])
    assert response.status_code == 202
    assert response.json() == {**response.json(), "accepted": 2, "failed": 1}
    enrich_batch(response.json()["batch"])
    failed = FailedEvent.objects.get()
    assert failed.reason == "too_large"
    assert len(failed.raw) > 5000
    assert LolEvent.objects.count() == 2


def test_unknown_kind_is_404_naming_the_kinds(post_events: Callable[..., Any], token_client: APIClient) -> None:
    response = post_events("chess", [{"a": "1"}])
    assert response.status_code == 404
    assert "lol, hotel, raid, ad" in response.json()["message"]
    assert token_client.get("/api/v1/events/chess/").status_code == 404


def test_token_is_required() -> None:
    response = APIClient().post("/api/v1/events/lol/", b"{}\n", content_type="application/x-ndjson")
    assert response.status_code == 401
    assert not Batch.objects.exists()


def test_missing_id_is_a_schema_failure_with_its_path(post_events: Callable[..., Any]) -> None:
    record = dict(generate("hotel")[0].record)
    del record["id"]
    response = post_events("hotel", [record])
    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    enrich_batch(response.json()["batch"])
    failed = FailedEvent.objects.get()
    assert (failed.reason, failed.schema_path) == ("schema", "id")
    assert "'id' is a required property" in failed.message


def test_duplicate_ids_in_one_batch_store_one_row_the_last(post_events: Callable[..., Any]) -> None:
    first = dict(generate("lol")[0].record)
    second = {**first, "x": "999"}
    response = post_events("lol", [first, second])
    assert response.json()["accepted"] == 2
    enrich_batch(response.json()["batch"])
    assert list(LolEvent.objects.values_list("x", flat=True)) == [999]
    assert Batch.objects.get().duplicates == 1
    again = post_events("lol", [first])  # a re-sent record updates its row, never duplicates it
    enrich_batch(again.json()["batch"])
    assert list(LolEvent.objects.values_list("x", flat=True)) == [int(first["x"])]


def test_collector_is_throttled_per_client(post_events: Callable[..., Any], settings: Any) -> None:
    settings.EVENTLOG_THROTTLE_RATE = "2/min"
    record = generate("ad")[0].record
    assert [post_events("ad", [record]).status_code for _ in range(3)] == [202, 202, 429]
