"""A failed or partial harvest reaches Slack and the webhook (a local receiver, through a real worker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import override_settings

from ingest import services
from ingest.kipris.client import KiprisClient
from ingest.kipris.errors import KiprisError
from ingest.models import HarvestRun, RunStatus
from tests.conftest import ChildProcess, wait_for
from tests.core.test_notify import Receiver

from .conftest import API_KEY, Simulator, harvest_batch, make_org, plan_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


def harvest_like_the_tasks(run: HarvestRun, client: KiprisClient) -> HarvestRun:
    """Plan and harvest as the tasks do; a KIPRIS error fails the run or checkpoint as their on_failure does."""
    try:
        checkpoint_ids = plan_run(run.pk, client)
    except KiprisError as exc:
        services.note_run_error(run.pk, exc, fail=True)
        checkpoint_ids = []
    for checkpoint_id in checkpoint_ids:
        try:
            while not harvest_batch(checkpoint_id, token="t", pages=5, client=client).done:
                pass
        except KiprisError as exc:
            services.note_error(checkpoint_id, exc, status=RunStatus.FAILED)
    run.refresh_from_db()
    return run


def test_partial_and_failed_harvests_are_announced(
    simulator: Simulator,
    receiver: Receiver,
    celery_worker: Callable[..., ChildProcess],
) -> None:
    hooks = {"SLACK_WEBHOOK_URL": f"{receiver.url}/slack", "ALERT_WEBHOOK_URL": f"{receiver.url}/am"}
    celery_worker(queues="default", env=hooks)
    sim_org = simulator.org("business", min_rows=1)
    org = make_org(sim_org)
    client = KiprisClient(simulator.url, API_KEY, org_type=org.org_type)
    with override_settings(**hooks):
        # The design search is refused (product not subscribed): patents and trademarks still arrive.
        simulator.control(faults=[{"kind": "unsubscribed", "count": 100, "path": "designInfoSearchService"}])
        partial = harvest_like_the_tasks(services.create_run(org.pk), client)
        assert partial.status == RunStatus.FAILED
        wait_for(lambda: len(receiver.received) == 2, timeout=30, what="the partial-harvest alert")
        simulator.control(reset=True)
        # Every call refused with an unregistered key: nothing is harvested.
        simulator.control(faults=[{"kind": "invalid_key", "count": 1000}])
        failed = harvest_like_the_tasks(services.create_run(org.pk), client)
        assert failed.status == RunStatus.FAILED
        wait_for(lambda: len(receiver.received) == 4, timeout=30, what="the failed-harvest alert")
        # A successful run says nothing.
        simulator.control(reset=True)
        done = harvest_like_the_tasks(services.create_run(org.pk), client)
        assert done.status == RunStatus.DONE

    by_path: dict[str, list[dict]] = {}
    for path, body in receiver.received:
        by_path.setdefault(path, []).append(body)
    first_slack, second_slack = by_path["/slack"]
    assert f"KIPRIS harvest partial: {org.name}" in first_slack["text"]
    assert "design for applicant" in first_slack["text"]
    assert "KIPRIS resultCode 31" in first_slack["text"]  # the KIPRIS error, as KIPRIS sent it
    assert f"KIPRIS harvest failed: {org.name}" in second_slack["text"]
    labels = [body["alerts"][0]["labels"] for body in by_path["/am"]]
    assert labels[0] | {"alertname": ""} == {
        "alertname": "",
        "severity": "warning",
        "source": "ingest",
        "organization": org.name,
        "org_type": org.org_type,
        "outcome": "partial",
        "ipr_mode": "design",
    }
    assert (labels[1]["outcome"], labels[1]["severity"]) == ("failed", "critical")
    assert len(receiver.received) == 4
