"""GET /api/v1/events/{kind}/ (paged, filtered), /events/failed/, /events/stats; health and metrics."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from core import health
from core.metrics import render_latest
from eventlogs.models import Batch
from eventlogs.services.enrichment import enrich_batch
from eventlogs.services.maintenance import requeue_stale

from .conftest import generate

pytestmark = pytest.mark.django_db


def load(post_events: Callable[..., Any], kind: str, count: int) -> list[dict[str, Any]]:
    records = [event.record for event in generate(kind)[:count]]
    enrich_batch(post_events(kind, records).json()["batch"])
    return records


def test_list_is_paged_and_filtered(post_events: Callable[..., Any], token_client: APIClient) -> None:
    records = load(post_events, "lol", 600)
    account = records[0]["account"]
    page = token_client.get("/api/v1/events/lol/", {"limit": 50}).json()
    assert page["count"] == 600
    assert len(page["results"]) == 50
    assert page["next"]
    mine = token_client.get("/api/v1/events/lol/", {"account": account, "limit": 1000}).json()
    assert mine["count"] == sum(r["account"] == account for r in records)
    assert {row["account"] for row in mine["results"]} == {account}
    first = mine["results"][0]
    assert isinstance(first["x"], int)
    assert first["x_plus_y"] == first["x"] + first["y"]
    start = records[100]["datetime"]
    end = records[200]["datetime"]
    window = token_client.get("/api/v1/events/lol/", {"start": start, "end": end}).json()
    assert window["count"] == sum(start <= r["datetime"] < end for r in records)
    bad = token_client.get("/api/v1/events/lol/", {"session": "2ca61813-cdd8-4661-a56c-4165a714fde5"})
    assert bad.status_code == 400
    assert "raid" in bad.json()["message"]
    assert token_client.get("/api/v1/events/lol/", {"start": "yesterday"}).status_code == 400


def test_raid_filtered_by_session(post_events: Callable[..., Any], token_client: APIClient) -> None:
    records = load(post_events, "raid", 400)
    session = records[0]["sessionID"]
    rows = token_client.get("/api/v1/events/raid/", {"session": session, "limit": 1000}).json()["results"]
    assert rows
    assert {row["session_id"] for row in rows} == {session}


def test_failed_events_and_stats(post_events: Callable[..., Any], token_client: APIClient) -> None:
    load(post_events, "hotel", 100)
    enrich_batch(post_events("hotel", b'{"id": "x"}\nnot json\n').json()["batch"])
    failed = token_client.get("/api/v1/events/failed/", {"kind": "hotel"}).json()
    assert failed["count"] == 2
    assert {row["reason"] for row in failed["results"]} == {"schema", "invalid_json"}
    only = token_client.get("/api/v1/events/failed/", {"reason": "invalid_json"}).json()
    assert only["count"] == 1
    assert only["results"][0]["raw"] == "not json"
    stats = token_client.get("/api/v1/events/stats").json()
    hour = stats["hours"][0]
    assert (hour["kind"], hour["batches"], hour["records"], hour["enriched"], hour["failed"]) == (
        "hotel",
        2,
        102,
        100,
        2,
    )
    assert {(row["reason"], row["count"], row["unrecovered"]) for row in stats["failed"]} == {
        ("invalid_json", 1, 1), ("schema", 1, 1)}  # fmt: skip
    assert stats["pending_batches"] == 0
    with override_settings(API_PUBLIC_READ=False):  # anonymous reads follow the API's one read policy
        assert APIClient().get("/api/v1/events/stats").status_code == 401


def test_health_fails_when_enrichment_lags_past_five_minutes(post_events: Callable[..., Any]) -> None:
    check = health._checks["eventlogs_enrichment"]
    assert check().ok
    batch = post_events("ad", [generate("ad")[0].record]).json()["batch"]
    assert check().ok  # just arrived
    Batch.objects.filter(pk=batch).update(received_at=timezone.now() - timedelta(minutes=6))
    result = check()
    assert not result.ok
    assert "oldest unenriched batch" in result.detail
    enrich_batch(batch)
    assert check().ok


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(render_latest().decode())
        for sample in family.samples
    }


def test_prometheus_counters_per_kind_and_reason(post_events: Callable[..., Any]) -> None:
    before = samples()
    enrich_batch(post_events("hotel", b'{"id": "x"}\n' + b'{"a":\n').json()["batch"])
    load(post_events, "hotel", 10)
    Batch.objects.create(kind="ad", received_at=timezone.now() - timedelta(seconds=90), offset=0, length=0, records=1)
    requeue_stale()
    after = samples()

    def grew(name: str, **labels: str) -> float:
        key = (f"pipewatch_eventlog_{name}", tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("records_received_total", kind="hotel") == 12
    assert grew("records_archived_total", kind="hotel") == 12
    assert grew("records_enriched_total", kind="hotel") == 10
    assert grew("records_failed_total", kind="hotel", reason="schema") == 1
    assert grew("records_failed_total", kind="hotel", reason="invalid_json") == 1
    assert grew("archive_bytes_total", kind="hotel") > 0
    assert 89 <= after[("pipewatch_eventlog_enrichment_lag_seconds", ())] < 120
    assert Client().get("/api/v1/health").json()["checks"]["eventlogs_enrichment"]["ok"] is True
