"""KIPRIS harvesting metrics (names fixed in DESIGN.md); multiprocess-safe, shown on the web's /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "kipris_requests_total",
    "KIPRIS requests by search (ipr_mode), organisation type and outcome (ok or the error type).",
    ["ipr_mode", "org_type", "status"],
)
ERRORS = Counter("kipris_errors_total", "KIPRIS errors by type (transient, quota, blocked, ...).", ["error_type"])
RESPONSE_SECONDS = Histogram(
    "kipris_response_seconds",
    "KIPRIS HTTP round trip, from send to the whole body read.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
WORKER_PROCESS_SECONDS = Histogram(
    "kipris_worker_process_seconds",
    "Time a worker spends parsing and upserting one page of results.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
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
