"""Real processes: an events worker enriches what the collector queued; a collector whose broker or database
is cut still archives every batch, which is enriched once the outage ends."""

from __future__ import annotations

import gzip
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import requests
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from core.celery import app
from eventlogs.models import Batch, LolEvent
from eventlogs.services import archive, collector
from eventlogs.services.enrichment import enrich_batch
from eventlogs.services.maintenance import requeue_stale
from tests.conftest import ChildProcess, TcpProxy, free_port, get_or_none, wait_for

from .conftest import generate, ndjson


@pytest.fixture
def token(transactional_db: None) -> str:
    user = User.objects.create_user("producer", password="not-used-here")
    return Token.objects.create(user=user).key


def post(url: str, token: str, records: list[dict[str, Any]]) -> requests.Response:
    return requests.post(
        url,
        data=gzip.compress(ndjson(records)),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
        timeout=30,
    )


@pytest.fixture
def start_web(start_process: Callable[..., ChildProcess], archive_dir: Path) -> Callable[..., str]:
    """A real gunicorn collector on the test database and archive; returns the lol collector URL."""

    def start(**env: str) -> str:
        port = free_port()
        start_process(
            "web", "-m", "gunicorn", "core.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
            "--config", "python:core.gunicorn_conf", env={"EVENTLOG_ARCHIVE_DIR": str(archive_dir), **env},
        )  # fmt: skip

        def up() -> bool:
            # 200 or 401 by API_PUBLIC_READ: either way Django answered
            answer = get_or_none(f"http://127.0.0.1:{port}/api/v1/events/stats", timeout=2)
            return answer is not None and answer.status_code in {200, 401}

        wait_for(up, timeout=60, what="the collector to answer")
        return f"http://127.0.0.1:{port}/api/v1/events/lol/"

    return start


@pytest.fixture
def broker_proxy() -> Iterator[TcpProxy]:
    url = redis.connection.parse_url(settings.CELERY_BROKER_URL)
    proxy = TcpProxy((url.get("host", "127.0.0.1"), int(url.get("port", 6379))))
    yield proxy
    proxy.cut()


def test_routing_sends_eventlogs_tasks_to_the_events_queue() -> None:
    assert app.amqp.router.route({}, "eventlogs.enrich_batch")["queue"].name == "events"
    assert app.amqp.router.route({}, "eventlogs.requeue_stale")["queue"].name == "events"


def test_events_worker_enriches_collected_batches(
    celery_worker: Callable[..., ChildProcess],
    post_events: Callable[..., Any],
    transactional_db: None,
    archive_dir: Path,
) -> None:
    worker = celery_worker(queues="events", concurrency=2, env={"EVENTLOG_ARCHIVE_DIR": str(archive_dir)})
    records = [event.record for event in generate("lol")[:3000]]
    batches = [post_events("lol", records[begin : begin + 1000]).json()["batch"] for begin in (0, 1000, 2000)]
    wait_for(lambda: LolEvent.objects.count() == 3000, timeout=60, what="the worker to enrich 3 batches")
    assert "eventlogs.enrich_batch" in worker.output()
    assert "succeeded" in worker.output()
    assert set(Batch.objects.filter(pk__in=batches).values_list("status", flat=True)) == {"enriched"}
    # A redelivered message (same batch again) changes nothing.
    result = app.send_task("eventlogs.enrich_batch", args=[batches[0]])
    assert result.get(timeout=30) == {"enriched": 1000, "failed": 0, "duplicates": 0}
    assert LolEvent.objects.count() == 3000


def test_broker_outage_archives_and_requeues_later(
    start_web: Callable[..., str], broker_proxy: TcpProxy, token: str
) -> None:
    url = start_web(CELERY_BROKER_URL=f"redis://127.0.0.1:{broker_proxy.port}/{settings.REDIS_URL.rsplit('/', 1)[1]}")
    records = [event.record for event in generate("lol")[:200]]
    broker_proxy.cut()
    response = post(url, token, records)
    assert response.status_code == 202, response.text
    batch = Batch.objects.get(pk=response.json()["batch"])
    assert batch.status == Batch.Status.ARCHIVED
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("events") == 0  # nothing reached the broker
    # Once the batch is older than the requeue age and the queue is empty, upkeep sends it again.
    Batch.objects.filter(pk=batch.pk).update(received_at=batch.received_at.replace(year=batch.received_at.year - 1))
    assert requeue_stale() == 1
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).llen("events") == 1
    enrich_batch(str(batch.pk))  # what the worker does with that message
    assert LolEvent.objects.count() == 200


def test_database_outage_archives_and_registers_later(
    start_web: Callable[..., str], db_proxy: TcpProxy, token: str, archive_dir: Path
) -> None:
    url = start_web(DATABASE_URL=db_proxy.database_url(), DB_CONN_MAX_AGE="0")
    records = [event.record for event in generate("lol")[:300]]
    assert post(url, token, records[:100]).status_code == 202  # the collector now knows the token
    db_proxy.cut()
    response = post(url, token, records[100:])
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch"]
    assert response.json()["accepted"] == 200
    assert not Batch.objects.filter(pk=batch_id).exists()
    assert (archive_dir / collector.PENDING_DIR / f"{batch_id}.json").exists()
    db_proxy.restore()
    requeue_stale()  # registers the marker's batch and queues it
    assert not (archive_dir / collector.PENDING_DIR / f"{batch_id}.json").exists()
    enrich_batch(batch_id)
    assert LolEvent.objects.filter(batch_id=batch_id).count() == 200


def archived(kind: str, records: list[dict[str, Any]]) -> str:
    """A batch as the collector leaves it: archived and registered."""
    lines = [orjson.dumps(record) for record in records]
    batch_id, now = str(uuid.uuid4()), timezone.now()
    member = archive.append(kind, batch_id, lines, now)
    collector.register(kind, batch_id, member, records=len(lines), client="test", received_at=now)
    return batch_id


def test_two_workers_batches_of_one_game_see_each_others_purchases(transactional_db: None) -> None:
    """A purchase and a later action of the same player in two batches enriched at once: the second batch's
    SQL waits for the first's commit, so the action counts the purchase (buy_item) whichever commits first.
    A batch of other players does not wait."""
    rows = sorted((e.record for e in generate("lol")[:1500]), key=lambda r: r["datetime"])
    purchase = next(r for r in rows if r["method"] == "/getItem")
    later = next(r for r in rows if r["account"] == purchase["account"] and r["datetime"] > purchase["datetime"])
    first, second = archived("lol", [purchase]), archived("lol", [later])
    others = archived("lol", [r for r in rows[:50] if r["account"] != purchase["account"]])
    stored, release = threading.Event(), threading.Event()

    def hold_first() -> None:
        try:
            with transaction.atomic():  # the first worker's transaction stays open until released
                enrich_batch(first)
                stored.set()
                release.wait(30)
        finally:
            connection.close()

    def enrich_after_first_stored(batch: str) -> None:
        stored.wait(30)
        try:
            enrich_batch(batch)
        finally:
            connection.close()

    threads = [threading.Thread(target=hold_first)]
    threads += [threading.Thread(target=enrich_after_first_stored, args=(batch,)) for batch in (second, others)]
    for thread in threads:
        thread.start()

    def second_waits_or_ended() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'")
            return bool(cursor.fetchone()[0]) or not threads[1].is_alive()

    stored.wait(30)
    threads[2].join(30)
    others_done = not threads[2].is_alive()
    wait_for(second_waits_or_ended, timeout=30, what="the second batch to wait for the first")
    release.set()
    for thread in threads:
        thread.join(30)
    assert others_done  # while the first batch's transaction was still open
    assert LolEvent.objects.get(event_id=later["id"]).buy_item == 1
