"""anomaly's Prometheus metrics (multiprocess mode: they land in PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DETECT_CYCLE_SECONDS = Histogram(
    "pipewatch_anomaly_detect_minute_seconds",
    "Wall time of one minute's detection over every active sensor.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60),
)
DETECT_MINUTES = Counter(
    "pipewatch_anomaly_minutes_total", "Minutes evaluated, by outcome.", ["outcome"]
)  # outcome: evaluated, late, skipped_locked
METHOD_FIRED = Counter(
    "pipewatch_anomaly_method_fired_total", "Sensor-minutes a method fired, by metric and method.", ["metric", "method"]
)
EVENTS = Counter("pipewatch_anomaly_events_total", "Anomaly events opened and resolved.", ["source", "transition"])
LAST_MINUTE = Gauge(
    "pipewatch_anomaly_last_evaluated_minute_timestamp",
    "Unix time of the latest evaluated minute.",
    multiprocess_mode="max",
)

# Every events series exists from the start at 0: Prometheus' increase() misses the first increment of a
# series it has never seen, so the "anomaly opened" alert would skip the first event of each source.
for _source in ("sensor", "host"):
    for _transition in ("opened", "resolved"):
        EVENTS.labels(source=_source, transition=_transition)
