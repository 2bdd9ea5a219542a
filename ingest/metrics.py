"""KIPRIS harvesting metrics (names, labels and buckets fixed by DESIGN.md and issue 16); multiprocess-safe."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# The old harvester's contract (issue 16): these names, labels and buckets exactly. Histograms, not
# summaries: bucket counts add up across worker processes and hosts, quantiles of summaries do not.
LABELS = ["ipr_mode", "org_type"]
# ipr_mode: applicant (the number lookup), patent, design, trademark; org_type: company, university.
REQUESTS = Counter(
    "kipris_requests_total",
    "KIPRIS requests by search (ipr_mode), organisation type and outcome (status: success or failure).",
    [*LABELS, "status"],
)
ERRORS = Counter(
    "kipris_errors_total",
    "KIPRIS errors by search, organisation type and error type (transient, quota, blocked, ...).",
    [*LABELS, "error_type"],
)
SECONDS_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
RESPONSE_SECONDS = Histogram(
    "kipris_response_seconds",
    "KIPRIS HTTP round trip, from send to the whole body read.",
    LABELS,
    buckets=SECONDS_BUCKETS,
)
WORKER_PROCESS_SECONDS = Histogram(
    "kipris_worker_process_seconds",
    "Time a worker spends parsing and upserting one page of results.",
    LABELS,
    buckets=SECONDS_BUCKETS,
)
ACTIVE_REQUESTS = Gauge(
    "kipris_active_requests", "KIPRIS requests in flight across all processes.", multiprocess_mode="livesum"
)
QUEUE_SIZE = Gauge(
    "kipris_queue_size",
    "Harvest checkpoints (applicant x search) still queued or running.",
    multiprocess_mode="mostrecent",
)
TOKEN_BUCKET_TOKENS = Gauge(
    "kipris_token_bucket_tokens",
    "Tokens left in the global KIPRIS token bucket after the last reservation (0 when callers wait).",
    multiprocess_mode="mostrecent",
)
ACTIVE_WORKERS = Gauge(
    "kipris_active_workers", "Worker processes running a KIPRIS harvest task right now.", multiprocess_mode="livesum"
)
CIRCUIT_OPEN = Gauge(
    "kipris_circuit_open",
    "1 while the KIPRIS circuit breaker is open (or half-open, until a call succeeds), else 0.",
    multiprocess_mode="mostrecent",
)
