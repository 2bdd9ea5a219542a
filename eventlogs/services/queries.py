"""Reads behind the API: filtered typed rows, and per-kind per-hour counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncHour

from ..models import TABLES, Batch, EventRecord, FailedEvent
from .lag import enrichment_lag_seconds


class QueryError(ValueError):
    pass


def events(kind: str, query: dict[str, Any]) -> QuerySet[EventRecord]:
    rows = TABLES[kind].objects.order_by("ts", "event_id")
    if account := query.get("account"):
        rows = rows.filter(account=account)
    if session := query.get("session"):
        if kind != "raid":
            raise QueryError(f"session filters raid events only; {kind} records have no session")
        rows = rows.filter(session_id=session)  # type: ignore[misc]  # RaidEvent rows (kind checked above)
    if start := query.get("start"):
        rows = rows.filter(ts__gte=start)
    if end := query.get("end"):
        rows = rows.filter(ts__lt=end)
    return rows


def stats(start: datetime, end: datetime) -> dict[str, Any]:
    hours = (
        Batch.objects.filter(received_at__gte=start, received_at__lt=end)
        .annotate(hour=TruncHour("received_at"))
        .values("kind", "hour")
        .annotate(batches=Count("id"), records=Sum("records"), enriched=Sum("enriched"), failed=Sum("failed"))
        .order_by("hour", "kind")
    )
    failed = (
        FailedEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("kind", "reason")
        .annotate(count=Count("id"), unrecovered=Count("id", filter=Q(recovered_at=None)))
        .order_by("kind", "reason")
    )
    return {
        "start": start,
        "end": end,
        "hours": list(hours),
        "failed": list(failed),
        "pending_batches": Batch.objects.filter(status=Batch.Status.ARCHIVED).count(),
        "lag_seconds": round(enrichment_lag_seconds(), 1),
    }
