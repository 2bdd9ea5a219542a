"""Where samples go: batched rows in the database, the latest snapshot and top processes in Redis.

Redis keys (JSON values, expiring so a dead agent's snapshot disappears instead of lying):
- `pipewatch:monitoring:current:<host>`: the latest sample, rendered as /metrics/current answers it (the
  agent renders it once per sample; the API returns the bytes as they are)
- `pipewatch:monitoring:processes:<host>`: the busiest processes
- `pipewatch:monitoring:hosts`: sorted set host -> unix time of its latest sample
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.client import Pipeline

from core.redis import redis_client
from core.retention import delete_in_batches

from ..models import Host, HostSample
from ..renderers import FastJSONRenderer
from .sampling import Sample

logger = logging.getLogger(__name__)

HOSTS_KEY = "pipewatch:monitoring:hosts"
SNAPSHOT_SOURCE = "agent"
# Every snapshot body ends so (the renderer keeps the keys' order); one written before the bodies were
# rendered by the agent (an agent of the previous version, for the seconds of an upgrade) does not.
SNAPSHOT_END = b',"source":"agent"}'
SAMPLE_COLUMNS = [
    "cpu_percent",
    "cpu_per_core",
    "load_1",
    "load_5",
    "load_15",
    "memory_total_bytes",
    "memory_used_bytes",
    "memory_available_bytes",
    "memory_percent",
    "swap_total_bytes",
    "swap_used_bytes",
    "swap_percent",
    "disk_percent",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
    "disks",
    "net_sent_bytes_per_second",
    "net_recv_bytes_per_second",
    "interfaces",
]


def current_key(host: str) -> str:
    return f"pipewatch:monitoring:current:{host}"


def processes_key(host: str) -> str:
    return f"pipewatch:monitoring:processes:{host}"


def snapshot_ttl(interval_seconds: float) -> int:
    """A snapshot outlives a few missed samples, not a dead agent."""
    return max(30, int(interval_seconds * 6))


def render_snapshot(sample: Sample) -> bytes:
    """The body of /metrics/current for `sample`, rendered by the API's own renderer."""
    return FastJSONRenderer().render({**sample.snapshot(), "source": SNAPSHOT_SOURCE})


def publish_snapshot(sample: Sample, interval_seconds: float, processes: list[dict[str, Any]] | None = None) -> None:
    """Latest snapshot (and processes when freshly read) into Redis in one round trip. Raises RedisError."""
    ttl = snapshot_ttl(interval_seconds)
    pipe = redis_client().pipeline(transaction=False)
    pipe.set(current_key(sample.host), render_snapshot(sample), ex=ttl)
    if processes is not None:
        document = {"timestamp": sample.ts.isoformat(), "processes": processes}
        pipe.set(processes_key(sample.host), json.dumps(document), ex=max(ttl, 120))
    pipe.zadd(HOSTS_KEY, {sample.host: sample.ts.timestamp()})
    pipe.execute()


def register_host(name: str, info: dict[str, Any], interval_seconds: float) -> Host:
    """Create or refresh the Host row the agent reports for (a restart may change the interval)."""
    host, _ = Host.objects.update_or_create(
        name=name, defaults={**info, "interval_seconds": interval_seconds, "active": True}
    )
    return host


def store_samples(host: Host, samples: Sequence[Sample]) -> int:
    """Insert a batch of samples (a sample already stored is skipped: re-sending a batch is safe)."""
    if not samples:
        return 0
    rows = [
        HostSample(host=host, ts=sample.ts, **{col: sample.values[col] for col in SAMPLE_COLUMNS}) for sample in samples
    ]
    with transaction.atomic():
        HostSample.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
        newest = max(sample.ts for sample in samples)
        Host.objects.filter(pk=host.pk).update(last_seen_at=newest)
    return len(rows)


def read_json(key: str) -> Any:
    raw = redis_client().get(key)
    return json.loads(raw) if raw else None


# The newest host and its snapshot in one round trip (the default of /metrics/current, on every request).
LATEST_SNAPSHOT_SCRIPT = """
local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0)
if #newest == 0 then return false end
return redis.call('GET', ARGV[1] .. newest[1])
"""


def queue_snapshot_read(pipe: Pipeline, host: str | None) -> None:
    """Queue the read of the snapshot of `host` (None: of the host that reported last) on `pipe`."""
    if host is None:
        pipe.eval(LATEST_SNAPSHOT_SCRIPT, 1, HOSTS_KEY, current_key(""))
    else:
        pipe.get(current_key(host))


def snapshot_body(raw: bytes | None) -> bytes | None:
    """`raw` as read by queue_snapshot_read if it is a rendered body, else None."""
    return raw if raw and raw.endswith(SNAPSHOT_END) else None


def read_snapshot(host: str | None) -> dict[str, Any] | None:
    """The snapshot of `host` (None: of the host that reported last), None when its agent has not reported
    lately. Raises RedisError."""
    pipe = redis_client().pipeline(transaction=False)
    queue_snapshot_read(pipe, host)
    raw = pipe.execute()[0]
    return cast(dict[str, Any], json.loads(raw)) if raw else None


def last_reports() -> dict[str, float]:
    """Every host's latest sample time as recorded in Redis: host -> unix time."""
    entries = cast(list[tuple[bytes, float]], redis_client().zrange(HOSTS_KEY, 0, -1, withscores=True))
    return {name.decode(): score for name, score in entries}


def purge_samples(
    *, max_age: timedelta | None = None, max_rows_per_host: int | None = None, now: datetime | None = None
) -> int:
    """Delete samples older than `max_age` and, per host, all but the newest `max_rows_per_host`. Idempotent."""
    max_age = max_age if max_age is not None else timedelta(days=settings.MONITORING_RETENTION_DAYS)
    max_rows = max_rows_per_host if max_rows_per_host is not None else settings.MONITORING_RETENTION_MAX_ROWS
    batch = settings.MONITORING_PURGE_BATCH
    cutoff = (now or timezone.now()) - max_age
    deleted, _ = delete_in_batches(HostSample.objects.filter(ts__lt=cutoff), batch_size=batch)
    for host_id in Host.objects.values_list("pk", flat=True):
        boundary = (
            HostSample.objects.filter(host_id=host_id)
            .order_by("-ts")
            .values_list("ts", flat=True)[max_rows : max_rows + 1]
        )
        if oldest_kept := list(boundary):
            beyond_cap = HostSample.objects.filter(host_id=host_id, ts__lte=oldest_kept[0])
            deleted += delete_in_batches(beyond_cap, batch_size=batch)[0]
    if deleted:
        logger.info("purged %d host samples (older than %s or beyond %d per host)", deleted, cutoff, max_rows)
    return deleted
