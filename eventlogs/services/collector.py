"""The collector: a request body → records → the raw archive → a registered batch → an enrichment task.

Order matters (archive, then process): the body is archived before anything can fail on its records, so
every later step can be replayed. A dead database does not lose the batch (a marker file next to the
archive registers it later, `register_pending`); a dead broker does not either (the batch stays
`archived` and eventlogs.requeue_stale sends it again).
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import metrics
from ..models import ArchiveFile, Batch
from . import archive
from .records import Failure, parse_line

logger = logging.getLogger(__name__)

NDJSON_TYPES = {
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
    "application/jsonlines", "text/plain",
}  # fmt: skip
JSON_TYPES = {"application/json"}
PENDING_DIR = "_pending"


class PayloadError(Exception):
    """A request the collector cannot take at all (HTTP status and a readable message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Accepted:
    batch: str
    accepted: int
    failed: int
    registered: bool  # False: the database was down; the batch waits in a marker file
    queued: bool  # False: the broker was down; eventlogs.requeue_stale sends it later


def decode_body(body: bytes, encoding: str, limit: int) -> bytes:
    """The payload, un-gzipped when Content-Encoding says so; 413 past `limit` bytes either way."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise PayloadError(415, f"Content-Encoding {encoding!r} is not supported: send gzip or none")
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        payload = inflate.decompress(body, limit + 1)
        while inflate.eof and inflate.unused_data and len(payload) <= limit:  # concatenated gzip members
            rest = inflate.unused_data
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            payload += inflate.decompress(rest, limit + 1 - len(payload))
    except zlib.error as exc:
        raise PayloadError(400, f"the body is not valid gzip ({exc})") from None
    if len(payload) > limit:
        raise PayloadError(413, f"the body inflates past the {limit}-byte limit (EVENTLOG_MAX_BODY_BYTES)")
    if not inflate.eof:
        raise PayloadError(400, "the body is not valid gzip (truncated stream)")
    return payload


def split_records(payload: bytes, content_type: str) -> list[bytes]:
    """One line per record: NDJSON as is; a JSON array or object re-serialised one element per line.

    A JSON body that does not parse as a whole is split into lines like NDJSON, so its bad lines become
    failed events instead of a rejected request."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in NDJSON_TYPES | JSON_TYPES:
        raise PayloadError(
            415, f"Content-Type {media or '(none)'!r} is not accepted: use application/x-ndjson or application/json"
        )
    if media in JSON_TYPES:
        stripped = payload.strip()
        try:
            document = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, list):
            return [orjson.dumps(item) for item in document]
        if isinstance(document, dict):
            return [orjson.dumps(document)]
    return archive.split_payload(payload)


def register(
    kind: str, batch_id: str, member: archive.Member, *, records: int, client: str, received_at: datetime
) -> None:
    """The manifest row of the file (records and bytes added) and the batch, in one transaction."""
    table = ArchiveFile._meta.db_table
    hour = archive.hour_of(member.path)
    adapt = connection.ops.adapt_datetimefield_value
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (kind, path, hour, records, bytes, sha256, created_at) "  # noqa: S608 - our table
                "VALUES (%s, %s, %s, %s, %s, '', %s) ON CONFLICT (path) DO UPDATE SET "
                f"records = {table}.records + excluded.records, bytes = {table}.bytes + excluded.bytes RETURNING id",
                [kind, member.path, adapt(hour), records, member.length, adapt(timezone.now())],
            )
            file_id = cursor.fetchone()[0]
        Batch.objects.create(
            id=uuid.UUID(batch_id),
            kind=kind,
            client=client,
            received_at=received_at,
            archive_file_id=file_id,
            offset=member.offset,
            length=member.length,
            records=records,
        )


def enqueue(batch_id: str) -> bool:
    """Send the enrichment task without the publisher's retries: a dead broker answers fast, not in 10 s."""
    from ..tasks import enrich_batch

    try:
        enrich_batch.apply_async(args=(batch_id,), retry=False)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; the batch is safe either way
        logger.warning("batch %s archived but not queued (%s); requeue_stale will send it", batch_id, exc)
        return False
    return True


def _pending_dir() -> Path:
    return archive.root() / PENDING_DIR


def _write_marker(kind: str, batch_id: str, member: archive.Member, *, records: int, client: str, at: datetime) -> None:
    """What `register` would have written, kept beside the archive until the database is back."""
    directory = _pending_dir()
    directory.mkdir(parents=True, exist_ok=True)
    marker = {"kind": kind, "batch": batch_id, "path": member.path, "offset": member.offset,
              "length": member.length, "records": records, "client": client, "received_at": at.isoformat()}  # fmt: skip
    temporary = directory / f".{batch_id}.tmp"
    temporary.write_text(json.dumps(marker))
    temporary.replace(directory / f"{batch_id}.json")


def collect(kind: str, body: bytes, content_type: str, encoding: str, client: str) -> Accepted:
    """Take one request body (already checked against the size limit by the view)."""
    limit = settings.EVENTLOG_MAX_BODY_BYTES
    payload = decode_body(body, encoding, limit)
    if not payload.strip():
        raise PayloadError(400, "the body is empty: send NDJSON lines, a JSON array or a JSON object")
    lines = split_records(payload, content_type)
    if not lines:
        raise PayloadError(400, "the body holds no records (only blank lines or an empty array)")
    failed = 0
    for raw in lines:
        try:
            parse_line(raw, settings.EVENTLOG_MAX_RECORD_BYTES)
        except Failure:
            failed += 1
    metrics.RECEIVED.labels(kind=kind).inc(len(lines))
    batch_id = str(uuid.uuid4())
    received_at = timezone.now()
    member = archive.append(kind, batch_id, lines, received_at, client)
    metrics.ARCHIVED.labels(kind=kind).inc(len(lines))
    metrics.ARCHIVE_BYTES.labels(kind=kind).inc(member.length)
    try:
        register(kind, batch_id, member, records=len(lines), client=client, received_at=received_at)
    except DatabaseError as exc:
        logger.error("database down: batch %s archived, registration deferred (%s)", batch_id, exc)  # noqa: TRY400 - expected outage, no traceback
        _write_marker(kind, batch_id, member, records=len(lines), client=client, at=received_at)
        metrics.UNREGISTERED.labels(kind=kind).inc()
        return Accepted(batch_id, len(lines) - failed, failed, registered=False, queued=False)
    return Accepted(batch_id, len(lines) - failed, failed, registered=True, queued=enqueue(batch_id))


def register_pending() -> int:
    """Register and queue the batches archived while the database was down; returns how many."""
    done = 0
    for path in sorted(_pending_dir().glob("*.json")):
        marker = json.loads(path.read_text())
        member = archive.Member(marker["path"], marker["offset"], marker["length"], marker["batch"])
        if not Batch.objects.filter(pk=marker["batch"]).exists():
            register(
                marker["kind"],
                marker["batch"],
                member,
                records=marker["records"],
                client=marker["client"],
                received_at=datetime.fromisoformat(marker["received_at"]),
            )
        path.unlink()
        enqueue(marker["batch"])
        done += 1
    return done
