"""The harvest flow in-process against the simulator over HTTP, on the real database: upserts, paging, runs."""

from __future__ import annotations

import pytest
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from ingest import services
from ingest.kipris.client import KiprisClient
from ingest.kipris.parsing import Record
from ingest.models import Applicant, HarvestCheckpoint, HarvestRun, IPRight, RunStatus

from .conftest import API_KEY, Simulator, harvest_batch, make_org, plan_run

pytestmark = pytest.mark.django_db


def harvest_in_process(run: HarvestRun, client: KiprisClient) -> HarvestRun:
    """What the tasks do, minus Celery: plan, then batches until every checkpoint is done."""
    for checkpoint_id in plan_run(run.pk, client):
        while not harvest_batch(checkpoint_id, token="t", pages=3, client=client).done:
            pass
    run.refresh_from_db()
    return run


def client(simulator: Simulator) -> KiprisClient:
    return KiprisClient(simulator.url, API_KEY, org_type="company")


@pytest.mark.parametrize("family", ["kipo-api", "openapi"])
def test_harvest_stores_every_right_once(simulator: Simulator, family: str) -> None:
    sim_org = simulator.org("business", min_rows=600)
    org = make_org(sim_org)
    with override_settings(KIPRIS_SEARCH_FAMILY=family):
        run = harvest_in_process(services.create_run(org.pk), client(simulator))
    expected = simulator.expected_rows(sim_org)
    assert run.status == RunStatus.DONE
    assert IPRight.objects.filter(organizations=org).count() == expected
    totals = services.run_totals(run)
    assert sum(stats.get("new", 0) for stats in _kind_stats(run)) == expected
    assert set(Applicant.objects.filter(organization=org).values_list("number", flat=True)) == {
        a.number for a in sim_org.applicants
    }
    kinds = set(IPRight.objects.filter(organizations=org).values_list("kind", flat=True))
    assert kinds <= {"patent", "utility", "design", "trademark"}
    designs = IPRight.objects.filter(organizations=org, kind="design")
    design_numbers = list(designs.values_list("design_number", flat=True))
    assert design_numbers, "the simulated organisation files designs"
    assert all(number.startswith("M") for number in design_numbers)
    # One request per page (an empty result is one page; a full last page ends on totalCount) + the lookup.
    assert totals.requests == 1 + sum(
        max(1, -(-simulator.sim.count(a.number, k) // size))
        for a in sim_org.applicants
        for k, size in (("patent", 500), ("design", 100), ("trademark", 500))
    )


def test_reharvest_is_idempotent_and_sees_changes(simulator: Simulator) -> None:
    sim_org = simulator.org("business", min_rows=50)
    org = make_org(sim_org)
    harvest_in_process(services.create_run(org.pk), client(simulator))
    before = dict(IPRight.objects.filter(organizations=org).values_list("pk", "last_seen"))
    again = harvest_in_process(services.create_run(org.pk), client(simulator))
    assert again.status == RunStatus.DONE
    assert all(stats.get("new", 0) == 0 and stats.get("updated", 0) == 0 for stats in _kind_stats(again))
    after = dict(IPRight.objects.filter(organizations=org).values_list("pk", "last_seen"))
    assert before.keys() == after.keys()
    assert all(after[pk] > before[pk] for pk in before)

    simulator.control(epoch=1)  # the simulator changes the status of every fifth application
    changed = harvest_in_process(services.create_run(org.pk), client(simulator))
    updated = sum(stats.get("updated", 0) for stats in _kind_stats(changed))
    assert updated > 0
    assert IPRight.objects.filter(organizations=org).count() == len(before)
    duplicates = (
        IPRight.objects.values("kind", "application_number", "design_number").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    moved = IPRight.objects.filter(organizations=org, last_changed__gt=changed.created_at)
    assert moved.count() == updated


def _kind_stats(run: HarvestRun) -> list[dict[str, int]]:
    return [stats for stats in services.run_totals(run).stats.values() if isinstance(stats, dict)]


def test_corporate_number_fallback_in_the_flow(simulator: Simulator) -> None:
    sim_org = simulator.org("corporate")
    org = make_org(sim_org)
    run = harvest_in_process(services.create_run(org.pk, ["trademark"]), client(simulator))
    assert run.status == RunStatus.DONE
    assert org.applicants.count() == len(sim_org.applicants)
    assert HarvestCheckpoint.objects.filter(run=run).count() == len(sim_org.applicants)


def test_organization_without_applicants_finishes_with_a_reason(simulator: Simulator) -> None:
    org = make_org(simulator.org("none"))
    run = harvest_in_process(services.create_run(org.pk), client(simulator))
    assert run.status == RunStatus.DONE
    assert "no applicant number" in run.error
    assert services.run_totals(run).requests == 2  # V3, then the V2 fallback


def test_checkpoint_resumes_where_it_stopped(simulator: Simulator) -> None:
    """A batch that stops after one page leaves next_page/fetched; the next task continues from there."""
    sim_org, number = simulator.holder_of("patent", 1001)
    org = make_org(sim_org)
    kipris = client(simulator)
    run = services.create_run(org.pk, ["patent"])
    plan_run(run.pk, kipris)
    big = HarvestCheckpoint.objects.get(run=run, applicant__number=number).pk
    harvest_batch(big, token="first", pages=1, client=kipris)
    checkpoint = HarvestCheckpoint.objects.get(pk=big)
    assert (checkpoint.next_page, checkpoint.fetched, checkpoint.status) == (2, 500, RunStatus.RUNNING)
    assert checkpoint.lease_until is None  # handed back for the next task of the chain
    # A task that died mid-batch still holds its lease: another task cannot take it ...
    assert services.claim(big, "crashed")
    assert not harvest_batch(big, token="intruder", pages=1, client=kipris).claimed
    # ... but the redelivered message (same task id) continues from page 2.
    while not harvest_batch(big, token="crashed", pages=2, client=kipris).done:
        pass
    applicant = HarvestCheckpoint.objects.get(pk=big).applicant
    assert IPRight.objects.filter(owners__applicant=applicant).count() == simulator.sim.count(
        applicant.number, "patent"
    )


def test_malformed_rows_are_counted_and_skipped(simulator: Simulator) -> None:
    """A row without an application number cannot be keyed: skipped and counted, the rest stored."""
    from ingest.kipris.parsing import to_record

    assert to_record("patent", {"inventionTitle": "제목만 있는 행"}) is None
    record = to_record("trademark", {"applicationNumber": "4020190000011", "unknownField": {"nested": "x"}})
    assert record is not None
    assert record.raw["unknownField"] == {"nested": "x"}
    org = make_org(simulator.org("business", min_rows=1))
    counts = services.upsert_records(org, None, [record])
    assert counts[("trademark", "new")] == 1
    assert IPRight.objects.get(application_number="4020190000011").raw["unknownField"] == {"nested": "x"}


@pytest.mark.parametrize("path", ["postgresql", "portable"])
def test_upsert_outcomes_on_both_paths(simulator: Simulator, path: str) -> None:
    """The one-statement PostgreSQL upsert and the portable one (SQLite in `make run`) agree."""
    from dataclasses import replace

    sim_org, number = simulator.holder_of("trademark", 20)
    org = make_org(sim_org)
    records = client(simulator).search_page("trademark", number, page=1, fetched=0).records

    def upsert(batch: list[Record]) -> dict[str, int]:
        if path == "portable":
            unique = {(r.kind, r.application_number, r.fields["design_number"]): r for r in batch}
            counts, _ = services._upsert_portable(unique, timezone.now())
        else:
            counts = services.upsert_records(org, None, batch)
        return {outcome: n for (_, outcome), n in counts.items()}

    assert upsert(records) == {"new": len(records)}
    first = IPRight.objects.get(application_number=records[0].application_number)
    changed = [replace(records[0], fields={**records[0].fields, "status": "소멸"}), *records[1:]]
    assert upsert(changed) == {"updated": 1, "unchanged": len(records) - 1}
    again = IPRight.objects.get(pk=first.pk)
    assert again.status == "소멸"
    assert again.first_seen == first.first_seen
    assert again.last_changed > first.last_changed
    untouched = IPRight.objects.get(application_number=records[1].application_number)
    assert untouched.last_changed == untouched.first_seen < untouched.last_seen


def test_periodic_refresh_skips_organisations_with_a_run_under_way(simulator: Simulator) -> None:
    from ingest.tasks import harvest_all

    active = [make_org(o) for o in simulator.sim.organizations[:3]]
    make_org(simulator.sim.organizations[3], active=False)
    first = harvest_all.apply().get()
    assert sorted(HarvestRun.objects.get(pk=pk).organization_id for pk in first) == sorted(o.pk for o in active)
    HarvestRun.objects.filter(organization=active[0]).update(status=RunStatus.DONE)
    second = harvest_all.apply().get()
    assert [HarvestRun.objects.get(pk=pk).organization_id for pk in second] == [active[0].pk]
