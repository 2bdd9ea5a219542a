"""services.start_harvest: the one way to start a run (beat, API, command, admin), safe against races."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from ingest import services
from ingest.models import HarvestRun, Organization, RunStatus


def make_company() -> Organization:
    return Organization.objects.create(name="한빛전자", business_number="124-81-00998")


@pytest.mark.django_db
def test_a_second_start_while_one_is_active_queues_nothing() -> None:
    org = make_company()
    first = services.start_harvest(org.pk, ["patent"])
    assert first is not None
    assert first.kinds == ["patent"]
    assert services.start_harvest(org.pk) is None
    HarvestRun.objects.filter(pk=first.pk).update(status=RunStatus.DONE)
    second = services.start_harvest(org.pk)
    assert second is not None
    assert second.kinds == services.ALL_KINDS
    with pytest.raises(Organization.DoesNotExist):
        services.start_harvest(org.pk + 1000)


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_start_waits_for_the_first_and_then_sees_its_run() -> None:
    """While one caller's transaction is open the other blocks on the organisation's row, then declines."""
    org = make_company()
    created = threading.Event()
    release = threading.Event()

    def first_caller() -> int | None:
        try:
            with transaction.atomic():
                run = services.start_harvest(org.pk)
                created.set()
                release.wait(10)
            return run.pk if run else None
        finally:
            connection.close()

    def second_caller() -> int | None:
        try:
            created.wait(10)
            run = services.start_harvest(org.pk)
            return run.pk if run else None
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(first_caller)
        second = pool.submit(second_caller)
        assert created.wait(10)
        # The second caller is blocked on the row lock, not finished with a run of its own.
        with pytest.raises(TimeoutError):
            second.result(timeout=1.0)
        release.set()
        first_id, second_id = first.result(timeout=10), second.result(timeout=10)
    assert first_id is not None
    assert second_id is None
    assert list(HarvestRun.objects.values_list("pk", flat=True)) == [first_id]
