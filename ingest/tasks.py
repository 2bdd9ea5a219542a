"""ingest's Celery tasks (queue `ingest`): thin adapters over ingest.services.

Fan-out: `harvest_all` -> one `harvest_organization` per organisation (resolves applicant numbers) -> one
`harvest_pages` per applicant x search, each fetching a bounded batch of pages and requeueing itself.
Retry policy: transient KIPRIS errors retry with exponential backoff and jitter; an open circuit
reschedules after its cool-down; the monthly budget, KIPRIS's quota and a blocked key pause the
checkpoint (resumable); anything else fails the checkpoint loudly.
"""

from __future__ import annotations

import logging
import random
from functools import partial
from typing import Any

from celery import Task, shared_task
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
from .models import HarvestRun, Organization, RunStatus

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


class RunTask(Task):
    """Counts retried errors on the run; marks it failed when retries are exhausted or a permanent error escapes."""

    def on_retry(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        services.note_run_error(args[0], exc, fail=False)

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        services.note_run_error(args[0], exc, fail=True)


class CheckpointTask(Task):
    """Records retried errors on the checkpoint and marks it failed when the task finally fails."""

    def on_retry(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        services.note_error(args[0], exc, context="retrying after: ")

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        services.note_error(args[0], exc, status=RunStatus.FAILED)


@shared_task(name="ingest.harvest_all", soft_time_limit=120, time_limit=150)
def harvest_all(kinds: list[str] | None = None) -> list[int]:
    """The periodic refresh: one run per active organisation."""
    run_ids = []
    for organization_id in Organization.objects.filter(active=True).values_list("pk", flat=True):
        if services.has_active_run(organization_id):
            logger.info("organization %s still has a harvest under way; not queued again", organization_id)
            continue
        run = services.create_run(organization_id, kinds)
        queue_run(run.pk)
        run_ids.append(run.pk)
    logger.info("queued %d harvest runs", len(run_ids))
    return run_ids


@shared_task(
    base=RunTask, bind=True, name="ingest.harvest_organization", soft_time_limit=120, time_limit=150, **RETRY_POLICY
)
def harvest_organization(self: Task, run_id: int) -> int:
    """Resolve the organisation's applicant numbers and queue one page task per applicant x search."""
    if not HarvestRun.objects.filter(pk=run_id).exists():
        logger.warning("harvest run %s no longer exists", run_id)
        return 0
    try:
        checkpoint_ids = services.plan_run(run_id)
    except CircuitOpenError as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after + random.uniform(0, 5), max_retries=None) from exc
    except PAUSING_ERRORS as exc:
        services.note_run_error(run_id, exc, fail=False)
        services.finish_run(run_id, RunStatus.PAUSED, error=str(exc))
        return 0
    for checkpoint_id in checkpoint_ids:
        harvest_pages.delay(checkpoint_id)
    return len(checkpoint_ids)


@shared_task(
    base=CheckpointTask,
    bind=True,
    name="ingest.harvest_pages",
    soft_time_limit=14 * 60,
    time_limit=15 * 60,
    **RETRY_POLICY,
)
def harvest_pages(self: Task, checkpoint_id: int) -> int:
    """Up to KIPRIS_PAGES_PER_TASK pages of one checkpoint, then requeue itself if more remain."""
    metrics.ACTIVE_WORKERS.inc()
    try:
        # The task id survives retries and redeliveries, so a redelivered message reclaims its own lease.
        outcome = services.harvest_batch(
            checkpoint_id, token=str(self.request.id), pages=settings.KIPRIS_PAGES_PER_TASK
        )
    except CircuitOpenError as exc:
        raise self.retry(exc=exc, countdown=exc.retry_after + random.uniform(0, 5), max_retries=None) from exc
    except PAUSING_ERRORS as exc:
        services.note_error(checkpoint_id, exc, status=RunStatus.PAUSED)
        return 0
    finally:
        metrics.ACTIVE_WORKERS.dec()
    if not outcome.done:
        harvest_pages.delay(checkpoint_id)
    return outcome.pages


def queue_run(run_id: int) -> None:
    """Send the run's first task once the transaction that created the run commits (workers must see it)."""
    transaction.on_commit(partial(harvest_organization.delay, run_id))


@shared_task(name="ingest.resume_stalled", soft_time_limit=60, time_limit=90)
def resume_stalled(include_paused: bool = True) -> int:
    """Requeue checkpoints a crashed worker or a pause left behind (paused ones only while calls are possible)."""
    from .kipris.guards import CircuitBreaker, MonthlyBudget

    budget = MonthlyBudget(settings.KIPRIS_MONTHLY_BUDGET)
    can_call = not CircuitBreaker(settings.KIPRIS_CIRCUIT_FAILURES, settings.KIPRIS_CIRCUIT_OPEN_SECONDS).is_open()
    can_call = can_call and (not budget.budget or budget.used() < budget.budget)
    checkpoint_ids = services.resumable_checkpoints(include_paused=include_paused and can_call)
    for checkpoint_id in checkpoint_ids:
        harvest_pages.delay(checkpoint_id)
    if checkpoint_ids:
        logger.info("resumed %d harvest checkpoints", len(checkpoint_ids))
    return len(checkpoint_ids)
