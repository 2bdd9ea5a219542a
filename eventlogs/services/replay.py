"""Replay: rebuild everything downstream of the raw archive for a kind and a time range, idempotently.

Each member of each archive file in range is one batch: its Batch row (and the file's manifest row) is
recreated from the member's header when the database lost it, then the batch is enriched again — in this
process, or on the events workers with `enqueue`. Upserts on the event id (and on batch + line for
failed events) make a second replay change nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from ..models import ArchiveFile, Batch
from . import archive
from .collector import enqueue
from .enrichment import process_batch

logger = logging.getLogger(__name__)


@dataclass
class ReplayResult:
    files: int = 0
    batches: int = 0
    restored: int = 0  # batches whose row the database had lost
    records: int = 0


def _restore(kind: str, member: archive.Member, lines: list[bytes], file: ArchiveFile) -> Batch:
    header = json.loads(member.comment) if member.comment else {}
    received_at = datetime.fromisoformat(header["received_at"]) if "received_at" in header else file.hour
    batch, _ = Batch.objects.get_or_create(
        pk=uuid.UUID(member.name),
        defaults={"kind": kind, "client": header.get("client", ""), "received_at": received_at,
                  "archive_file": file, "offset": member.offset, "length": member.length, "records": len(lines)},
    )  # fmt: skip
    return batch


def replay(kind: str, start: datetime, end: datetime, *, enqueue_batches: bool = False) -> ReplayResult:
    result = ReplayResult()
    for relative in archive.files(kind, start, end):
        result.files += 1
        file, created = ArchiveFile.objects.get_or_create(
            path=relative, defaults={"kind": kind, "hour": archive.hour_of(relative)}
        )
        records = 0
        for member, lines in archive.scan_members(relative):
            records += len(lines)
            with transaction.atomic():
                existing = Batch.objects.filter(pk=member.name).exists()
                batch = _restore(kind, member, lines, file)
            result.restored += not existing
            result.batches += 1
            result.records += len(lines)
            if enqueue_batches:
                enqueue(str(batch.pk))
            else:
                process_batch(batch, lines)
        if created:  # the manifest row was lost too: rebuild its totals from the file
            ArchiveFile.objects.filter(pk=file.pk).update(
                records=records, bytes=(archive.root() / relative).stat().st_size
            )
    logger.info("replayed %s: %s", kind, result)
    return result
