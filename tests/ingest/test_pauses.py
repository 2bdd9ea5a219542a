"""Stops that must not be retried: the monthly budget, KIPRIS's quota and a blocked key pause the harvest."""

from __future__ import annotations

from typing import cast

import pytest
import redis
from django.conf import LazySettings
from django.test import Client

from ingest import services
from ingest.models import HarvestCheckpoint, HarvestRun, RunStatus
from ingest.tasks import harvest_organization, harvest_pages, resume_stalled

from .conftest import Simulator, make_org

pytestmark = pytest.mark.django_db


def run_queued_page_tasks(client: redis.Redis) -> None:
    """Run the harvest_pages tasks waiting on the ingest queue here, the way a worker would (in order)."""
    import base64
    import json

    while raw := client.rpop("ingest"):
        message = json.loads(cast(bytes, raw))
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        assert message["headers"]["task"] == "ingest.harvest_pages"
        harvest_pages.apply(args=args, task_id=message["headers"]["id"])


def test_monthly_budget_pauses_with_a_clear_status_then_resumes(
    simulator: Simulator, settings: LazySettings, clean_redis: redis.Redis
) -> None:
    settings.KIPRIS_MONTHLY_BUDGET = 4
    sim_org = next(o for o in simulator.sim.organizations if o.lookup == "business" and len(o.applicants) >= 2)
    org = make_org(sim_org, name="budget test")
    run = HarvestRun.objects.create(organization=org, kinds=["patent", "design", "trademark"])
    harvest_organization.apply(args=(run.pk,))  # 1 call: the applicant lookup
    run_queued_page_tasks(clean_redis)  # 3 calls allowed, then the budget stops the rest
    run.refresh_from_db()
    assert simulator.stats()["requests"] == 4
    paused = HarvestCheckpoint.objects.filter(run=run, status=RunStatus.PAUSED).count()
    done = HarvestCheckpoint.objects.filter(run=run, status=RunStatus.DONE).count()
    assert paused > 0
    assert paused + done == 3 * len(sim_org.applicants)  # nothing failed: budget stops are pauses
    assert run.status == RunStatus.PAUSED
    assert "monthly KIPRIS call budget of 4 used up" in run.error
    health = Client().get("/api/v1/health").json()["checks"]["kipris"]
    assert "4/4 calls" in health["detail"]
    assert "paused until next month" in health["detail"]

    assert resume_stalled.apply().get() == 0  # nothing resumes while the budget is used up
    settings.KIPRIS_MONTHLY_BUDGET = 0  # unlimited: an operator raised it
    assert resume_stalled.apply().get() == paused
    run_queued_page_tasks(clean_redis)
    run.refresh_from_db()
    assert run.status == RunStatus.DONE
    assert services.run_totals(run).requests == simulator.stats()["requests"]


@pytest.mark.parametrize(("fault", "message"), [("quota", "resultCode 22"), ("blocked", "Blocked users.")])
def test_quota_and_blocked_key_pause_instead_of_retrying(
    simulator: Simulator, settings: LazySettings, clean_redis: redis.Redis, fault: str, message: str
) -> None:
    settings.KIPRIS_MONTHLY_BUDGET = 0
    sim_org = simulator.org("business", min_rows=1)
    org = make_org(sim_org)
    run = HarvestRun.objects.create(organization=org, kinds=["trademark"])
    harvest_organization.apply(args=(run.pk,))
    simulator.control(faults=[{"kind": fault, "count": 100}])
    run_queued_page_tasks(clean_redis)
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    assert message in run.error
    assert simulator.stats()["requests"] == 1 + len(sim_org.applicants)  # one try each, no retries
    totals = services.run_totals(run)
    assert totals.requests == simulator.stats()["requests"]
    assert totals.errors == len(sim_org.applicants)


def test_simulator_rate_limit_violation_is_a_blocked_user(simulator: Simulator, clean_redis: redis.Redis) -> None:
    """Hammering past the simulator's per-second limit gets "Blocked users." — what the global bucket prevents."""
    from ingest.kipris.client import KiprisClient
    from ingest.kipris.errors import BlockedError

    from .conftest import API_KEY

    simulator.control(rate_limit_per_sec=5)
    client = KiprisClient(simulator.url, API_KEY)
    outcomes = []
    for _ in range(8):
        try:
            client.find_applicants("101-86-00011", "")
            outcomes.append("ok")
        except BlockedError:
            outcomes.append("blocked")
    assert outcomes[:5] == ["ok"] * 5
    assert outcomes[5:] == ["blocked"] * 3
