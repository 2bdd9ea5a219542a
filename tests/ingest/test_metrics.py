"""KIPRIS metrics exactly as the old harvester published them (issue 16), read back from /metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis
from django.db import connections
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from ingest import services, tasks
from ingest.kipris.client import KiprisClient
from ingest.kipris.errors import PermanentError
from ingest.kipris.guards import TokenBucket
from ingest.models import HarvestCheckpoint, RunStatus

from .conftest import API_KEY, Simulator, harvest_batch, make_org, plan_run

pytestmark = pytest.mark.django_db(transaction=True)
PATENT = ("patent", "company")
BUCKETS = ["0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5", "10.0", "+Inf"]


def samples(name: str) -> list[tuple[dict[str, str], float]]:
    body = Client().get("/metrics").content.decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name
    ]


def value(name: str, **labels: str) -> float:
    return sum(v for found, v in samples(name) if all(found.get(k) == want for k, want in labels.items()))


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.02)


def test_labels_statuses_and_buckets_follow_the_contract(simulator: Simulator) -> None:
    org = make_org(simulator.org("business", min_rows=1))
    client = KiprisClient(simulator.url, API_KEY, org_type=org.org_type)
    # Counters live for the whole test session (multiprocess files): compare before and after.
    before = {
        "success": value("kipris_requests_total", ipr_mode="patent", org_type="company", status="success"),
        "failure": value("kipris_requests_total", ipr_mode="design", org_type="company", status="failure"),
        "error": value("kipris_errors_total", ipr_mode="design", org_type="company", error_type="permanent"),
    }
    run = services.create_run(org.pk, ["patent"])
    for checkpoint_id in plan_run(run.pk, client):
        harvest_batch(checkpoint_id, token="t", pages=10, client=client)
    simulator.control(faults=[{"kind": "invalid_key", "count": 1}])
    with pytest.raises(PermanentError) as failed:
        client.search_page("design", "120070509242", page=1, fetched=0)
    assert failed.value.error_type == "permanent"

    assert value("kipris_requests_total", ipr_mode="patent", org_type="company", status="success") > before["success"]
    assert (
        value("kipris_requests_total", ipr_mode="design", org_type="company", status="failure") == before["failure"] + 1
    )
    assert (
        value("kipris_errors_total", ipr_mode="design", org_type="company", error_type="permanent")
        == before["error"] + 1
    )
    assert {labels["status"] for labels, _ in samples("kipris_requests_total")} <= {"success", "failure"}
    assert {tuple(sorted(labels)) for labels, _ in samples("kipris_errors_total")} == {
        ("error_type", "ipr_mode", "org_type")
    }
    for histogram in ("kipris_response_seconds", "kipris_worker_process_seconds"):
        buckets = samples(f"{histogram}_bucket")
        assert {tuple(sorted(labels)) for labels, _ in buckets} == {("ipr_mode", "le", "org_type")}
        patent = [labels["le"] for labels, _ in buckets if (labels["ipr_mode"], labels["org_type"]) == PATENT]
        assert patent == BUCKETS


def harvest_in_a_thread(checkpoint_ids: list[int]) -> threading.Thread:
    """A worker's harvest_pages task, in a thread that closes its database connection when it ends."""

    def work() -> None:
        try:
            tasks.harvest_pages(checkpoint_ids)
        finally:
            connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    return worker


def test_active_requests_and_workers_move_while_a_batch_is_in_flight(simulator: Simulator) -> None:
    """One worker (a task over three searches) keeps three requests in flight from its pool threads."""
    org = make_org(simulator.org("business", min_rows=1))
    run = services.create_run(org.pk)
    checkpoint_ids = plan_run(run.pk, KiprisClient(simulator.url, API_KEY, org_type=org.org_type))[:3]
    assert value("kipris_active_requests") == value("kipris_active_workers") == 0
    simulator.control(latency_ms=[1500, 1500])
    worker = harvest_in_a_thread(checkpoint_ids)
    wait_until(lambda: value("kipris_active_requests") == 3)
    assert value("kipris_active_workers") == 1
    worker.join(15)
    assert value("kipris_active_requests") == value("kipris_active_workers") == 0
    assert all(c.requests >= 1 for c in HarvestCheckpoint.objects.filter(pk__in=checkpoint_ids))
    unfinished = HarvestCheckpoint.objects.filter(run=run).exclude(status=RunStatus.DONE).count()
    assert value("kipris_queue_size") == unfinished


def test_queue_size_counts_unfinished_checkpoints(simulator: Simulator) -> None:
    org = make_org(simulator.org("business", min_rows=1))
    client = KiprisClient(simulator.url, API_KEY, org_type=org.org_type)
    run = services.create_run(org.pk)
    checkpoint_ids = plan_run(run.pk, client)
    assert len(checkpoint_ids) >= 3
    assert value("kipris_queue_size") == len(checkpoint_ids)
    for checkpoint_id in checkpoint_ids:
        harvest_batch(checkpoint_id, token="t", pages=100, client=client)
    assert value("kipris_queue_size") == 0


def test_token_bucket_gauge_follows_reservations(clean_redis: redis.Redis) -> None:
    bucket = TokenBucket(0.01, 5, client=clean_redis)
    for _ in range(3):
        bucket.try_reserve()
    assert value("kipris_token_bucket_tokens") == pytest.approx(2, abs=0.05)
    bucket.try_reserve()
    assert value("kipris_token_bucket_tokens") == pytest.approx(1, abs=0.05)
