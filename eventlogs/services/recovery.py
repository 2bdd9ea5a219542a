"""Recovery: re-run failed events (after a schema or converter fix) from the raw record they keep."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import FailedEvent
from .enrichment import store_rows
from .prepare import prepare_batch

logger = logging.getLogger(__name__)


@dataclass
class RecoveryResult:
    recovered: int = 0
    still_failing: int = 0


def recover(
    kind: str, reason: str | None = None, limit: int | None = None, ids: list[int] | None = None
) -> RecoveryResult:
    result = RecoveryResult()
    pending = FailedEvent.objects.select_related("batch").filter(kind=kind, recovered_at=None).order_by("pk")
    if reason:
        pending = pending.filter(reason=reason)
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    groups: dict[tuple[Any, Any], list[FailedEvent]] = defaultdict(list)
    for failed in pending[:limit] if limit else pending:
        received_at = failed.batch.received_at if failed.batch else failed.created_at
        groups[(failed.batch_id, received_at)].append(failed)
    recovered: list[int] = []
    with transaction.atomic():
        for (batch_id, received_at), group in groups.items():
            lines = [failed.raw.encode("utf-8") for failed in group]
            prepared = prepare_batch(kind, lines, received_at, settings.EVENTLOG_MAX_RECORD_BYTES)
            still = dict(prepared.failures)
            for position, failed in enumerate(group):
                if (failure := still.get(position)) is None:
                    recovered.append(failed.pk)
                    continue
                FailedEvent.objects.filter(pk=failed.pk).update(
                    reason=failure.reason, schema_path=failure.schema_path[:255], message=failure.message,
                    attempts=F("attempts") + 1,
                )  # fmt: skip
                result.still_failing += 1
            store_rows(kind, batch_id, received_at, prepared.rows)
        FailedEvent.objects.filter(pk__in=recovered).update(recovered_at=timezone.now(), attempts=F("attempts") + 1)
    result.recovered = len(recovered)
    logger.info("recovered %d %s failed events, %d still failing", result.recovered, kind, result.still_failing)
    return result
