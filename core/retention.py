"""Retention: the one way pipewatch deletes old rows — in bounded batches, within a time budget.

Every app's purge (readings, host samples, forecasts, hourly roll-ups, ...) calls `delete_in_batches`, so
each deletes the same way: one short statement per batch of primary keys (locks and WAL stay small, and
writers of the same table never wait long), stopping once the time budget is spent and saying so, so the
caller can queue the rest. Re-running is harmless: what is gone stays gone.

The one exception is aiops' custom-metric points (aiops.services.metrics.purge_points): their table has no
index on ts, so they are deleted per series through the primary key, with the same time budget and requeue.
"""

from __future__ import annotations

import time
from typing import Any

from django.db.models import QuerySet


def delete_in_batches(
    queryset: QuerySet[Any], *, batch_size: int, max_seconds: float | None = None
) -> tuple[int, bool]:
    """Delete `queryset`'s rows `batch_size` at a time; returns (rows deleted, finished).

    `finished` is False when the batch that crossed `max_seconds` left rows behind (call again later).
    """
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    manager = queryset.model._base_manager
    deleted = 0
    while ids := list(queryset.order_by().values_list("pk", flat=True)[:batch_size]):
        deleted += manager.filter(pk__in=ids).delete()[0]
        if deadline is not None and time.monotonic() > deadline:
            return deleted, False
    return deleted, True
