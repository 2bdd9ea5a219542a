"""eventlogs' Prometheus metrics (multiprocess: the collector's gunicorn workers and the events workers)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECEIVED = Counter("pipewatch_eventlog_records_received_total", "Records the collector received, by kind.", ["kind"])
ARCHIVED = Counter(
    "pipewatch_eventlog_records_archived_total", "Records written to the raw archive, by kind.", ["kind"]
)
ARCHIVE_BYTES = Counter(
    "pipewatch_eventlog_archive_bytes_total", "Compressed bytes appended to the raw archive, by kind.", ["kind"]
)
ENRICHED = Counter(
    "pipewatch_eventlog_records_enriched_total", "Records upserted into their typed table, by kind.", ["kind"]
)
FAILED = Counter(
    "pipewatch_eventlog_records_failed_total",
    "Records that became failed events, by kind and reason.",
    ["kind", "reason"],
)
DUPLICATES = Counter(
    "pipewatch_eventlog_records_duplicate_total", "Records whose id came again later in the same batch.", ["kind"]
)
UNREGISTERED = Counter(
    "pipewatch_eventlog_batches_unregistered_total",
    "Batches archived while the database was down (registered later from their marker).",
    ["kind"],
)
LAG = Gauge(
    "pipewatch_eventlog_enrichment_lag_seconds",
    "Age of the oldest archived batch not enriched yet (0 when none waits).",
    multiprocess_mode="mostrecent",
)
ARCHIVE_SIZE = Gauge(
    "pipewatch_eventlog_archive_size_bytes", "Bytes held by the raw archive (manifest), by kind.", ["kind"],
    multiprocess_mode="mostrecent",
)  # fmt: skip
