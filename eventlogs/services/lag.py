"""Enrichment lag: the age of the oldest batch that is archived but not enriched (0 when none waits)."""

from __future__ import annotations

from django.db.models import Min
from django.utils import timezone

from ..models import Batch


def enrichment_lag_seconds() -> float:
    oldest = Batch.objects.filter(status=Batch.Status.ARCHIVED).aggregate(oldest=Min("received_at"))["oldest"]
    return 0.0 if oldest is None else max(0.0, (timezone.now() - oldest).total_seconds())
