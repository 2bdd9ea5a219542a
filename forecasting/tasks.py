"""forecasting's Celery tasks: thin adapters over services."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.db import InterfaceError, OperationalError


# A database hiccup is transient: retry (the run is idempotent); anything else fails loudly until next hour.
@shared_task(
    name="forecasting.predict_hourly",
    soft_time_limit=50 * 60,
    time_limit=55 * 60,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=10,
    retry_jitter=True,
    max_retries=3,
)
def predict_hourly(issued_at: str | None = None) -> dict:
    """Hourly forecasts for every sensor (default queue, acks_late: idempotent per sensor+metric+issue hour)."""
    from .services.prediction import predict_hourly as run

    return run(datetime.fromisoformat(issued_at) if issued_at else None)


# acks_late=False, unlike the project default: a training run can outlast the broker's visibility timeout
# (1 h), after which Redis would hand the still-running message to a second worker. The message is acked
# on receipt; TrainingRun rows plus the watchdog below re-queue a run whose worker died.
@shared_task(
    name="forecasting.train",
    acks_late=False,
    reject_on_worker_lost=False,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 120,
)
def train(run_id: int | None = None) -> dict | None:
    """Run a recorded training run; without an id (the yearly schedule) record a new run for both metrics."""
    from .services import runs

    if run_id is None:
        run_id = runs.new_run(requested_by="schedule").pk
    run = runs.execute(run_id)
    return None if run is None else {"run": run.pk, "status": run.status, "summary": run.summary}


@shared_task(
    name="forecasting.watchdog",
    soft_time_limit=60,
    time_limit=90,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=2,
)
def watchdog() -> list[int]:
    """Re-queue training runs whose worker died (default queue, so a busy training worker never delays it)."""
    from .services.runs import watchdog as check

    return check()
