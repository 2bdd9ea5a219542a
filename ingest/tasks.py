"""ingest's Celery tasks (queue `ingest`): thin adapters over ingest.services.

Fan-out: `harvest_all` -> `harvest_organization` per batch of runs (resolves applicant numbers) -> `harvest_pages`
per batch of applicant x search checkpoints, each fetching a bounded number of pages and requeueing the
unfinished. A batch holds KIPRIS_CONCURRENCY ids and keeps that many requests in flight from its process
(ingest/kipris/inflight.py). Retry policy: transient KIPRIS errors retry with exponential backoff and
jitter; an open circuit reschedules after its cool-down; the monthly budget, KIPRIS's quota and a
blocked key pause the run or checkpoint (resumable); anything else fails it loudly.
"""

from __future__ import annotations

import logging
import random
from functools import partial
from typing import Any

from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import OperationalError, transaction

from . import metrics, services
from .kipris.errors import (
    BlockedError,
    BudgetExhaustedError,
    CircuitOpenError,
    QuotaExceededError,
    TransientError,
)
from .models import Organization, RunStatus

logger = logging.getLogger(__name__)

# Stop-and-wait conditions: retrying soon cannot help, a later resume can.
PAUSING_ERRORS = (BudgetExhaustedError, QuotaExceededError, BlockedError)
RETRY_POLICY: dict[str, Any] = {
    # Progress lives in the database; nobody reads task results, so do not write them to Redis.
    "ignore_result": True,
    # A database that is briefly unreachable or locked is transient too; every task here is idempotent.
    "autoretry_for": (TransientError, OperationalError),
    "retry_backoff": 5,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 8,
}


def as_ids(ids: list[int] | int) -> list[int]:
    """A batch's ids; a bare id is a message queued before batches existed (still redelivered after an upgrade)."""
    return [ids] if isinstance(ids, int) else list(ids)


class BatchTask(Task):
    """A task over a batch of runs or checkpoints, each of which pauses, fails or retries on its own.

    A batch of one keeps Celery's retry policy: its error is raised. In a larger batch an error that a
    retry may fix sends that id alone (a batch of one) after the policy's first backoff, so one failing
    search neither holds the others back nor repeats their calls; pausing and permanent errors are
    recorded on the id in place.
    """

    def note_retry(self, item_id: int, exc: BaseException) -> None:
        raise NotImplementedError

    def note_failure(self, item_id: int, exc: BaseException) -> None:
        raise NotImplementedError

    def note_pause(self, item_id: int, exc: BaseException) -> None:
        raise NotImplementedError

    def on_retry(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        for item_id in as_ids(args[0]):
            self.note_retry(item_id, exc)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        for item_id in as_ids(args[0]):
            self.note_failure(item_id, exc)

    def settle(self, ids: list[int], errors: dict[int, BaseException]) -> None:
        for item_id, error in errors.items():
            if isinstance(error, PAUSING_ERRORS):
                self.note_pause(item_id, error)
            elif len(ids) == 1:
                if isinstance(error, CircuitOpenError):
                    raise self.retry(exc=error, countdown=error.retry_after + random.uniform(0, 5), max_retries=None)
                raise error
            elif isinstance(error, CircuitOpenError | TransientError):
                self.note_retry(item_id, error)
                countdown = (
                    error.retry_after + random.uniform(0, 5)
                    if isinstance(error, CircuitOpenError)
                    else get_exponential_backoff_interval(
                        RETRY_POLICY["retry_backoff"], 0, RETRY_POLICY["retry_backoff_max"], full_jitter=True
                    )
                )
                self.apply_async(([item_id],), countdown=countdown)
            else:
                logger.error("%s: %s failed: %s", self.name, item_id, error)
                self.note_failure(item_id, error)


class RunTask(BatchTask):
    """Errors before any checkpoint exists (the applicant lookup) are counted on the run."""

    def note_retry(self, item_id: int, exc: BaseException) -> None:
        services.note_run_error(item_id, exc, fail=False)

    def note_failure(self, item_id: int, exc: BaseException) -> None:
        services.note_run_error(item_id, exc, fail=True)

    def note_pause(self, item_id: int, exc: BaseException) -> None:
        services.note_run_error(item_id, exc, fail=False)
        services.finish_run(item_id, RunStatus.PAUSED, error=str(exc))


class CheckpointTask(BatchTask):
    """Errors of a search are recorded on its checkpoint (and the run's state follows)."""

    def note_retry(self, item_id: int, exc: BaseException) -> None:
        services.note_error(item_id, exc, context="retrying after: ")

    def note_failure(self, item_id: int, exc: BaseException) -> None:
        services.note_error(item_id, exc, status=RunStatus.FAILED)

    def note_pause(self, item_id: int, exc: BaseException) -> None:
        services.note_error(item_id, exc, status=RunStatus.PAUSED)


@shared_task(name="ingest.harvest_all", soft_time_limit=120, time_limit=150)
def harvest_all(kinds: list[str] | None = None) -> list[int]:
    """The periodic refresh: one run per active organisation."""
    organization_ids = list(Organization.objects.filter(active=True).values_list("pk", flat=True))
    run_ids = [run.pk for run in services.start_harvests(organization_ids, kinds) if run is not None]
    logger.info("queued %d harvest runs", len(run_ids))
    return run_ids


@shared_task(
    base=RunTask, bind=True, name="ingest.harvest_organization", soft_time_limit=120, time_limit=150, **RETRY_POLICY
)
def harvest_organization(self: RunTask, run_ids: list[int] | int) -> int:
    """Resolve the runs' applicant numbers and queue their applicant x search checkpoints in batches."""
    ids = as_ids(run_ids)
    planned = services.plan_runs(ids)
    for run_id in sorted(set(ids) - set(planned)):
        logger.warning("harvest run %s no longer exists", run_id)
    checkpoint_ids = [pk for found in planned.values() if not isinstance(found, BaseException) for pk in found]
    queue_checkpoints(checkpoint_ids)
    self.settle(ids, {run_id: found for run_id, found in planned.items() if isinstance(found, BaseException)})
    return len(checkpoint_ids)


@shared_task(
    base=CheckpointTask,
    bind=True,
    name="ingest.harvest_pages",
    soft_time_limit=14 * 60,
    time_limit=15 * 60,
    **RETRY_POLICY,
)
def harvest_pages(self: CheckpointTask, checkpoint_ids: list[int] | int) -> int:
    """Up to KIPRIS_PAGES_PER_TASK pages of each checkpoint, requests in flight across them; requeue the rest."""
    ids = as_ids(checkpoint_ids)
    metrics.ACTIVE_WORKERS.inc()
    try:
        # The task id survives retries and redeliveries, so a redelivered message reclaims its own leases.
        outcomes = services.harvest_checkpoints(ids, token=str(self.request.id), pages=settings.KIPRIS_PAGES_PER_TASK)
    finally:
        metrics.ACTIVE_WORKERS.dec()
    queue_checkpoints([pk for pk, outcome in outcomes.items() if not outcome.done and outcome.error is None])
    self.settle(ids, {pk: outcome.error for pk, outcome in outcomes.items() if outcome.error is not None})
    return sum(outcome.pages for outcome in outcomes.values())


def send_in_batches(task: Task, ids: list[int]) -> None:
    """KIPRIS_CONCURRENCY ids a message: enough to keep a worker's requests in flight, few enough to spread a
    large harvest over every worker."""
    size = settings.KIPRIS_CONCURRENCY
    for start in range(0, len(ids), size):
        task.delay(ids[start : start + size])


def queue_runs(run_ids: list[int]) -> None:
    """Send the runs' first tasks once the transaction that created them commits (workers must see them)."""
    if run_ids:
        transaction.on_commit(partial(send_in_batches, harvest_organization, run_ids))


def queue_checkpoints(checkpoint_ids: list[int]) -> None:
    send_in_batches(harvest_pages, checkpoint_ids)


@shared_task(name="ingest.resume_stalled", soft_time_limit=60, time_limit=90)
def resume_stalled(include_paused: bool = True) -> int:
    """Requeue checkpoints a crashed worker or a pause left behind (paused ones only while calls are possible)."""
    from .kipris.guards import CircuitBreaker, MonthlyBudget

    budget = MonthlyBudget(settings.KIPRIS_MONTHLY_BUDGET)
    can_call = not CircuitBreaker(settings.KIPRIS_CIRCUIT_FAILURES, settings.KIPRIS_CIRCUIT_OPEN_SECONDS).is_open()
    can_call = can_call and (not budget.budget or budget.used() < budget.budget)
    checkpoint_ids = services.resumable_checkpoints(include_paused=include_paused and can_call)
    queue_checkpoints(checkpoint_ids)
    if checkpoint_ids:
        logger.info("resumed %d harvest checkpoints", len(checkpoint_ids))
    return len(checkpoint_ids)
