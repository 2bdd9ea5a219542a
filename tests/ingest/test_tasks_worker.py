"""Harvesting through real Celery workers on the `ingest` queue, with the simulator as KIPRIS over HTTP."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable

import pytest
from django.core.management import call_command
from django.db.models import Count

from ingest import services
from ingest.models import HarvestCheckpoint, HarvestRun, IPRight, RunStatus
from ingest.simulator import max_in_window

from ..conftest import ChildProcess, wait_for
from .conftest import API_KEY, Simulator, make_org

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def worker_env(simulator: Simulator, **extra: str) -> dict[str, str]:
    return {
        "KIPRIS_BASE_URL": simulator.url,
        "KIPRIS_API_KEY": API_KEY,
        "KIPRIS_MONTHLY_BUDGET": "0",
        **extra,
    }


def test_harvest_wait_with_retries_and_a_permanent_error(
    simulator: Simulator, celery_worker: Callable[..., ChildProcess]
) -> None:
    """Two 500s on designs are retried with backoff; an unsubscribed trademark product fails its checkpoint."""
    sim_org = simulator.org("business", min_rows=100)
    org = make_org(sim_org)
    simulator.control(
        faults=[
            {"kind": "http500", "count": 2, "path": "designInfoSearchService"},
            {"kind": "unsubscribed", "count": 1, "path": "trademarkInfoSearchService"},
        ]
    )
    celery_worker(queues="ingest,default", concurrency=2, env=worker_env(simulator))
    out = io.StringIO()
    call_command("harvest_kipris", "--org", str(org.pk), "--wait", "--timeout", "120", stdout=out, stderr=io.StringIO())
    run = HarvestRun.objects.get(organization=org)
    assert run.status == RunStatus.FAILED  # the worst checkpoint state wins
    failed = HarvestCheckpoint.objects.filter(run=run, status=RunStatus.FAILED)
    assert [c.kind for c in failed] == ["trademark"]
    assert "resultCode 31" in failed[0].error
    assert not HarvestCheckpoint.objects.filter(run=run).exclude(status__in=[RunStatus.DONE, RunStatus.FAILED]).exists()
    totals = services.run_totals(run)
    assert totals.errors == 3  # two retried 500s and the permanent error
    assert totals.requests == simulator.stats()["requests"]  # every call counted, failed ones too
    stored = IPRight.objects.filter(organizations=org)
    failed_rows = simulator.sim.count(failed[0].applicant.number, "trademark")
    assert stored.count() == simulator.expected_rows(sim_org) - failed_rows
    summary = out.getvalue()
    assert "runs: 1 failed" in summary
    assert f"requests: {totals.requests}; errors: 3" in summary
    assert "new" in summary


def test_token_bucket_is_global_across_two_worker_processes(
    simulator: Simulator, celery_worker: Callable[..., ChildProcess]
) -> None:
    """From the simulator's own request log: no 1-second window above rate + burst, and the rate on average."""
    rate, burst = 8, 4
    for sim_org in simulator.sim.organizations[:24]:
        make_org(sim_org)
    env = worker_env(simulator, KIPRIS_RATE_PER_SEC=str(rate), KIPRIS_BURST=str(burst))
    workers = [celery_worker(queues="ingest,default", concurrency=1, env=env) for _ in range(2)]
    call_command("harvest_kipris", "--all", "--wait", "--timeout", "240", stdout=io.StringIO(), stderr=io.StringIO())
    assert set(HarvestRun.objects.values_list("status", flat=True)) == {RunStatus.DONE}
    arrivals = sorted(simulator.stats()["arrivals"])
    span = arrivals[-1] - arrivals[0]
    assert len(arrivals) > 60
    assert max_in_window(arrivals, 1.0) <= rate + burst
    assert (len(arrivals) - burst) / span <= rate * 1.02
    # Both processes did KIPRIS work (each logs the page tasks it ran).
    assert all("ingest.harvest_pages" in w.output() and "succeeded" in w.output() for w in workers)


def test_resume_after_a_worker_is_killed_mid_harvest(
    simulator: Simulator, celery_worker: Callable[..., ChildProcess]
) -> None:
    """SIGKILL the worker mid-checkpoint: the message is redelivered, the harvest resumes, no duplicates."""
    sim_org, number = simulator.holder_of("patent", 1500)
    org = make_org(sim_org)
    simulator.control(latency_ms=[400, 500])
    env = worker_env(simulator, KIPRIS_PAGES_PER_TASK="1", CELERY_VISIBILITY_TIMEOUT="5")
    first = celery_worker(queues="ingest,default", concurrency=1, env=env)
    call_command("harvest_kipris", "--org", str(org.pk), "--kind", "patent", stdout=io.StringIO())

    def midway() -> bool:
        checkpoint = HarvestCheckpoint.objects.filter(applicant__number=number).first()
        return checkpoint is not None and checkpoint.fetched >= 500

    wait_for(midway, timeout=90, what="the first patent page to be stored")
    first.stop(signal.SIGKILL)
    partial = IPRight.objects.filter(organizations=org).count()
    assert partial < simulator.expected_rows(sim_org, ("patent",))

    celery_worker(queues="ingest,default", concurrency=1, env=env)
    run = HarvestRun.objects.get(organization=org)
    # 240 s: the redelivery (visibility 5 s + the 10 s unacked sweep) and 3 pages at ~0.5 s each take ~30 s
    # alone, several times that while the rest of the suite runs on the same 2 cores
    wait_for(lambda: HarvestRun.objects.get(pk=run.pk).status == RunStatus.DONE, timeout=240, what="the resumed run")
    run.refresh_from_db()
    expected = simulator.expected_rows(sim_org, ("patent",))
    assert IPRight.objects.filter(organizations=org).count() == expected
    assert not IPRight.objects.values("kind", "application_number").annotate(n=Count("id")).filter(n__gt=1).exists()
    new = sum(stats.get("new", 0) for stats in services.run_totals(run).stats.values() if isinstance(stats, dict))
    assert new == expected  # counted once, though a page task ran twice
