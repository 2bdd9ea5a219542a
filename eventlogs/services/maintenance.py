"""The periodic upkeep of the pipeline: requeue lost batches, seal finished archive hours, retention."""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from .. import metrics
from ..models import ArchiveFile, Batch, Kind
from . import archive
from .collector import enqueue, register_pending
from .lag import enrichment_lag_seconds

logger = logging.getLogger(__name__)

# Batches re-sent per run: 1,000 batches of 1,000 records is more than a worker enriches in a minute.
REQUEUE_LIMIT = 1000
# An hour's file is sealed (sha256) this long after the hour ends: no collector still writes it.
SEAL_GRACE = timedelta(minutes=2)


def _events_queue_length() -> int | None:
    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
        return int(client.llen("events"))
    except redis.RedisError as exc:
        logger.warning("cannot read the events queue length: %s", exc)
        return None


def requeue_stale() -> int:
    """Register batches archived while the database was down, and queue again the archived batches older
    than EVENTLOG_REQUEUE_AFTER_SECONDS — only while the events queue is empty: a backlog means their
    messages still wait there (redelivery of an unacked one is the broker's job)."""
    registered = register_pending()
    queued = 0
    if _events_queue_length() == 0:
        cutoff = timezone.now() - timedelta(seconds=settings.EVENTLOG_REQUEUE_AFTER_SECONDS)
        stale = Batch.objects.filter(status=Batch.Status.ARCHIVED, received_at__lt=cutoff, archive_file__isnull=False)
        for batch_id in stale.order_by("received_at").values_list("pk", flat=True)[:REQUEUE_LIMIT]:
            queued += enqueue(str(batch_id))
    metrics.LAG.set(enrichment_lag_seconds())
    if registered or queued:
        logger.info("registered %d pending batches, requeued %d stale ones", registered, queued)
    return registered + queued


def seal_archive() -> int:
    """Record the sha256 and final size of every archive file whose hour is over."""
    sealed = 0
    due = ArchiveFile.objects.filter(sealed_at=None, hour__lt=timezone.now() - timedelta(hours=1) - SEAL_GRACE)
    for file in due:
        path = archive.root() / file.path
        if not path.exists():
            logger.error("archive file %s is in the manifest but missing on disk", file.path)
            continue
        ArchiveFile.objects.filter(pk=file.pk).update(
            sha256=archive.sha256(file.path), bytes=path.stat().st_size, sealed_at=timezone.now()
        )
        sealed += 1
    sizes = dict(ArchiveFile.objects.values_list("kind").annotate(total=Sum("bytes")).values_list("kind", "total"))
    for kind in Kind.values:
        metrics.ARCHIVE_SIZE.labels(kind=kind).set(sizes.get(kind) or 0)
    return sealed


def purge_archive() -> int:
    """Delete archive hours older than EVENTLOG_ARCHIVE_RETENTION_DAYS (their batches stay, unreplayable)."""
    days = settings.EVENTLOG_ARCHIVE_RETENTION_DAYS
    if days <= 0:
        return 0
    old = ArchiveFile.objects.filter(hour__lt=timezone.now() - timedelta(days=days))
    removed = 0
    for file in old:
        archive.delete_partition(file.path)
        file.delete()
        removed += 1
    return removed
