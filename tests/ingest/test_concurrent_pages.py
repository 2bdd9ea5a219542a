"""Requests in flight (KIPRIS_CONCURRENCY): pages of one large search and the searches of a batch; committed in
order, stored once, every call counted."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import LazySettings

from ingest import services
from ingest.kipris.client import KiprisClient
from ingest.kipris.errors import TransientError
from ingest.models import HarvestCheckpoint, HarvestRun, IPRight, RunStatus

from .conftest import API_KEY, Simulator, harvest_batch, make_org, plan_run

pytestmark = pytest.mark.django_db


def test_a_large_search_fetches_its_pages_at_once_and_stores_every_row(
    simulator: Simulator, settings: LazySettings
) -> None:
    settings.KIPRIS_CONCURRENCY = 4
    sim_org, number = simulator.holder_of("patent", 2200)  # 500 rows a page: at least 5 pages
    org = make_org(sim_org)
    client = KiprisClient(simulator.url, API_KEY, org_type=org.org_type)
    run = services.create_run(org.pk, ["patent"])
    checkpoint_ids = plan_run(run.pk, client)
    target = HarvestCheckpoint.objects.get(pk__in=checkpoint_ids, applicant__number=number)
    simulator.control(latency_ms=[300, 300])
    harvest_batch(target.pk, token="t", pages=1, client=client)  # the first page tells the total
    simulator.control(reset=True)
    simulator.control(latency_ms=[300, 300])
    outcome = harvest_batch(target.pk, token="t", pages=4, client=client)
    assert outcome.pages == 4
    arrivals = simulator.stats()["arrivals"]
    assert len(arrivals) == 4
    # One window of 4 concurrent requests: one after another, each would wait for the previous 300 ms answer.
    assert max(arrivals) - min(arrivals) < 0.3
    expected = simulator.sim.count(number, "patent")
    checkpoint = HarvestCheckpoint.objects.get(pk=target.pk)
    assert (checkpoint.next_page, checkpoint.fetched, checkpoint.requests) == (6, min(expected, 2500), 5)
    while not harvest_batch(target.pk, token="t", pages=10, client=client).done:
        pass
    checkpoint.refresh_from_db()
    assert checkpoint.status == RunStatus.DONE
    assert checkpoint.fetched == expected
    assert IPRight.objects.filter(owners__applicant__number=number).count() == expected


def test_a_batch_keeps_requests_in_flight_across_searches(
    simulator: Simulator, settings: LazySettings, client_for: Callable[..., KiprisClient]
) -> None:
    """One-page searches (most organisations'): a batch sends their first pages together, not one by one."""
    settings.KIPRIS_CONCURRENCY = 5
    sim_org = next(o for o in simulator.sim.organizations if o.lookup == "business" and len(o.applicants) >= 2)
    org = make_org(sim_org)
    client = client_for(org_type=org.org_type)
    run = services.create_run(org.pk, ["patent", "design", "trademark"])
    checkpoint_ids = plan_run(run.pk, client)[:5]
    simulator.control(reset=True)
    simulator.control(latency_ms=[300, 300])
    outcomes = services.harvest_checkpoints(checkpoint_ids, token="t", pages=1, client=client)
    arrivals = simulator.stats()["arrivals"]
    assert len(arrivals) == len(checkpoint_ids) == 5
    assert max(arrivals) - min(arrivals) < 0.3  # all five in flight before the first answer
    assert all(outcome.pages == 1 and outcome.error is None for outcome in outcomes.values())
    for checkpoint in HarvestCheckpoint.objects.filter(pk__in=checkpoint_ids):
        assert (checkpoint.next_page, checkpoint.requests) == (2, 1)
        assert checkpoint.lease_token == "" or checkpoint.status == RunStatus.DONE


def test_a_failed_page_keeps_the_pages_before_it_and_counts_every_call(
    simulator: Simulator, client_for: Callable[..., KiprisClient]
) -> None:
    """Page 2 fails while 3-5 are answered: 3-5 are discarded (fetched again), but KIPRIS served them."""
    sim_org, number = simulator.holder_of("patent", 2200)
    org = make_org(sim_org)
    client = client_for(org_type=org.org_type)
    run = services.create_run(org.pk, ["patent"])
    target = HarvestCheckpoint.objects.get(pk__in=plan_run(run.pk, client), applicant__number=number)
    harvest_batch(target.pk, token="t", pages=1, client=client)
    simulator.control(faults=[{"kind": "http500", "count": 1, "page": 2}])
    outcome = services.harvest_checkpoints([target.pk], token="t", pages=4, client=client)[target.pk]
    assert isinstance(outcome.error, TransientError)
    assert (outcome.pages, outcome.done) == (0, False)
    target.refresh_from_db()
    assert (target.next_page, target.fetched, target.requests) == (2, 500, 1 + 3)  # page 1, and 3-5 unused
    assert target.lease_token == ""  # handed back: the retry runs under another task id
    services.note_error(target.pk, outcome.error, context="retrying after: ")  # as the task does
    while not harvest_batch(target.pk, token="retry", pages=10, client=client).done:
        pass
    assert services.run_totals(HarvestRun.objects.get(pk=run.pk)).requests == simulator.stats()["requests"]
    assert IPRight.objects.filter(owners__applicant__number=number).count() == simulator.sim.count(number, "patent")
